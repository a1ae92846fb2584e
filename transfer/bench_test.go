package transfer_test

import (
	"context"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/transfer"
)

var benchSizes = []struct {
	name string
	size int
}{{"64KiB", 64 << 10}, {"1MiB", 1 << 20}, {"64MiB", 64 << 20}}

func benchmarkMove(b *testing.B, mode transfer.Mode, o transfer.Options, withCtx bool) {
	for _, bs := range benchSizes {
		b.Run(bs.name, func(b *testing.B) {
			m := testMover(b, mode, o)
			r := newRig(b)
			stream(r, bs.size)
			ctx := context.Background()
			if withCtx {
				c, cancel := context.WithCancel(ctx)
				defer cancel()
				ctx = c
			}
			b.SetBytes(int64(bs.size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				res, err := m.Move(ctx, r.dst, r.src, nil, int64(bs.size))
				if err != nil {
					b.Fatalf("Move = %v", err)
				}
				if res.Mode != mode {
					b.Fatalf("Mode = %v; want %v", res.Mode, mode)
				}
			}
		})
	}
}

func BenchmarkMoveSplice(b *testing.B) {
	benchmarkMove(b, transfer.ModeSplice, transfer.Options{}, false)
}

func BenchmarkMoveCopy(b *testing.B) {
	benchmarkMove(b, transfer.ModeCopy, transfer.Options{}, false)
}

// BenchmarkMoveSpliceCtxStall measures the price of a cancellable context
// and a stall timeout (context.AfterFunc, deadlines per chunk).
func BenchmarkMoveSpliceCtxStall(b *testing.B) {
	benchmarkMove(b, transfer.ModeSplice, transfer.Options{StallTimeout: time.Minute}, true)
}
