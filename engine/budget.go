package engine

import "sync/atomic"

// byteBudget bounds the bytes that requests of one kind may hold in memory at once, across every
// connection and event loop: CompleteMultipartUpload documents are buffered whole (up to
// maxCompleteBody each) before they are checked and sent, so without a shared bound an
// authenticated client could make the proxy hold 4 MiB per connection it opens.
//
// A request reserves its declared size before its first body byte is read (tryAcquire; a refusal
// means 503 SlowDown) and gives it back exactly once, when the buffer is released (release). It
// never blocks, so it may be called on an event loop. Safe for concurrent use; the zero value is
// not usable (use newByteBudget).
type byteBudget struct {
	limit int64
	used  atomic.Int64
}

// newByteBudget returns a budget of limit bytes (limit > 0).
func newByteBudget(limit int64) *byteBudget {
	if limit <= 0 {
		panic("engine: byteBudget limit must be positive")
	}
	return &byteBudget{limit: limit}
}

// tryAcquire reserves n bytes (n >= 0) and reports true if the bytes in use stay at or under the
// limit; otherwise it reserves nothing and reports false. A request larger than the whole limit is
// always refused.
func (b *byteBudget) tryAcquire(n int64) bool {
	if n < 0 {
		panic("engine: byteBudget.tryAcquire of a negative size")
	}
	for {
		cur := b.used.Load()
		if n > b.limit-cur {
			return false
		}
		if b.used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// release gives back n bytes reserved by a successful tryAcquire(n). Releasing more than is in use
// is a bug in the caller and panics.
func (b *byteBudget) release(n int64) {
	if n < 0 || b.used.Add(-n) < 0 {
		panic("engine: byteBudget released more than was acquired")
	}
}

// inUse returns the bytes reserved now (for a gauge; it may be stale as soon as it returns).
func (b *byteBudget) inUse() int64 { return b.used.Load() }

// max returns the limit.
func (b *byteBudget) max() int64 { return b.limit }
