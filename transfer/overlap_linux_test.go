package transfer_test

import (
	"context"
	"io"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/transfer"
)

// Bodies above transfer.OverlapMin(pipe size) splice through two pipes:
// while dst is not writable, Move reads ahead from src into the second. These tests hold that path to the same contract as the single-pipe
// one (move_test.go): exact counts, a pipelined trailer left unread, errors
// on the right side, prompt returns, only empty pipes pooled, no goroutine
// left behind.

// smallPipes makes many fill/drain rounds (and hand-overs) per body.
var smallPipes = transfer.Options{PipeSize: 64 << 10, MinPipeSize: 64 << 10}

// wantOverlapped checks that m's overlapped count grew by want since before.
func wantOverlapped(t *testing.T, m *transfer.Mover, before, want int64) {
	t.Helper()
	if got := m.Overlapped() - before; got != want {
		t.Errorf("transfers on the two-pipe path = %d; want %d", got, want)
	}
}

// wantPoolClean checks that no pipe is in use and every idle pipe is empty.
func wantPoolClean(t *testing.T, m *transfer.Mover, idle int64) {
	t.Helper()
	if st := m.Stats(); st.PipesInUse != 0 || st.PipesIdle != idle {
		t.Errorf("Stats = %+v; want 0 in use, %d idle", st, idle)
	}
	for i, n := range m.IdlePipeBytes() {
		if n != 0 {
			t.Errorf("idle pipe %d holds %d bytes; want only empty pipes pooled", i, n)
		}
	}
}

func TestOverlapMove(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       transfer.Options
		size    int
		overlap bool
	}{
		{"default/at-threshold", transfer.Options{}, int(transfer.OverlapMin(transfer.DefaultPipeSize)), false},
		{"default/threshold+1", transfer.Options{}, int(transfer.OverlapMin(transfer.DefaultPipeSize)) + 1, true},
		{"default/7MiB+3", transfer.Options{}, 7<<20 + 3, true},
		{"default/64MiB", transfer.Options{}, 64 << 20, true},
		{"64KiB-pipes/5MiB+7", smallPipes, 5<<20 + 7, true},
	} {
		for _, prefix := range [][]byte{nil, testPrefix} {
			t.Run(tc.name+"/prefix="+itoa(len(prefix)), func(t *testing.T) {
				m := testMover(t, transfer.ModeSplice, tc.o)
				r := newRig(t)
				before := m.Overlapped()
				moveAndCheck(t, m, r, transfer.ModeSplice, prefix, tc.size, 0, 0, 0)
				want := int64(0)
				if tc.overlap {
					want = 1
				}
				wantOverlapped(t, m, before, want)
				wantPoolClean(t, m, 1+want)
			})
		}
	}
}

// TestOverlapSlow: EAGAIN on both sides while two pipes are in flight.
func TestOverlapSlow(t *testing.T) {
	for _, tc := range []struct {
		name        string
		chunk       int
		sendPause   time.Duration
		smallBufs   bool
		readerPause time.Duration
	}{
		{name: "slow-writer", chunk: 32 << 10, sendPause: 200 * time.Microsecond},
		{name: "slow-reader", smallBufs: true, readerPause: 500 * time.Microsecond},
		{name: "both", chunk: 16 << 10, sendPause: 100 * time.Microsecond, smallBufs: true, readerPause: 300 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := smallPipes
			o.StallTimeout = 20 * time.Second
			m := testMover(t, transfer.ModeSplice, o)
			r := newRig(t)
			if tc.smallBufs {
				if err := r.up.SetReadBuffer(64 << 10); err != nil {
					t.Fatal(err)
				}
				if err := r.dst.SetWriteBuffer(16 << 10); err != nil {
					t.Fatal(err)
				}
			}
			w0, before := waits(m), m.Overlapped()
			moveAndCheck(t, m, r, transfer.ModeSplice, testPrefix, 2<<20+7, tc.chunk, tc.sendPause, tc.readerPause)
			wantOverlapped(t, m, before, 1)
			w := waits(m)
			if tc.chunk > 0 && w.src == w0.src {
				t.Errorf("never waited for src readability; want at least one EAGAIN on fill")
			}
			if tc.smallBufs && w.dst == w0.dst {
				t.Errorf("never waited for dst writability; want at least one EAGAIN on drain")
			}
			wantPoolClean(t, m, 2)
		})
	}
}

