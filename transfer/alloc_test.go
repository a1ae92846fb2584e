//go:build !race

package transfer_test

import (
	"context"
	"testing"

	"github.com/mizuchi/uploadr/transfer"
)

// TestMoveAllocs: Move allocates nothing per chunk and nothing at all on
// the copy path (pooled buffers, pooled per-transfer state); the splice path
// pays only the two RawConn values of SyscallConn per Move.
func TestMoveAllocs(t *testing.T) {
	for _, mode := range modes {
		for _, size := range []int{64 << 10, 4 << 20} {
			t.Run(mode.String()+"/"+itoa(size), func(t *testing.T) {
				m := testMover(t, mode, transfer.Options{})
				r := newRig(t)
				stream(r, size)
				ctx := context.Background()
				move := func() {
					if _, err := m.Move(ctx, r.dst, r.src, testPrefix[:0], int64(size)); err != nil {
						t.Fatalf("Move = %v", err)
					}
				}
				move() // warm the pools
				if got, want := testing.AllocsPerRun(20, move), wantAllocs(mode); got != want {
					t.Errorf("allocs per Move of %d bytes = %v; want %v", size, got, want)
				}
			})
		}
	}
}
