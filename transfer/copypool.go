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
// buffers cost up to 4× the syscalls). A waiting client costs only its kernel socket buffer: TCP
// flow control holds its bytes back, as it does for any slow upstream, and the transfers that
// hold the buffers move bytes as fast as the link allows, so a wait is short unless the proxy is
// overloaded — then StallTimeout answers it, as it answers any transfer that cannot move.
//
// Buffers are made on demand and kept for reuse in a LIFO list (the most recently used one is
// the warmest in cache), never more than max. Unlike a sync.Pool, whose contents the garbage
// collector drops every other cycle, a kept buffer is never garbage: the copy path makes no
// garbage at all, so it does not drive the GC's pacing. The cost is that up to CopyMemoryMax
// stays allocated after a burst of concurrent copies.
//
// Safe for concurrent use.
type copyPool struct {
	size int
	max  int
	sem  chan struct{} // one token per buffer lent out; capacity max

	mu   sync.Mutex
	idle []*[]byte // LIFO; len <= max

	waiting atomic.Int64 // transfers waiting for a buffer now
	waits   atomic.Int64 // transfers that had to wait, ever
}

// maxCopyBuffers bounds the count of buffers (and the size of the semaphore) whatever the options.
const maxCopyBuffers = 1 << 20

func newCopyPool(size, maxBytes int) *copyPool {
	n := max(1, min(maxBytes/size, maxCopyBuffers))
	return &copyPool{size: size, max: n, sem: make(chan struct{}, n)}
}

// get lends a buffer of len p.size. When none is free it waits until one is, j's context ends
// (the context's error) or j's stall timeout passes (ErrStalled). Uncontended it allocates nothing
// once the buffer exists.
func (p *copyPool) get(j *job) (*[]byte, error) {
	select {
	case p.sem <- struct{}{}:
	default:
		if err := p.wait(j); err != nil {
			return nil, err
		}
	}
	p.mu.Lock()
	var bp *[]byte
	if n := len(p.idle); n > 0 {
		bp = p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
	}
	p.mu.Unlock()
	if bp == nil {
		b := make([]byte, p.size)
		bp = &b
	}
	return bp, nil
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

// put takes back a buffer lent by get. The caller keeps no reference to it.
func (p *copyPool) put(bp *[]byte) {
	p.mu.Lock()
	p.idle = append(p.idle, bp)
	p.mu.Unlock()
	<-p.sem
}

func (p *copyPool) stats(s *Stats) {
	s.CopyBuffersMax = p.max
	s.CopyBuffersInUse = int64(len(p.sem))
	p.mu.Lock()
	s.CopyBuffersIdle = int64(len(p.idle))
	p.mu.Unlock()
	s.CopyWaiting = p.waiting.Load()
	s.CopyWaits = p.waits.Load()
}