// TestOverlapPoolReuse: back-to-back overlapped transfers on one connection
// pair (keep-alive) reuse the same two pipes, interleaved with small bodies
// that take one of them.
func TestOverlapPoolReuse(t *testing.T) {
	m := testMover(t, transfer.ModeSplice, transfer.Options{})
	r := newRig(t)
	sizes := []int{3<<20 + 1, 100, 9 << 20, 1<<20 + 5, 4 << 20}
	var all [][]byte
	for _, s := range sizes {
		all = append(all, body(s))
	}
	sent := send(r.client, 0, 0, all...)
	got := sink(r.up, 0)
	var total int64
	for _, s := range sizes {
		res, err := m.Move(context.Background(), r.dst, r.src, nil, int64(s))
		if err != nil || res.Spliced != int64(s) || res.Mode != transfer.ModeSplice {
			t.Fatalf("Move(%d) = %+v, %v; want all spliced", s, res, err)
		}
		total += res.Spliced
		wantPoolClean(t, m, 2)
	}
	if n := m.PipesCreated(); n != 2 {
		t.Errorf("pipes created = %d; want 2 (reused from the pool)", n)
	}
	if n := m.Overlapped(); n != 3 {
		t.Errorf("overlapped transfers = %d; want 3", n)
	}
	<-sent
	r.dst.Close()
	if s := <-got; s.n != total || s.sum != digest(all...) {
		t.Errorf("receiver got %d bytes; want %d, intact", s.n, total)
	}
}

// TestOverlapClientClosesEarly: the client stops mid-body. Every byte it
// sent reaches dst (the pipe in flight is drained), the count is exact, and
// the error is ErrShortBody on the client's side.
func TestOverlapClientClosesEarly(t *testing.T) {
	for _, sentN := range []int{3<<20 + 11, 64<<10 + 1} {
		t.Run(itoa(sentN), func(t *testing.T) {
			m := testMover(t, transfer.ModeSplice, smallPipes)
			r := newRig(t)
			const declared = 16 << 20
			send(r.client, 0, 0, body(sentN))
			go func() { time.Sleep(20 * time.Millisecond); r.client.CloseWrite() }()
			got := sink(r.up, 0)
			before := m.Overlapped()
			res, err := m.Move(context.Background(), r.dst, r.src, testPrefix, declared)
			wantError(t, err, transfer.SideSrc, transfer.ErrShortBody)
			wantOverlapped(t, m, before, 1)
			if res.Spliced != int64(sentN) || res.Copied != int64(len(testPrefix)) {
				t.Errorf("Spliced, Copied = %d, %d; want %d, %d", res.Spliced, res.Copied, sentN, len(testPrefix))
			}
			r.dst.Close()
			if s := <-got; s.n != int64(len(testPrefix)+sentN) || s.sum != digest(testPrefix, body(sentN)) {
				t.Errorf("receiver got %d bytes; want %d, intact", s.n, len(testPrefix)+sentN)
			}
			wantPoolClean(t, m, 0)
		})
	}
}

// TestOverlapUpstreamFails: the upstream resets or closes mid-body while
// Move may be waiting for the client or for an empty pipe: it returns
// promptly with the upstream's error, and both pipes are closed.
func TestOverlapUpstreamFails(t *testing.T) {
	for _, how := range []string{"reset", "close"} {
		for _, client := range []string{"fast", "trickle"} {
			t.Run(how+"/"+client, func(t *testing.T) {
				m := testMover(t, transfer.ModeSplice, smallPipes)
				r := newRig(t)
				if client == "fast" {
					send(r.client, 0, 0, body(64<<20))
				} else {
					// The reader waits for src most of the time.
					send(r.client, 4<<10, 2*time.Millisecond, body(64<<20))
				}
				go func() {
					io.ReadFull(r.up, make([]byte, 256<<10))
					if how == "reset" {
						transfer.ResetClose(r.up)
					} else {
						r.up.Close()
					}
				}()
				res, err := awaitMove(t, moveAsync(m, context.Background(), r, 64<<20), 20*time.Second, "the upstream went away")
				wantError(t, err, transfer.SideDst, syscall.ECONNRESET, syscall.EPIPE)
				if res.Spliced < 256<<10 || res.Spliced >= 64<<20 {
					t.Errorf("Spliced = %d; want at least what the upstream read, less than the body", res.Spliced)
				}
				wantPoolClean(t, m, 0)
			})
		}
	}
}

