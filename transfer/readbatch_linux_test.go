package transfer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mizuchi/uploadr/transfer"
)

// A splice transfer of a large body lets the client's socket gather Options.ReadBatch bytes before
// it wakes (SO_RCVLOWAT). These tests hold it to what a connection needs from it: set only while
// such a body lasts, back to 1 after it (the next request's head is small), no hang on a tail
// smaller than the batch, and no false stall for a client slower than a batch per stall timeout.

func rcvLowat(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT)
	}); err != nil || serr != nil {
		t.Fatalf("getsockopt SO_RCVLOWAT: %v %v", err, serr)
	}
	return v
}

// lowatIs compares SO_RCVLOWAT values; the kernel reports an untouched socket's as 0, which means 1.
func lowatIs(got, want int) bool { return max(got, 1) == want }

// TestReadBatchWhileBodyLasts: a body above two pipes sets SO_RCVLOWAT to the batch (capped at
// the pipe size) while it is read, and resets it to 1 before Move returns, so a next request smaller
// than the batch wakes its reader; a smaller body, or ReadBatch < 0, leaves it alone. The body's
// last batch arrives at once after the rest has gone through, so the last read ends the body with
// the batch still set: only the reset at the end brings it back.
func TestReadBatchWhileBodyLasts(t *testing.T) {
	trailer := []byte("PUT /b/next HTTP/1.1\r\n")
	for _, tc := range []struct {
		name       string
		o          transfer.Options
		size, tail int
		wantDuring int
	}{
		{"default", transfer.Options{}, 3<<20 + transfer.DefaultReadBatch, transfer.DefaultReadBatch, transfer.DefaultReadBatch},
		{"capped-at-pipe", transfer.Options{PipeSize: 64 << 10, MinPipeSize: 64 << 10}, 1<<20 + 64<<10, 64 << 10, 64 << 10},
		{"small-body", transfer.Options{}, 2 << 20, transfer.DefaultReadBatch, 1},
		{"off", transfer.Options{ReadBatch: 1}, 3<<20 + transfer.DefaultReadBatch, transfer.DefaultReadBatch, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMover(t, transfer.ModeSplice, tc.o)
			r := newRig(t)
			data := body(tc.size)
			first := tc.size - tc.tail
			if _, err := r.client.Write(data[:min(first, 64<<10)]); err != nil { // under any socket buffer
				t.Fatal(err)
			}
			sent := send(r.client, 0, 0, data[min(first, 64<<10):first])
			ch := moveAsync(m, context.Background(), r, int64(tc.size))
			h := sha256.New()
			if _, err := io.CopyN(h, r.up, int64(first)); err != nil {
				t.Fatalf("reading the body's first %d bytes upstream: %v", first, err)
			}
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			// Everything sent has gone through: Move waits for the last tc.tail bytes.
			deadline := time.Now().Add(5 * time.Second)
			got := rcvLowat(t, r.src)
			for !lowatIs(got, tc.wantDuring) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				got = rcvLowat(t, r.src)
			}
			if !lowatIs(got, tc.wantDuring) {
				t.Errorf("SO_RCVLOWAT mid-body = %d; want %d", got, tc.wantDuring)
			}
			if _, err := r.client.Write(data[first:]); err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyN(h, r.up, int64(tc.tail)); err != nil {
				t.Fatalf("reading the body's last %d bytes upstream: %v", tc.tail, err)
			}
			res, err := awaitMove(t, ch, 10*time.Second, "the whole body was sent")
			if err != nil || res.Spliced != int64(tc.size) {
				t.Fatalf("Move: spliced %d, %v; want %d, nil", res.Spliced, err, tc.size)
			}
			if sum := h.Sum(nil); !bytes.Equal(sum, digestSlice(data)) {
				t.Errorf("upstream got a body that differs from the client's")
			}
			if got := rcvLowat(t, r.src); !lowatIs(got, 1) {
				t.Errorf("SO_RCVLOWAT after Move = %d; want 1", got)
			}
			// The next request comes after Move returned: its reader must be woken by it.
			time.AfterFunc(50*time.Millisecond, func() { _, _ = r.client.Write(trailer) })
			readTrailer(t, r.src, trailer)
		})
	}
}

