//go:build linux

package transfer

import "syscall"

// The two-pipe path. On one pipe a transfer alternates: while the pipe is
// drained to the upstream nothing is read from the client, and while it is
// filled nothing is written, so one large stream never runs both sockets at
// once (about 0.8x a direct upload's throughput with the relay on its own
// core). Above overlapFactor pipes, a transfer takes a second pipe and a
// second goroutine:
//
//   - the goroutine running Move (the reader) takes an empty pipe, fills it
//     once from src (at most its capacity or the bytes still due) and hands
//     it to the writer, then takes the other empty pipe;
//   - the writer drains each pipe it is handed to empty, into dst, and
//     hands it back.
//
// Each pipe still enters a fill empty and leaves a drain empty, so EAGAIN
// keeps its single meaning on each side (src not readable, dst not
// writable) and each goroutine waits in the runtime poller through its
// RawConn, under its own deadline (src read, dst write: Move owns both).
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
// Cost: two pipes (four descriptors, 2 x PipeSize of pipe buffer) and one
// short-lived goroutine per transfer above the threshold; the channels live
// in the pooled job, so a Move allocates nothing more.

// overlap is the hand-over state of the two-pipe path, part of the pooled
// job.
type overlap struct {
	rdst    syscall.RawConn
	toDrain chan *pipe    // reader -> writer: filled pipes, then nil (no more)
	toFill  chan *pipe    // writer -> reader: emptied pipes, or nil (writer failed)
	wdone   chan struct{} // the writer has exited
	wleft   int64         // writer: body bytes not yet handed to it plus those in hand
	spliced int64         // writer: bytes moved to dst
	werr    error         // writer: the dst failure, or nil
	writeFn func()        // j.writer, bound once
}

func (j *job) initOverlap() {
	// At most two pipes and one nil are ever in flight in each direction.
	j.toDrain = make(chan *pipe, 3)
	j.toFill = make(chan *pipe, 3)
	j.wdone = make(chan struct{}, 1)
	j.writeFn = j.writer
}

func (j *job) resetOverlap() {
	j.rdst = nil
	j.werr = nil
}

// overlapLoop moves n bytes through j.p and q, filling one while the writer
// drains the other. Both pipes stay owned by the caller, which pools or
// closes them after the return.
func (j *job) overlapLoop(rsrc, rdst syscall.RawConn, res *Result, n int64, q *pipe) error {
	j.rdst, j.wleft, j.spliced, j.werr = rdst, n, 0, nil
	j.toFill <- j.p
	j.toFill <- q
	go j.writeFn()

	var rerr error
	for first := true; n > 0; first = false {
		p := <-j.toFill
		if p == nil { // the writer failed
			break
		}
		j.p = p
		if rerr = j.fillOnce(rsrc, n, first); rerr != nil {
			break
		}
		n -= int64(j.got)
		j.toDrain <- p
	}
	j.toDrain <- nil
	<-j.wdone
	for len(j.toFill) > 0 { // leave the pooled channels empty
		<-j.toFill
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
		j.wleft -= int64(p.data)
		err := j.drainOnce(j.rdst, j.wleft > 0)
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
