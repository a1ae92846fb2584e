package transfer

import (
	"sync"
	"sync/atomic"
	"time"
)

// copyPool lends the copy path's buffers, at most max of them at once (Options.CopyMemoryMax /
// Options.CopyBufferSize), so the path's memory is bounded per transfer (one buffer) and in total.
//
// When all max buffers are lent out, a transfer waits for one to come back, within its stall
// timeout and its context, and then fails as a stalled transfer would. The alternative — copying
// through a smaller buffer made past the cap — would make the cap a soft one (a thousand waiting
// transfers would each still hold memory) and would cost more CPU per byte (DESIGN.md: small
// buffers cost up to 4× the syscalls). Waiting is short because holders take turns: while anyone
// waits, a transfer reading a socket gives its buffer back after each chunk and waits for its
// client's next bytes without one (copyBody), so a slow or silent client holds no buffer and the
// buffers go round the transfers that have bytes to move. A waiting client costs only its kernel
// socket buffer: TCP flow control holds its bytes back, as it does for any slow upstream.
//
// A source that cannot be waited on without reading (a TLS client: crypto/tls may hold decrypted
// bytes the socket no longer shows) keeps its buffer to the end and so could not take turns:
// rather than wait, possibly for a whole upload, it copies through a CopyOverflowBufferSize buffer
// past the cap — the size of the TLS record crypto/tls already holds for that connection, so such
// a transfer at most doubles what its connection costs anyway.
//
// Buffers are mapped on demand outside the Go heap (mapBuf: mmap on Unix), kept for reuse in a
// LIFO list (the most recently used one is the warmest in cache) and unmapped when more than
// copyIdleSlack would sit idle beyond those in use. So the copy path makes no garbage (a sync.Pool
// drops its contents every other GC cycle, and each refill is 256 KiB of new garbage), its live
// buffers do not raise the GC's heap goal (under GOGC=100 every live heap byte lets one more
// byte of garbage accumulate), and after a burst of concurrent copies the memory goes back to the
// OS at once instead of lingering until the scavenger returns it.
//
// Safe for concurrent use.
type copyPool struct {
	size int
	max  int
	sem  chan struct{} // one token per buffer lent out; capacity max

	mu     sync.Mutex
	idle   []*copyBuf // LIFO; len <= max
	closed bool       // Mover.Close ran: buffers are released, not kept

	waiting   atomic.Int64 // transfers waiting for a buffer now
	waits     atomic.Int64 // transfers that had to wait, ever
	overflows atomic.Int64 // overflow buffers handed out, ever
}

// copyBuf is one copy buffer; mapped tells how to release it, overflow that it holds no token.
type copyBuf struct {
	b        []byte
	mapped   bool
	overflow bool
}

// CopyOverflowBufferSize is the buffer of a copy whose source cannot wait (see copyPool) when
// every full-size buffer is lent out: one TLS record's plaintext.
const CopyOverflowBufferSize = 16 << 10

// overflowBufs holds the overflow buffers (heap; few and small).
var overflowBufs = sync.Pool{New: func() any { return &copyBuf{b: make([]byte, CopyOverflowBufferSize), overflow: true} }}

func (cb *copyBuf) release() {
	if cb.mapped {
		unmapBuf(cb.b)
	}
	cb.b = nil
}

// copyIdleSlack is how many idle buffers are kept beyond the number in use (256 KiB each by
// default): enough that a steady load reuses buffers instead of mapping one per transfer.
const copyIdleSlack = 4

// maxCopyBuffers bounds the count of buffers (and the size of the semaphore) whatever the options.
const maxCopyBuffers = 1 << 20

func newCopyPool(size, maxBytes int) *copyPool {
	n := max(1, min(maxBytes/size, maxCopyBuffers))
	return &copyPool{size: size, max: n, sem: make(chan struct{}, n)}
}

