//go:build !race

package engine

import (
	"runtime"
	"testing"
)

// Checking a Complete document allocates nothing, whatever its size or shape: the review's 4 MiB
// documents once cost ~30 MiB each.
func TestCompleteDocAllocs(t *testing.T) {
	for _, d := range completeBenchDocs() {
		if got := wellFormedComplete(d.body); got != d.ok {
			t.Fatalf("%s: wellFormedComplete = %v; want %v", d.name, got, d.ok)
		}
		if n := testing.AllocsPerRun(5, func() { wellFormedComplete(d.body) }); n != 0 {
			t.Errorf("%s (%d bytes): %v allocs/op; want 0", d.name, len(d.body), n)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		wellFormedComplete(d.body)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 4<<10 {
			t.Errorf("%s (%d bytes): %d bytes allocated; want ~0", d.name, len(d.body), n)
		}
	}
}
