package transfer_test

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/transfer"
)

var (
	testPrefix  = []byte("PUT /bucket/key HTTP/1.1\r\nHost: s3\r\nContent-Length: 42\r\n\r\nfirst body bytes already read with the head")
	testTrailer = []byte("PUT /bucket/next HTTP/1.1\r\nHost: s3\r\n\r\n")
)

func TestModeString(t *testing.T) {
	for _, tc := range []struct {
		m    transfer.Mode
		want string
	}{{transfer.ModeSplice, "splice"}, {transfer.ModeCopy, "copy"}, {0, "Mode(0)"}} {
		if got := tc.m.String(); got != tc.want {
			t.Errorf("Mode(%d).String() = %q; want %q", tc.m, got, tc.want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	err := &transfer.Error{Side: transfer.SideSrc, Op: "splice", Err: transfer.ErrShortBody}
	if got, want := err.Error(), "transfer: src splice: transfer: body ended before its declared length"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	if !errors.Is(err, transfer.ErrShortBody) {
		t.Errorf("errors.Is(%v, ErrShortBody) = false; want true", err)
	}
	if got := transfer.SideDst.String(); got != "dst" {
		t.Errorf("SideDst.String() = %q; want %q", got, "dst")
	}
}

// TestMove moves bodies of every interesting size, with and without a
// prefix, on both paths, and checks the receiver got exactly prefix+body and
// that the pipelined trailer stayed unread in src.
func TestMove(t *testing.T) {
	const pipe = transfer.DefaultPipeSize
	const buf = transfer.DefaultCopyBufferSize
	sizes := []int{0, 1, 4095, buf - 1, buf, buf + 1, pipe - 1, pipe, pipe + 1, 7<<20 + 3, 64 << 20}
	for _, mode := range modes {
		for _, size := range sizes {
			for _, prefix := range [][]byte{nil, testPrefix} {
				name := mode.String() + "/" + itoa(size) + "/prefix=" + itoa(len(prefix))
				t.Run(name, func(t *testing.T) {
					m := testMover(t, mode, transfer.Options{})
					r := newRig(t)
					moveAndCheck(t, m, r, mode, prefix, size, 0, 0, 0)
				})
			}
		}
	}
}

// TestMoveSlow forces EAGAIN on both sides: a sender trickling small pieces
// (src not readable) and a receiver with tiny socket buffers that sleeps
// between reads (dst not writable).
func TestMoveSlow(t *testing.T) {
	for _, mode := range modes {
		for _, tc := range []struct {
			name        string
			size        int
			chunk       int
			sendPause   time.Duration
			smallBufs   bool
			readerPause time.Duration
		}{
			{name: "slow-writer", size: 3<<20 + 7, chunk: 32 << 10, sendPause: 200 * time.Microsecond},
			{name: "slow-reader", size: 3<<20 + 7, smallBufs: true, readerPause: 500 * time.Microsecond},
			{name: "both", size: 2<<20 + 1, chunk: 16 << 10, sendPause: 100 * time.Microsecond, smallBufs: true, readerPause: 500 * time.Microsecond},
		} {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				m := testMover(t, mode, transfer.Options{StallTimeout: 20 * time.Second})
				r := newRig(t)
				if tc.smallBufs {
					// Small, but not so small that TCP degenerates into
					// a stop-and-wait crawl.
					if err := r.up.SetReadBuffer(64 << 10); err != nil {
						t.Fatal(err)
					}
					if err := r.dst.SetWriteBuffer(16 << 10); err != nil {
						t.Fatal(err)
					}
				}
				w0 := waits(m)
				moveAndCheck(t, m, r, mode, testPrefix, tc.size, tc.chunk, tc.sendPause, tc.readerPause)
				if mode == transfer.ModeSplice {
					w := waits(m)
					if tc.chunk > 0 && w.src == w0.src {
						t.Errorf("splice never waited for src readability; want at least one EAGAIN on fill")
					}
					if tc.smallBufs && w.dst == w0.dst {
						t.Errorf("splice never waited for dst writability; want at least one EAGAIN on drain")
					}
				}
			})
		}
	}
}

func moveAndCheck(t *testing.T, m *transfer.Mover, r *rig, mode transfer.Mode, prefix []byte, size, chunk int, sendPause, readerPause time.Duration) {
	t.Helper()
	b := body(size)
	sent := send(r.client, chunk, sendPause, b, testTrailer)
	got := sink(r.up, readerPause)
	res, err := m.Move(context.Background(), r.dst, r.src, prefix, int64(size))
	if err != nil {
		t.Fatalf("Move(%d bytes, %d prefix) = %v; want nil", size, len(prefix), err)
	}
	if res.Mode != mode {
		t.Errorf("Result.Mode = %v; want %v", res.Mode, mode)
	}
	if res.PipeTooSmall {
		t.Errorf("Result.PipeTooSmall = true; want false")
	}
	wantSpliced, wantCopied := int64(0), int64(len(prefix)+size)
	if mode == transfer.ModeSplice {
		wantSpliced, wantCopied = int64(size), int64(len(prefix))
	}
	if res.Spliced != wantSpliced || res.Copied != wantCopied {
		t.Errorf("Spliced, Copied = %d, %d; want %d, %d", res.Spliced, res.Copied, wantSpliced, wantCopied)
	}
	readTrailer(t, r.src, testTrailer)
	if err := <-sent; err != nil {
		t.Fatalf("sender: %v", err)
	}
	r.dst.Close() // the receiver must now see EOF after exactly prefix+body
	s := <-got
	if s.err != nil {
		t.Fatalf("receiver: %v", s.err)
	}
	if s.n != int64(len(prefix)+size) {
		t.Fatalf("receiver got %d bytes; want %d", s.n, len(prefix)+size)
	}
	if s.sum != digest(prefix, b) {
		t.Fatalf("receiver sha256 differs from prefix+body")
	}
}

func TestMoveNotSyscallConnCopies(t *testing.T) {
	m := transfer.NewMover(transfer.Options{})
	defer m.Close()
	r := newRig(t)
	type plain struct{ net.Conn } // hides SyscallConn, like *tls.Conn
	sent := send(r.client, 0, 0, body(100000), testTrailer)
	got := sink(r.up, 0)
	res, err := m.Move(context.Background(), plain{r.dst}, r.src, testPrefix, 100000)
	if err != nil {
		t.Fatalf("Move = %v; want nil", err)
	}
	if res.Mode != transfer.ModeCopy || res.Copied != int64(len(testPrefix)+100000) {
		t.Errorf("Result = %+v; want Mode copy, Copied %d", res, len(testPrefix)+100000)
	}
	readTrailer(t, r.src, testTrailer)
	<-sent
	r.dst.Close()
	if s := <-got; s.sum != digest(testPrefix, body(100000)) {
		t.Errorf("receiver sha256 differs from prefix+body")
	}
}

func TestMoveNegativeLength(t *testing.T) {
	m := transfer.NewMover(transfer.Options{})
	defer m.Close()
	r := newRig(t)
	if _, err := m.Move(context.Background(), r.dst, r.src, nil, -1); !errors.Is(err, transfer.ErrNegativeLength) {
		t.Errorf("Move(n=-1) = %v; want ErrNegativeLength", err)
	}
}

// wantError checks err is an *Error on side wrapping target.
func wantError(t *testing.T, err error, side transfer.Side, targets ...error) {
	t.Helper()
	var te *transfer.Error
	if !errors.As(err, &te) {
		t.Fatalf("Move error = %v (%T); want *transfer.Error", err, err)
	}
	if te.Side != side {
		t.Errorf("Error.Side = %v (%v); want %v", te.Side, err, side)
	}
	for _, target := range targets {
		if errors.Is(err, target) {
			return
		}
	}
	t.Errorf("Move error = %v; want one wrapping %v", err, targets)
}

func TestMoveClientClosesEarly(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			m := testMover(t, mode, transfer.Options{})
			r := newRig(t)
			const sentN, declared = 300001, 4 << 20
			send(r.client, 0, 0, body(sentN))
			go func() { time.Sleep(20 * time.Millisecond); r.client.CloseWrite() }()
			got := sink(r.up, 0)
			res, err := m.Move(context.Background(), r.dst, r.src, testPrefix, declared)
			wantError(t, err, transfer.SideSrc, transfer.ErrShortBody)
			if moved := res.Spliced + res.Copied; moved != int64(len(testPrefix)+sentN) {
				t.Errorf("Spliced+Copied = %d; want %d", moved, len(testPrefix)+sentN)
			}
			r.dst.Close()
			if s := <-got; s.n != int64(len(testPrefix)+sentN) || s.sum != digest(testPrefix, body(sentN)) {
				t.Errorf("receiver got %d bytes; want %d, intact", s.n, len(testPrefix)+sentN)
			}
		})
	}
}

