//go:build linux

package transfer

import (
	"os"
	"sync/atomic"
	"syscall"
)

// The two-pipe path. On one pipe a transfer alternates: while the pipe
// waits for the upstream to take its bytes, nothing is read from the
// client, whose bytes then pile up in its socket until its window closes
// and the sender stops too (about 0.8x a direct upload's throughput with
// the relay on its own core). Above overlapFactor pipes, a transfer takes a
// second pipe and reads ahead into it whenever the upstream makes it wait:
//
//   - pipes are drained in the order they were filled (a queue of at most
//     two); the head is drained without waiting (tryDrain) while dst takes
//     bytes — so a fast upstream costs what the one-pipe path costs;
//   - when dst is not writable and the other pipe is empty, that pipe is
//     filled from src, once, without waiting (tryFill): the client's bytes
//     leave its socket (its window reopens and the sender goes on) while
//     the upstream is busy; only then does the transfer wait for dst;
//   - with nothing queued, it waits for src as the one-pipe path does;
//   - when a read-ahead finds src empty, the next readAheadBackoff chunks
//     drain as on the one-pipe path (a stream paced by its client gains
//     nothing from reading ahead and would pay two syscalls per wait).
//
// One goroutine does all of it: the fill side of splice is cheap (it moves
// socket buffers into the pipe), so a second goroutine buys little
// parallelism for its hand-overs, which measured +39% CPU per GiB with
// GOMAXPROCS 2 (a writer fed every pipe) or +6.5% (a writer fed only when
// dst blocked): bench/results/2026-12-01-single-stream.md.
//
// Each pipe still enters a fill empty and leaves a drain empty, so EAGAIN
// keeps its single meaning (src not readable, dst not writable), and every
// wait is one RawConn callback in the runtime poller under Move's deadlines,
// armed before each attempt (a non-blocking attempt checks the deadline too).
// A src failure met while reading ahead (end of stream, reset) waits until
// the queued bytes reached dst, so every byte read from src reaches dst as
// on the one-pipe path; then it is returned.
//
// Cost: two pipes (four descriptors, 2 x PipeSize of pipe buffer) per
// transfer above the threshold; no goroutine, no allocation.

// readAheadBackoff: after a read-ahead found src empty (the stream is paced
// by the client, not the upstream), this many chunks are drained as on the
// one-pipe path, without the non-blocking attempts a read-ahead costs (a
// drain attempt that meets EAGAIN, a fill attempt, and the drain attempt the
// poller's wait begins with again: two syscalls more per wait).
const readAheadBackoff = 8

// overlap is the read-ahead state of the two-pipe path, part of the pooled
// job.
type overlap struct {
	again      bool // tryFill: src had nothing (EAGAIN)
	tryFillFn  func(uintptr) bool
	tryDrainFn func(uintptr) bool
	readAheads *atomic.Int64 // the pool's count of bytes-moving read-aheads, for tests
}

func (j *job) initOverlap() {
	j.tryFillFn = j.tryFill
	j.tryDrainFn = j.tryDrain
}

func (j *job) resetOverlap() { j.readAheads = nil }

// tryFill is fill without the wait: a RawConn.Read callback that gives up on
// EAGAIN (j.again; counted in srcWaits like a wait).
func (j *job) tryFill(fd uintptr) bool {
	j.again = !j.fill(fd)
	return true
}

// tryDrain is drain without the wait: a RawConn.Write callback that gives up
// on EAGAIN (the pipe then still holds bytes; counted in dstWaits).
func (j *job) tryDrain(fd uintptr) bool {
	j.drain(fd)
	return true
}

// overlapLoop moves n bytes through j.p and q. Both pipes stay owned by the
// caller, which pools or closes them after the return.
func (j *job) overlapLoop(rsrc, rdst syscall.RawConn, res *Result, n int64, q *pipe) error {
	var queue [2]*pipe // filled pipes, in body order
	queued := 0
	free := [2]*pipe{q, j.p}
	nfree := 2
	var srcErr error // a src failure met while reading ahead, returned once the queue is drained
	first := true
	skip := 0 // chunks to drain without trying to read ahead
	for n > 0 && srcErr == nil || queued > 0 {
		if queued == 0 {
			nfree--
			j.p = free[nfree]
			if err := j.fillOnce(rsrc, n, first); err != nil {
				return err
			}
			first = false
			n -= int64(j.got)
			j.p.more = n > 0
			queue[0], queued = j.p, 1
		}
		head := queue[0]
		j.dp = head
		if skip > 0 || n == 0 || srcErr != nil || queued == 2 {
			// Nothing to read ahead into, or src had nothing lately: drain
			// as the one-pipe path does.
			if skip > 0 {
				skip--
			}
			err := j.drainOnce(rdst, head.more)
			res.Spliced += int64(j.drained)
			if err != nil {
				return err
			}
		} else {
			err := j.drainWith(rdst, j.tryDrainFn, head.more)
			res.Spliced += int64(j.drained)
			if err != nil {
				return err
			}
			if head.data > 0 { // dst is not writable: read ahead, then wait for it
				nfree--
				j.p = free[nfree]
				if srcErr = j.readAhead(rsrc, n); srcErr == nil && j.got > 0 {
					n -= int64(j.got)
					j.p.more = n > 0
					queue[1], queued = j.p, 2
				} else {
					nfree++
					skip = readAheadBackoff
				}
				err := j.drainOnce(rdst, head.more)
				res.Spliced += int64(j.drained)
				if err != nil {
					return err
				}
			}
		}
		queue[0], queue[1] = queue[1], nil
		queued--
		free[nfree] = head
		nfree++
	}
	return srcErr
}

// readAhead fills the empty pipe j.p from src without waiting: j.got is 0
// when src had nothing to give. End of stream is ErrShortBody.
func (j *job) readAhead(rsrc syscall.RawConn, n int64) error {
	j.max = j.p.size
	if int64(j.max) > n {
		j.max = int(n)
	}
	j.got, j.serr, j.again = 0, nil, false
	j.armSrc()
	if err := rsrc.Read(j.tryFillFn); err != nil {
		return j.fail(SideSrc, "splice", err)
	}
	if j.serr != nil {
		return j.fail(SideSrc, "splice", os.NewSyscallError("splice", j.serr))
	}
	if j.again {
		return nil
	}
	if j.got == 0 {
		return &Error{Side: SideSrc, Op: "splice", Err: ErrShortBody}
	}
	j.p.data = j.got
	if j.readAheads != nil {
		j.readAheads.Add(1)
	}
	return nil
}