// TestOverlapStallTimeout: a silent client stalls the fill, an upstream
// that stops reading stalls the drain (with the second pipe read ahead);
// either way Move fails with ErrStalled on that side after about the
// timeout, and the pipes that may hold bytes are closed.
func TestOverlapStallTimeout(t *testing.T) {
	const stall = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		side transfer.Side
	}{{"client-silent", transfer.SideSrc}, {"upstream-not-reading", transfer.SideDst}} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMover(t, transfer.ModeSplice, transfer.Options{StallTimeout: stall})
			r := newRig(t)
			if tc.side == transfer.SideSrc {
				send(r.client, 0, 0, body(5<<20+3))
				sink(r.up, 0)
			} else {
				send(r.client, 0, 0, body(64<<20))
			}
			before := m.Overlapped()
			start := time.Now()
			res, err := m.Move(context.Background(), r.dst, r.src, nil, 64<<20)
			d := time.Since(start)
			wantError(t, err, tc.side, transfer.ErrStalled)
			wantOverlapped(t, m, before, 1)
			if d < stall || d > 5*time.Second {
				t.Errorf("stalled Move returned after %v; want about %v", d, stall)
			}
			if tc.side == transfer.SideSrc && res.Spliced != 5<<20+3 {
				t.Errorf("Spliced = %d; want every byte the client sent (%d)", res.Spliced, 5<<20+3)
			}
			wantPoolClean(t, m, 0)
		})
	}
}

// TestOverlapContextCancel: cancelling ctx stops the transfer promptly,
// whichever side Move is waiting on.
func TestOverlapContextCancel(t *testing.T) {
	for _, tc := range []struct {
		name string
		side transfer.Side
	}{{"client-silent", transfer.SideSrc}, {"upstream-not-reading", transfer.SideDst}} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMover(t, transfer.ModeSplice, transfer.Options{})
			r := newRig(t)
			if tc.side == transfer.SideSrc {
				send(r.client, 0, 0, body(3<<20))
				sink(r.up, 0)
			} else {
				send(r.client, 0, 0, body(64<<20))
			}
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			_, err := m.Move(ctx, r.dst, r.src, nil, 64<<20)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Move took %v after cancel at 100ms; want prompt return", d)
			}
			wantError(t, err, tc.side, context.Canceled)
			wantPoolClean(t, m, 0)
		})
	}
}

// TestOverlapTailNotCorked: the last chunk of an overlapped body goes
// without SPLICE_F_MORE.
func TestOverlapTailNotCorked(t *testing.T) {
	const rounds, size = 4, 3<<20 + 1000
	m := testMover(t, transfer.ModeSplice, transfer.Options{})
	r := newRig(t)
	worst := worstTailDelay(t, m, r, rounds, size)
	if n := m.Overlapped(); n != rounds {
		t.Errorf("overlapped transfers = %d; want %d", n, rounds)
	}
	if worst > 100*time.Millisecond {
		t.Errorf("tail reached the upstream up to %v after Move returned; want it sent at once", worst)
	}
}