func TestMoveUpstreamFails(t *testing.T) {
	for _, mode := range modes {
		for _, how := range []string{"reset", "close"} {
			t.Run(mode.String()+"/"+how, func(t *testing.T) {
				m := testMover(t, mode, transfer.Options{})
				r := newRig(t)
				send(r.client, 0, 0, body(64<<20))
				go func() {
					buf := make([]byte, 64<<10)
					io.ReadFull(r.up, buf)
					if how == "reset" {
						transfer.ResetClose(r.up)
					} else {
						r.up.Close()
					}
				}()
				_, err := awaitMove(t, moveAsync(m, context.Background(), r, 64<<20), 20*time.Second, "the upstream went away")
				wantError(t, err, transfer.SideDst, syscall.ECONNRESET, syscall.EPIPE)
			})
		}
	}
}

func TestMoveContextCancel(t *testing.T) {
	for _, mode := range modes {
		for _, tc := range []struct {
			name string
			side transfer.Side
		}{{"client-silent", transfer.SideSrc}, {"upstream-not-reading", transfer.SideDst}} {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				m := testMover(t, mode, transfer.Options{})
				r := newRig(t)
				if tc.side == transfer.SideSrc {
					send(r.client, 0, 0, body(100000)) // then silence
					sink(r.up, 0)
				} else {
					send(r.client, 0, 0, body(64<<20)) // upstream never reads
				}
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				start := time.Now()
				_, err := m.Move(ctx, r.dst, r.src, nil, 64<<20)
				if d := time.Since(start); d > 3*time.Second {
					t.Errorf("Move took %v after cancel at 100ms; want prompt return", d)
				}
				wantError(t, err, tc.side, context.Canceled)
			})
		}
	}
}

