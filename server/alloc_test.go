//go:build !race

package server

import (
	"io"
	"testing"
)

// Handing a line to the AccessWriter allocates nothing once its buffers have grown.
func TestAccessWriterAllocs(t *testing.T) {
	a := NewAccessWriter(io.Discard, 8<<20)
	defer a.Close()
	for i := 0; i < 10000; i++ {
		_, _ = a.Write(accessLine)
	}
	if n := testing.AllocsPerRun(10000, func() { _, _ = a.Write(accessLine) }); n != 0 {
		t.Errorf("AccessWriter.Write: %v allocs/op; want 0", n)
	}
}
