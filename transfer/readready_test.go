package transfer_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/transfer"
)

// recordConn is a source like a TLS client: not a syscall.Conn, and each Read returns at most one
// 16 KiB record. ready says whether a Read would return at once (ReadReady).
type recordConn struct {
	net.Conn
	ready bool
	asked atomic.Int64
}

func (c *recordConn) Read(b []byte) (int, error) {
	if len(b) > 16<<10 {
		b = b[:16<<10]
	}
	return c.Conn.Read(b)
}

func (c *recordConn) ReadReady() bool {
	c.asked.Add(1)
	return c.ready
}

// countConn counts the writes made to a connection.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestCopyFillsFromReadySource: a source that returns one record per Read and says more bytes are
// ready is read until the copy buffer is full before the buffer is written, so the upstream gets
// one write per buffer instead of one per record; a source that says nothing is ready gets one write
// per Read (nothing is held back waiting for bytes that have not come). The body arrives intact.
func TestCopyFillsFromReadySource(t *testing.T) {
	const size = 256 << 10
	const n = 8 << 20
	for _, tc := range []struct {
		name      string
		ready     bool
		maxWrites int64
		minWrites int64
	}{
		{"ready", true, n/size + 1, n / size},
		{"not ready", false, 2 * n / (16 << 10), n / (16 << 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMover(t, transfer.ModeCopy, transfer.Options{CopyBufferSize: size, StallTimeout: 5 * time.Second})
			r := newRig(t)
			got := sink(r.up, 0)
			sent := send(r.client, 0, 0, body(n))
			src := &recordConn{Conn: r.src, ready: tc.ready}
			dst := &countConn{Conn: r.dst}
			res, err := m.Move(context.Background(), dst, src, nil, n)
			if err != nil || res.Copied != n {
				t.Fatalf("Move = %+v, %v; want %d bytes copied", res, err, n)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			r.dst.Close()
			if s := <-got; s.n != n || s.sum != digest(body(n)) {
				t.Fatalf("upstream got %d bytes or a different body", s.n)
			}
			if w := dst.writes.Load(); w < tc.minWrites || w > tc.maxWrites {
				t.Errorf("%d writes upstream; want %d–%d", w, tc.minWrites, tc.maxWrites)
			}
			if src.asked.Load() == 0 {
				t.Errorf("ReadReady never asked")
			}
		})
	}
}
