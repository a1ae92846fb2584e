package transfer_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/transfer"
)

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type moveOutcome struct {
	res transfer.Result
	err error
}

func moveAsync(m *transfer.Mover, ctx context.Context, r *rig, n int64) <-chan moveOutcome {
	ch := make(chan moveOutcome, 1)
	go func() {
		res, err := m.Move(ctx, r.dst, r.src, nil, n)
		ch <- moveOutcome{res, err}
	}()
	return ch
}

// TestCopyMemoryMax: the copy path never holds more than CopyMemoryMax bytes of buffers; a transfer
// that finds them all lent out waits, and proceeds as soon as one comes back.
func TestCopyMemoryMax(t *testing.T) {
	const size = 64 << 10
	m := testMover(t, transfer.ModeCopy, transfer.Options{CopyBufferSize: size, CopyMemoryMax: 2 * size})
	if got := m.Stats().CopyBuffersMax; got != 2 {
		t.Fatalf("CopyBuffersMax = %d; want 2", got)
	}
	const n = 1 << 20
	// Two transfers whose clients send a little and then pause hold both buffers.
	var holders [2]*rig
	var held [2]<-chan moveOutcome
	for i := range holders {
		r := newRig(t)
		holders[i] = r
		sink(r.up, 0)
		if err := <-send(r.client, 0, 0, body(1000)); err != nil {
			t.Fatal(err)
		}
		held[i] = moveAsync(m, context.Background(), r, n)
	}
	waitUntil(t, "two buffers in use", func() bool { return m.Stats().CopyBuffersInUse == 2 })

	// A third transfer, whose client sent everything, gets no buffer: it waits.
	r3 := newRig(t)
	got3 := sink(r3.up, 0)
	send(r3.client, 0, 0, body(n))
	third := moveAsync(m, context.Background(), r3, n)
	waitUntil(t, "a waiting transfer", func() bool { return m.Stats().CopyWaiting == 1 })
	select {
	case o := <-third:
		t.Fatalf("third Move finished (%+v, %v) while the cap was reached; want it to wait", o.res, o.err)
	case <-time.After(200 * time.Millisecond):
	}
	if s := m.Stats(); s.CopyBuffersInUse != 2 {
		t.Fatalf("CopyBuffersInUse = %d while one waits; want 2 (the cap)", s.CopyBuffersInUse)
	}

	// The first holder completes: its buffer goes to the third transfer.
	send(holders[0].client, 0, 0, body(n)[1000:])
	if o := <-held[0]; o.err != nil || o.res.Copied != n {
		t.Fatalf("first Move = %+v, %v; want %d bytes copied", o.res, o.err, n)
	}
	if o := <-third; o.err != nil || o.res.Copied != n || o.res.Mode != transfer.ModeCopy {
		t.Fatalf("third Move = %+v, %v; want %d bytes copied", o.res, o.err, n)
	}
	r3.dst.Close()
	if s := <-got3; s.n != n || s.sum != digest(body(n)) {
		t.Fatalf("third upstream got %d bytes (digest match %v); want the %d body bytes", s.n, s.sum == digest(body(n)), n)
	}
	send(holders[1].client, 0, 0, body(n)[1000:])
	if o := <-held[1]; o.err != nil {
		t.Fatalf("second Move = %v", o.err)
	}
	s := m.Stats()
	if s.CopyBuffersInUse != 0 || s.CopyWaiting != 0 || s.CopyBuffersIdle != 2 || s.CopyWaits < 1 {
		t.Fatalf("Stats after all transfers = %+v; want 0 in use, 0 waiting, 2 idle, some waits", s)
	}
}

// hiddenConn hides a connection's SyscallConn: a source the copy path cannot wait on without a
// buffer (like a TLS client), so its transfer keeps its buffer to the end.
type hiddenConn struct{ net.Conn }

// TestCopyMemoryMaxWaitBounded: a transfer waiting for a copy buffer gives up like a stalled one
// (ErrStalled after StallTimeout), or when its context ends, without writing any body byte.
func TestCopyMemoryMaxWaitBounded(t *testing.T) {
	const size = 64 << 10
	const stall = 300 * time.Millisecond
	for _, tc := range []struct {
		name   string
		cancel bool
		want   error
	}{{"stall", false, transfer.ErrStalled}, {"ctx", true, context.Canceled}} {
		t.Run(tc.name, func(t *testing.T) {
			o := transfer.Options{CopyBufferSize: size, CopyMemoryMax: size, StallTimeout: stall}
			if tc.cancel {
				o.StallTimeout = 20 * stall // the context ends first
			}
			m := testMover(t, transfer.ModeCopy, o)
			// The holder's client trickles a byte every 50 ms: it never stalls, and keeps the buffer.
			h := newRig(t)
			sink(h.up, 0)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
						if _, err := h.client.Write([]byte{'x'}); err != nil {
							return
						}
					}
				}
			}()
			go func() { _, _ = m.Move(context.Background(), h.dst, hiddenConn{h.src}, nil, 1<<20) }()
			waitUntil(t, "the buffer in use", func() bool { return m.Stats().CopyBuffersInUse == 1 })

			r := newRig(t)
			got := sink(r.up, 0)
			send(r.client, 0, 0, body(4096))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(stall, cancel)
			}
			start := time.Now()
			res, err := m.Move(ctx, r.dst, r.src, []byte("head"), 4096)
			d := time.Since(start)
			var te *transfer.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &te) || te.Side != transfer.SideSrc {
				t.Fatalf("Move waiting for a buffer = %v; want a src error wrapping %v", err, tc.want)
			}
			if d < stall-50*time.Millisecond || d > 5*time.Second {
				t.Errorf("Move gave up after %v; want about %v", d, stall)
			}
			if res.Copied != 4 {
				t.Errorf("Copied = %d; want 4 (the prefix only)", res.Copied)
			}
			r.dst.Close()
			if s := <-got; s.n != 4 {
				t.Errorf("upstream got %d bytes; want the 4 prefix bytes only", s.n)
			}
			if s := m.Stats(); s.CopyWaiting != 0 || s.CopyBuffersInUse != 1 {
				t.Errorf("Stats = %+v; want nobody waiting and the holder's buffer in use", s)
			}
		})
	}
}