func TestMoveContextDoneBeforeStart(t *testing.T) {
	m := transfer.NewMover(transfer.Options{})
	defer m.Close()
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := m.Move(ctx, r.dst, r.src, testPrefix, 10)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Move(done ctx) = %v; want context.Canceled", err)
	}
	if res != (transfer.Result{}) {
		t.Errorf("Result = %+v; want zero", res)
	}
}

func TestMoveStallTimeout(t *testing.T) {
	const stall = 200 * time.Millisecond
	for _, mode := range modes {
		for _, tc := range []struct {
			name string
			side transfer.Side
		}{{"client-silent", transfer.SideSrc}, {"upstream-not-reading", transfer.SideDst}} {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				m := testMover(t, mode, transfer.Options{StallTimeout: stall})
				r := newRig(t)
				if tc.side == transfer.SideSrc {
					send(r.client, 0, 0, body(100000))
					sink(r.up, 0)
				} else {
					send(r.client, 0, 0, body(64<<20))
				}
				start := time.Now()
				_, err := m.Move(context.Background(), r.dst, r.src, nil, 64<<20)
				d := time.Since(start)
				wantError(t, err, tc.side, transfer.ErrStalled)
				if d < stall || d > 5*time.Second {
					t.Errorf("stalled Move returned after %v; want about %v", d, stall)
				}
			})
		}
	}
}

// TestMoveClearsDeadlines: after a successful Move with a cancellable ctx
// and a stall timeout, src can still be read and dst written long after the
// timeout (keep-alive needs both).
func TestMoveClearsDeadlines(t *testing.T) {
	const stall = 50 * time.Millisecond
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			m := testMover(t, mode, transfer.Options{StallTimeout: stall})
			r := newRig(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			send(r.client, 0, 0, body(1<<20))
			got := sink(r.up, 0)
			if _, err := m.Move(ctx, r.dst, r.src, nil, 1<<20); err != nil {
				t.Fatalf("Move = %v", err)
			}
			time.Sleep(3 * stall)
			send(r.client, 0, 0, testTrailer)
			readTrailer(t, r.src, testTrailer)
			if _, err := r.dst.Write([]byte("more")); err != nil {
				t.Fatalf("dst.Write after Move = %v; want nil (write deadline cleared)", err)
			}
			r.dst.Close()
			if s := <-got; s.n != 1<<20+4 {
				t.Errorf("receiver got %d bytes; want %d", s.n, 1<<20+4)
			}
		})
	}
}

