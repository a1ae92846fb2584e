//go:build linux

package transfer

import (
	"sync/atomic"
	"syscall"
)

// The two-pipe path. On one pipe a transfer alternates: while the pipe
// waits for the upstream to take its bytes nothing is read from the client,
// so one large stream never keeps both sockets busy (about 0.8x a direct
// upload's throughput with the relay on its own core). Above overlapFactor
// pipes, a transfer takes a second pipe, and a writer goroutine when the
// upstream makes it wait:
//
//   - the goroutine running Move (the reader) fills an empty pipe once from
//     src (at most its capacity or the bytes still due); when no pipe is
//     with the writer it drains the pipe itself, without waiting
//     (tryDrain), exactly as the one-pipe path does while dst keeps up;
//   - when dst is not writable (or the writer still holds a pipe, to keep
//     the order), it hands the pipe to the writer and goes on filling the
//     other pipe; the writer drains each pipe it is handed to empty, waiting
//     for dst in the poller, and hands it back.
//
// So a fast upstream costs nothing more than the one-pipe path (no
// goroutine, no hand-over); a slow one gets up to two pipes read ahead.
// Each pipe still enters a fill empty and leaves a drain empty, so EAGAIN
// keeps its single meaning on each side (src not readable, dst not
// writable) and each goroutine waits in the runtime poller through its
// RawConn, under its own deadline (src read, dst write: Move owns both). The
// drain state (j.dp, the dst stall deadline) is used by one goroutine at a
// time: the reader drains only when every handed pipe came back.
//
// Stopping. The reader ends (body complete, src error, context, stall) by
// handing the writer nil: the writer drains the pipes handed before it
// (every byte read from src reaches dst, as on the one-pipe path), then
// exits. The writer ends on a dst error by waking the reader wherever it
// waits: a nil on toFill for a reader waiting for a pipe, and src's read
// deadline set in the past (under j.mu, never re-armed: j.aborted) for a
// reader waiting for src. The reader always waits for the writer before
// Move returns, so no goroutine outlives Move, and the deadlines are cleared
// by finish as usual. The writer's error wins: it came first, the reader's
// is then the abort's own timeout.
//
// Cost: two pipes (four descriptors, 2 x PipeSize of pipe buffer) and at
// most one short-lived goroutine per transfer above the threshold; the
// channels live in the pooled job, so a Move allocates nothing more.

// overlap is the hand-over state of the two-pipe path, part of the pooled
// job.
type overlap struct {
	rdst       syscall.RawConn
	toDrain    chan *pipe    // reader -> writer: filled pipes, then nil (no more)
	toFill     chan *pipe    // writer -> reader: emptied pipes, or nil (writer failed)
	wdone      chan struct{} // the writer has exited
	spliced    int64         // writer: bytes moved to dst
	werr       error         // writer: the dst failure, or nil
	started    bool          // the writer goroutine runs (dst made the reader wait)
	writers    *atomic.Int64 // the pool's count of started writers, for tests
	writeFn    func()        // j.writer, bound once
	tryDrainFn func(uintptr) bool
}

func (j *job) initOverlap() {
	// At most two pipes and one nil are ever in flight in each direction.
	j.toDrain = make(chan *pipe, 3)
	j.toFill = make(chan *pipe, 3)
	j.wdone = make(chan struct{}, 1)
	j.writeFn = j.writer
	j.tryDrainFn = j.tryDrain
}

func (j *job) resetOverlap() {
	j.rdst = nil
	j.werr = nil
}

// tryDrain is drain without the wait: a RawConn.Write callback that gives up
// on EAGAIN (the pipe then still holds bytes).
func (j *job) tryDrain(fd uintptr) bool {
	j.drain(fd)
	return true
}

// overlapLoop moves n bytes through j.p and q. Both pipes stay owned by the
// caller, which pools or closes them after the return.
func (j *job) overlapLoop(rsrc, rdst syscall.RawConn, res *Result, n int64, q *pipe) error {
	j.rdst, j.spliced, j.werr = rdst, 0, nil
	free := [2]*pipe{j.p, q}
	nfree, handed := 2, 0 // handed: pipes with the writer
	j.started = false
	var rerr error
	first := true
fill:
	for n > 0 {
		// Take back the pipes the writer emptied; wait only when none is free.
		for handed > 0 {
			var r *pipe
			if nfree > 0 {
				got := false
				select {
				case r = <-j.toFill:
					got = true
				default:
				}
				if !got {
					break
				}
			} else {
				r = <-j.toFill
			}
			if r == nil {
				break fill // the writer failed
			}
			free[nfree] = r
			nfree++
			handed--
		}
		nfree--
		p := free[nfree]
		j.p = p
		if rerr = j.fillOnce(rsrc, n, first); rerr != nil {
			break
		}
		first = false
		n -= int64(j.got)
		p.more = n > 0
		if handed == 0 {
			j.dp = p
			rerr = j.drainWith(rdst, j.tryDrainFn, p.more)
			res.Spliced += int64(j.drained)
			if rerr != nil {
				break
			}
			if p.data == 0 {
				free[nfree] = p
				nfree++
				continue
			}
			if !j.started {
				j.started = true
				j.writers.Add(1)
				go j.writeFn()
			}
		}
		j.toDrain <- p
		handed++
	}
	if j.started {
		j.toDrain <- nil
		<-j.wdone
		for len(j.toFill) > 0 { // leave the pooled channels empty
			<-j.toFill
		}
	}
	res.Spliced += j.spliced
	if j.werr != nil {
		return j.werr
	}
	return rerr
}

// writer is the goroutine draining the pipes overlapLoop hands it, until it
// is handed nil. After a failure it wakes the reader and only waits for the
// nil.
func (j *job) writer() {
	for {
		p := <-j.toDrain
		if p == nil {
			break
		}
		if j.werr != nil {
			continue
		}
		j.dp = p
		err := j.drainOnce(j.rdst, p.more)
		j.spliced += int64(j.drained)
		if err != nil {
			j.werr = err
			j.abortSrc()
			j.toFill <- nil
			continue
		}
		j.toFill <- p
	}
	j.wdone <- struct{}{}
}

// abortSrc wakes a reader waiting for src (the writer failed): src's read
// deadline goes to the past and armSrc no longer moves it.
func (j *job) abortSrc() {
	j.mu.Lock()
	if !j.finished {
		j.aborted = true
		j.deadlines = true
		_ = j.src.SetReadDeadline(aLongTimeAgo)
	}
	j.mu.Unlock()
}