// get lends a buffer of len p.size. When none is free it waits until one is, j's context ends
// (the context's error) or j's stall timeout passes (ErrStalled). Uncontended it allocates nothing
// once the buffer exists.
//
// canWait false (the source cannot wait without a buffer): instead of waiting it gets an overflow
// buffer of CopyOverflowBufferSize, outside the cap.
func (p *copyPool) get(j *job, canWait bool) (*copyBuf, error) {
	select {
	case p.sem <- struct{}{}:
	default:
		if !canWait {
			p.overflows.Add(1)
			return overflowBufs.Get().(*copyBuf), nil
		}
		if err := p.wait(j); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	var cb *copyBuf
	if n := len(p.idle); n > 0 {
		cb = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	if cb == nil {
		b, mapped := mapBuf(p.size)
		cb = &copyBuf{b: b, mapped: mapped}
	}
	return cb, nil
}

// contended reports whether a get would wait now: every buffer is lent out or others wait.
func (p *copyPool) contended() bool {
	return len(p.sem) == cap(p.sem) || p.waiting.Load() > 0
}

// wait blocks until a token is taken (nil) or j's context or stall timeout ends the wait.
func (p *copyPool) wait(j *job) error {
	p.waits.Add(1)
	p.waiting.Add(1)
	defer p.waiting.Add(-1)
	var expired <-chan time.Time
	if j.stall > 0 {
		t := time.NewTimer(j.stall)
		defer t.Stop()
		expired = t.C
	}
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-j.ctx.Done():
		return j.ctx.Err()
	case <-expired:
		return ErrStalled
	}
}

// put takes back a buffer lent by get and keeps it for reuse; then, while more than
// copyIdleSlack buffers beyond those still in use are idle (any, once the pool is closed), it
// releases the least recently used. The caller keeps no reference to cb.
func (p *copyPool) put(cb *copyBuf) {
	if cb.overflow {
		overflowBufs.Put(cb)
		return
	}
	var extra [copyIdleSlack]*copyBuf // released outside the lock; more than this many wait for later puts
	p.mu.Lock()
	p.idle = append(p.idle, cb)
	limit := len(p.sem) - 1 + copyIdleSlack
	if p.closed {
		limit = 0
	}
	n := min(max(len(p.idle)-limit, 0), len(extra))
	copy(extra[:], p.idle[:n])
	m := copy(p.idle, p.idle[n:])
	clear(p.idle[m:])
	p.idle = p.idle[:m]
	p.mu.Unlock()
	<-p.sem
	for _, cb := range extra[:n] {
		cb.release()
	}
}

// close releases the idle buffers; those lent out are released when they come back.
func (p *copyPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, cb := range idle {
		cb.release()
	}
}

func (p *copyPool) stats(s *Stats) {
	s.CopyBuffersMax = p.max
	s.CopyBuffersInUse = int64(len(p.sem))
	p.mu.Lock()
	s.CopyBuffersIdle = int64(len(p.idle))
	p.mu.Unlock()
	s.CopyWaiting = p.waiting.Load()
	s.CopyWaits = p.waits.Load()
	s.CopyOverflows = p.overflows.Load()
}

// Buffer is a copy buffer lent by Mover.Borrow; give it back with Mover.Return.
type Buffer struct{ cb *copyBuf }

// Bytes is the buffer's memory: Options.CopyBufferSize bytes, or CopyOverflowBufferSize past the
// cap. It must not be used after Return.
func (b Buffer) Bytes() []byte { return b.cb.b }

// Borrow lends one of the copy path's buffers (Options.CopyMemoryMax) to a copy the caller drives
// itself, from a source that holds bytes of its own — a de-chunker, a buffered reader — and so
// cannot give its buffer back and wait for its socket to be readable. Like Move for such a source
// (a TLS client), it never waits: when every buffer of the cap is lent out it lends a
// CopyOverflowBufferSize buffer outside the cap (counted in Stats.CopyOverflows). The buffer
// counts in Stats.CopyBuffersInUse until Return. Uncontended it allocates nothing once the buffer
// exists.
func (m *Mover) Borrow() Buffer {
	cb, _ := m.bufs.get(nil, false) // never waits, so never fails and never reads the job
	return Buffer{cb}
}

// Return takes back a buffer lent by Borrow. The caller keeps no reference to its bytes.
func (m *Mover) Return(b Buffer) { m.bufs.put(b.cb) }