// TestCopyBuffersReleased: after a burst of concurrent copies the pool keeps only a few idle
// buffers (a handful above the transfers still running); the rest go back to the OS.
func TestCopyBuffersReleased(t *testing.T) {
	const size, burst = 64 << 10, 10
	m := testMover(t, transfer.ModeCopy, transfer.Options{CopyBufferSize: size, CopyMemoryMax: 16 * size})
	const n = 1 << 20
	var rigs [burst]*rig
	var moves [burst]<-chan moveOutcome
	for i := range rigs {
		r := newRig(t)
		rigs[i] = r
		sink(r.up, 0)
		if err := <-send(r.client, 0, 0, body(1000)); err != nil {
			t.Fatal(err)
		}
		moves[i] = moveAsync(m, context.Background(), r, n)
	}
	waitUntil(t, "the burst holding its buffers", func() bool { return m.Stats().CopyBuffersInUse == burst })
	for i, r := range rigs {
		send(r.client, 0, 0, body(n)[1000:])
		if o := <-moves[i]; o.err != nil {
			t.Fatalf("Move %d = %v", i, o.err)
		}
	}
	if s := m.Stats(); s.CopyBuffersInUse != 0 || s.CopyBuffersIdle > transfer.CopyIdleSlack {
		t.Fatalf("after the burst: %+v; want 0 in use and at most %d idle", s, transfer.CopyIdleSlack)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s.CopyBuffersIdle != 0 {
		t.Fatalf("after Close: %d idle buffers; want 0", s.CopyBuffersIdle)
	}
	// A closed Mover still copies (its buffers are then released as each transfer ends).
	r := newRig(t)
	got := sink(r.up, 0)
	send(r.client, 0, 0, body(n))
	if res, err := m.Move(context.Background(), r.dst, r.src, nil, n); err != nil || res.Copied != n {
		t.Fatalf("Move after Close = %+v, %v", res, err)
	}
	r.dst.Close()
	if s := <-got; s.sum != digest(body(n)) {
		t.Fatalf("body differs after Close")
	}
	if s := m.Stats(); s.CopyBuffersIdle != 0 || s.CopyBuffersInUse != 0 {
		t.Fatalf("after a Move on a closed Mover: %+v; want nothing kept", s)
	}
}

// TestCopyBufferYielded: a transfer whose client is slow does not keep the only buffer while
// another transfer waits for one: between chunks it gives it up and waits for its client's next
// bytes without it, so the waiting transfer moves its whole body while the slow one still runs.
func TestCopyBufferYielded(t *testing.T) {
	const size = 64 << 10
	m := testMover(t, transfer.ModeCopy, transfer.Options{CopyBufferSize: size, CopyMemoryMax: size, StallTimeout: 2 * time.Second})
	slow := newRig(t)
	slowGot := sink(slow.up, 0)
	stop := make(chan struct{})
	trickled := make(chan int, 1)
	go func() { // a byte every 20 ms until stopped, then the rest
		sent := 0
		defer func() { trickled <- sent }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if _, err := slow.client.Write(body(1 << 20)[sent : sent+1]); err != nil {
					return
				}
				sent++
			}
		}
	}()
	slowMove := moveAsync(m, context.Background(), slow, 1<<20)
	waitUntil(t, "the slow transfer holding the buffer", func() bool { return m.Stats().CopyBuffersInUse == 1 })

	const n = 8 << 20
	fast := newRig(t)
	fastGot := sink(fast.up, 0)
	send(fast.client, 0, 0, body(n))
	start := time.Now()
	res, err := m.Move(context.Background(), fast.dst, fast.src, nil, n)
	if err != nil || res.Copied != n {
		t.Fatalf("fast Move beside a slow one = %+v, %v; want %d bytes (it must not wait for the slow transfer)", res, err, n)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("fast Move took %v beside a slow one", d)
	}
	select {
	case o := <-slowMove:
		t.Fatalf("slow Move ended early: %+v, %v", o.res, o.err)
	default:
	}
	fast.dst.Close()
	if s := <-fastGot; s.n != n || s.sum != digest(body(n)) {
		t.Fatalf("fast upstream got %d bytes or a different body", s.n)
	}
	close(stop)
	sent := <-trickled
	send(slow.client, 0, 0, body(1 << 20)[sent:])
	if o := <-slowMove; o.err != nil || o.res.Copied != 1<<20 {
		t.Fatalf("slow Move = %+v, %v", o.res, o.err)
	}
	slow.dst.Close()
	if s := <-slowGot; s.sum != digest(body(1<<20)) {
		t.Fatalf("slow upstream got a different body")
	}
}