// TestOverlapNoGoroutineLeak: after successful, failed and cancelled
// overlapped transfers, the goroutine count settles back where it was (the
// two-pipe path runs no goroutine of its own; this keeps it so).
func TestOverlapNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	m := transfer.NewMover(transfer.Options{StallTimeout: 5 * time.Second})
	for i := range 8 {
		r := newRig(t)
		switch i % 4 {
		case 0: // success
			send(r.client, 0, 0, body(5<<20))
			sink(r.up, 0)
			if _, err := m.Move(context.Background(), r.dst, r.src, nil, 5<<20); err != nil {
				t.Fatalf("Move = %v", err)
			}
		case 1: // client gone
			send(r.client, 0, 0, body(3<<20))
			go func() { time.Sleep(10 * time.Millisecond); r.client.CloseWrite() }()
			sink(r.up, 0)
			m.Move(context.Background(), r.dst, r.src, nil, 16<<20)
		case 2: // upstream reset
			send(r.client, 0, 0, body(16<<20))
			go func() { io.ReadFull(r.up, make([]byte, 1<<20)); transfer.ResetClose(r.up) }()
			m.Move(context.Background(), r.dst, r.src, nil, 16<<20)
		case 3: // cancelled with both pipes full
			send(r.client, 0, 0, body(16<<20))
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			m.Move(ctx, r.dst, r.src, nil, 16<<20)
			cancel()
		}
		r.close()
	}
	if n := m.Overlapped(); n != 8 {
		t.Errorf("overlapped transfers = %d; want 8", n)
	}
	m.Close()
	waitFor(t, "the goroutine count to settle", func() bool { return runtime.NumGoroutine() <= before })
}

// TestOverlapBounded: a transfer takes a second pipe only while fewer than
// MaxIdlePipes/4 pipes are in use, so many concurrent large transfers hold
// about one pipe each (the unprivileged pipe budget stays for them).
func TestOverlapBounded(t *testing.T) {
	const size = 8 << 20
	m := testMover(t, transfer.ModeSplice, transfer.Options{MaxIdlePipes: 16}) // bound: 4 in use
	wantInUse := []int64{2, 4, 5, 6}                                           // after each transfer started
	var rigs []*rig
	errs := make(chan error, len(wantInUse))
	for i, want := range wantInUse {
		r := newRig(t)
		rigs = append(rigs, r)
		sink(r.up, 0)
		go func() {
			_, err := m.Move(context.Background(), r.dst, r.src, nil, size)
			errs <- err
		}()
		waitFor(t, "transfer "+itoa(i)+" to hold its pipes", func() bool { return m.Stats().PipesInUse == want })
	}
	for _, r := range rigs {
		send(r.client, 0, 0, body(size))
	}
	for range rigs {
		if err := <-errs; err != nil {
			t.Fatalf("Move = %v", err)
		}
	}
	if n := m.Overlapped(); n != 2 {
		t.Errorf("overlapped transfers = %d; want 2 (then the bound)", n)
	}
	wantPoolClean(t, m, 6)
}

// TestOverlapUpstreamResetWhileWaiting: the upstream stops reading (tiny
// buffers) while Move holds the client's bytes, the client has gone silent
// with ("pipe": it sent more than a pipe, so Move read ahead) or without
// ("src") more bytes to read; then the upstream resets. Move returns at
// once with the upstream's error, no context or stall timeout needed.
func TestOverlapUpstreamResetWhileWaiting(t *testing.T) {
	for _, tc := range []struct {
		name string
		sent int
	}{{"src", 100 << 10}, {"pipe", 1200 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			m := testMover(t, transfer.ModeSplice, transfer.Options{PipeSize: 256 << 10})
			r := newRig(t)
			if err := r.up.SetReadBuffer(4 << 10); err != nil {
				t.Fatal(err)
			}
			if err := r.dst.SetWriteBuffer(4 << 10); err != nil {
				t.Fatal(err)
			}
			send(r.client, 0, 0, body(tc.sent)) // then silence, never closed
			time.Sleep(50 * time.Millisecond)   // all of it in src before Move
			moved := moveAsync(m, context.Background(), r, 16<<20)
			waitFor(t, "Move to take its pipes", func() bool { return m.Stats().PipesInUse == 2 })
			time.Sleep(100 * time.Millisecond) // Move is waiting for the upstream
			transfer.ResetClose(r.up)
			res, err := awaitMove(t, moved, 10*time.Second, "the upstream reset")
			wantError(t, err, transfer.SideDst, syscall.ECONNRESET, syscall.EPIPE)
			if tc.name == "pipe" && m.ReadAheads() == 0 {
				t.Errorf("no read-ahead; want one while the upstream made Move wait")
			}
			if res.Spliced >= int64(tc.sent) {
				t.Errorf("Spliced = %d; want less than the %d bytes sent (the upstream stopped reading)", res.Spliced, tc.sent)
			}
			wantPoolClean(t, m, 0)
		})
	}
}