// TestMoveKeepAlive runs several bodies back to back on one connection pair,
// as a keep-alive client would, on a shared Mover.
func TestMoveKeepAlive(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			m := testMover(t, mode, transfer.Options{})
			r := newRig(t)
			sizes := []int{5, 1 << 20, 3<<20 + 1, 0, 777}
			var all [][]byte
			for _, s := range sizes {
				all = append(all, body(s))
			}
			sent := send(r.client, 0, 0, all...)
			got := sink(r.up, 0)
			var total int64
			for _, s := range sizes {
				res, err := m.Move(context.Background(), r.dst, r.src, nil, int64(s))
				if err != nil {
					t.Fatalf("Move(%d) = %v", s, err)
				}
				total += res.Spliced + res.Copied
			}
			<-sent
			r.dst.Close()
			s := <-got
			if s.n != total || s.sum != digest(all...) {
				t.Errorf("receiver got %d bytes; want %d, intact", s.n, total)
			}
		})
	}
}

func TestResetClose(t *testing.T) {
	a, b := tcpPair(t)
	defer b.Close()
	if err := transfer.ResetClose(a); err != nil {
		t.Fatalf("ResetClose = %v", err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := b.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("peer Read after ResetClose = %v; want ECONNRESET", err)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for ; n > 0; n /= 10 {
		i--
		b[i] = byte('0' + n%10)
	}
	return string(b[i:])
}

// TestMoveEarlyResponse: the upstream answers before the body is complete
// (412, 403...) and stops reading. A watcher reading dst concurrently (Move
// only owns dst's write deadline) sees the answer and cancels Move, then
// keeps reading the rest of the answer after Move returned.
func TestMoveEarlyResponse(t *testing.T) {
	const head, tail = "HTTP/1.1 412 Precondition Failed\r\n", "Content-Length: 0\r\n\r\n"
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			m := testMover(t, mode, transfer.Options{})
			r := newRig(t)
			send(r.client, 0, 0, body(64<<20))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r.up.Write([]byte(head))
			watched := make(chan string, 1)
			go func() {
				buf := make([]byte, len(head)+len(tail))
				if _, err := io.ReadFull(r.dst, buf[:len(head)]); err != nil {
					watched <- "read: " + err.Error()
					return
				}
				cancel()
				if _, err := io.ReadFull(r.dst, buf[len(head):]); err != nil {
					watched <- "read after cancel: " + err.Error()
					return
				}
				watched <- string(buf)
			}()
			_, err := m.Move(ctx, r.dst, r.src, testPrefix, 64<<20)
			// Move may be waiting on either side when the cancel lands.
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Move = %v; want context.Canceled", err)
			}
			r.up.Write([]byte(tail))
			select {
			case got := <-watched:
				if got != head+tail {
					t.Errorf("watcher read %q; want %q", got, head+tail)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("watcher never read the whole early answer")
			}
		})
	}
}

// TestMoveTailNotCorked: the last chunk of a body is sent without
// SPLICE_F_MORE, so the upstream gets the tail at once instead of after the
// kernel's ~200 ms cork timer.
func TestMoveTailNotCorked(t *testing.T) {
	const rounds, size = 5, 1<<20 + 1000 // a small last chunk
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			m := testMover(t, mode, transfer.Options{})
			r := newRig(t)
			worst := worstTailDelay(t, m, r, rounds, size)
			if worst > 100*time.Millisecond {
				t.Errorf("tail reached the upstream up to %v after Move returned; want it sent at once (SPLICE_F_MORE left on?)", worst)
			}
		})
	}
}

// worstTailDelay moves rounds bodies of size bytes whose last 1000 bytes the client sends after a
// 20 ms pause (when everything before them is acknowledged: only then would a cork hold them) and
// returns the longest time from Move's return to the whole body's arrival upstream.
func worstTailDelay(t *testing.T, m *transfer.Mover, r *rig, rounds, size int) time.Duration {
	t.Helper()
	arrived := make(chan time.Time)
	go func() {
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(r.up, buf); err != nil {
				return
			}
			arrived <- time.Now()
		}
	}()
	var worst time.Duration
	for range rounds {
		send(r.client, size-1000, 20*time.Millisecond, body(size))
		if _, err := m.Move(context.Background(), r.dst, r.src, nil, int64(size)); err != nil {
			t.Fatalf("Move = %v", err)
		}
		done := time.Now()
		if d := (<-arrived).Sub(done); d > worst {
			worst = d
		}
	}
	return worst
}