// TestCopyOverflowForUnwaitableSource: a transfer whose source cannot be waited on without a buffer
// (not a socket: a TLS client) does not wait when the cap is reached; it copies through a small
// buffer (CopyOverflowBufferSize) past the cap.
func TestCopyOverflowForUnwaitableSource(t *testing.T) {
	const size = 64 << 10
	m := testMover(t, transfer.ModeCopy, transfer.Options{CopyBufferSize: size, CopyMemoryMax: size, StallTimeout: 500 * time.Millisecond})
	h := newRig(t)
	sink(h.up, 0)
	if err := <-send(h.client, 0, 0, body(1000)); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := m.Move(context.Background(), h.dst, hiddenConn{h.src}, nil, 2000)
		held <- err
	}()
	waitUntil(t, "the buffer in use", func() bool { return m.Stats().CopyBuffersInUse == 1 })

	const n = 4 << 20
	r := newRig(t)
	got := sink(r.up, 0)
	send(r.client, 0, 0, body(n))
	res, err := m.Move(context.Background(), r.dst, hiddenConn{r.src}, nil, n)
	if err != nil || res.Copied != n {
		t.Fatalf("Move of an unwaitable source at the cap = %+v, %v; want %d bytes copied", res, err, n)
	}
	r.dst.Close()
	if s := <-got; s.n != n || s.sum != digest(body(n)) {
		t.Fatalf("upstream got %d bytes or a different body", s.n)
	}
	if s := m.Stats(); s.CopyOverflows != 1 || s.CopyWaits != 0 || s.CopyBuffersInUse != 1 {
		t.Fatalf("Stats = %+v; want 1 overflow, no wait, the holder's buffer in use", s)
	}
	send(h.client, 0, 0, body(1000))
	if err := <-held; err != nil {
		t.Fatalf("holder Move = %v", err)
	}
	if transfer.CopyOverflowBufferSize != 16<<10 {
		t.Errorf("CopyOverflowBufferSize = %d; want 16 KiB (one TLS record)", transfer.CopyOverflowBufferSize)
	}
}

// TestBorrow: Borrow lends a buffer of the cap, counted in use until Return; at the cap it lends an
// overflow buffer instead of waiting, and a Move that could wait then waits for the borrowed one.
func TestBorrow(t *testing.T) {
	const size = 64 << 10
	m := testMover(t, transfer.ModeCopy, transfer.Options{CopyBufferSize: size, CopyMemoryMax: size, StallTimeout: 5 * time.Second})
	a := m.Borrow()
	if len(a.Bytes()) != size {
		t.Fatalf("first Borrow: %d bytes; want %d", len(a.Bytes()), size)
	}
	if s := m.Stats(); s.CopyBuffersInUse != 1 || s.CopyOverflows != 0 {
		t.Fatalf("after one Borrow: Stats = %+v; want 1 in use, no overflow", s)
	}
	b := m.Borrow()
	if len(b.Bytes()) != transfer.CopyOverflowBufferSize {
		t.Fatalf("Borrow at the cap: %d bytes; want the %d-byte overflow buffer", len(b.Bytes()), transfer.CopyOverflowBufferSize)
	}
	if s := m.Stats(); s.CopyBuffersInUse != 1 || s.CopyOverflows != 1 || s.CopyWaits != 0 {
		t.Fatalf("after Borrow at the cap: Stats = %+v; want 1 in use, 1 overflow, no wait", s)
	}

	r := newRig(t)
	got := sink(r.up, 0)
	const n = 1 << 20
	send(r.client, 0, 0, body(n))
	done := moveAsync(m, context.Background(), r, n)
	waitUntil(t, "the Move to wait for the borrowed buffer", func() bool { return m.Stats().CopyWaiting == 1 })
	m.Return(b)
	if s := m.Stats(); s.CopyWaiting != 1 {
		t.Fatalf("returning the overflow buffer freed a buffer of the cap: Stats = %+v", s)
	}
	m.Return(a)
	if o := <-done; o.err != nil || o.res.Copied != n {
		t.Fatalf("Move after Return = %+v, %v; want %d bytes copied", o.res, o.err, n)
	}
	r.dst.Close()
	if s := <-got; s.n != n {
		t.Fatalf("upstream got %d bytes; want %d", s.n, n)
	}
	waitUntil(t, "no buffer in use", func() bool { return m.Stats().CopyBuffersInUse == 0 })
}