func digestSlice(b []byte) []byte {
	d := digest(b)
	return d[:]
}

// TestReadBatchTailWithoutEOF: the client sends exactly the body and then waits for its answer,
// sending nothing more; its last bytes are fewer than the batch and must still be read.
func TestReadBatchTailWithoutEOF(t *testing.T) {
	for _, size := range []int{3<<20 + 1000, 4<<20 + (transfer.DefaultReadBatch - 1), 6 << 20} {
		t.Run(itoa(size), func(t *testing.T) {
			m := testMover(t, transfer.ModeSplice, transfer.Options{})
			r := newRig(t)
			send(r.client, 100<<10, 2*time.Millisecond, body(size)) // paced: the socket drains between pieces
			up := sink(r.up, 0)
			res, err := awaitMove(t, moveAsync(m, context.Background(), r, int64(size)), 10*time.Second, "the client sent every byte and waits")
			if err != nil || res.Spliced != int64(size) {
				t.Fatalf("Move: spliced %d, %v; want %d, nil", res.Spliced, err, size)
			}
			r.dst.CloseWrite()
			if s := <-up; s.n != int64(size) || s.sum != digest(body(size)) {
				t.Errorf("upstream got %d bytes, digest match %v; want the %d-byte body", s.n, s.sum == digest(body(size)), size)
			}
		})
	}
}

// TestReadBatchSlowClient: a client sending less than a batch per stall timeout is slow, not
// stalled: its transfer completes (batching turns off for it) instead of failing with ErrStalled.
// A client that sends nothing still stalls.
func TestReadBatchSlowClient(t *testing.T) {
	const stall = 300 * time.Millisecond
	o := transfer.Options{PipeSize: 64 << 10, MinPipeSize: 64 << 10, StallTimeout: stall} // batch 64 KiB
	t.Run("trickle", func(t *testing.T) {
		m := testMover(t, transfer.ModeSplice, o)
		r := newRig(t)
		const size = 1 << 20
		data := body(size)
		sent := make(chan error, 1)
		go func() {
			// 200 KiB at once, then 1 KiB every 30 ms for 1.2 s (about 40 KiB: under the batch over
			// four stall timeouts), then the rest.
			if _, err := r.client.Write(data[:200<<10]); err != nil {
				sent <- err
				return
			}
			off := 200 << 10
			for range 40 {
				time.Sleep(30 * time.Millisecond)
				if _, err := r.client.Write(data[off : off+1024]); err != nil {
					sent <- err
					return
				}
				off += 1024
			}
			_, err := r.client.Write(data[off:])
			sent <- err
		}()
		up := sink(r.up, 0)
		res, err := awaitMove(t, moveAsync(m, context.Background(), r, size), 10*time.Second, "a slow client sent every byte")
		if err != nil || res.Spliced != size {
			t.Fatalf("Move: spliced %d, %v; want %d, nil (a slow client is not stalled)", res.Spliced, err, size)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		r.dst.CloseWrite()
		if s := <-up; s.n != size || s.sum != digest(data) {
			t.Errorf("upstream got %d bytes, digest match %v; want the %d-byte body", s.n, s.sum == digest(data), size)
		}
	})
	t.Run("silent", func(t *testing.T) {
		m := testMover(t, transfer.ModeSplice, o)
		r := newRig(t)
		send(r.client, 0, 0, body(200<<10)) // then nothing
		sink(r.up, 0)
		start := time.Now()
		_, err := awaitMove(t, moveAsync(m, context.Background(), r, 1<<20), 10*time.Second, "the stall timeout")
		wantError(t, err, transfer.SideSrc, transfer.ErrStalled)
		if d := time.Since(start); d > 3*stall {
			t.Errorf("silent client failed after %v; want about %v", d, stall)
		}
	})
}
