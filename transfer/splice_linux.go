//go:build linux

package transfer

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The splice path keeps the invariant of Go's internal/poll: a pipe enters
// a fill empty, and a drain empties it completely. With SPLICE_F_NONBLOCK,
// EAGAIN is otherwise ambiguous (socket not ready, or pipe full/empty); with
// the invariant, EAGAIN on fill means the client is not readable and EAGAIN
// on drain means the upstream is not writable, so each is waited for in the
// runtime poller through syscall.RawConn.

// A body larger than overlapFactor pipes splices through two pipes at once
// (splice_overlap_linux.go), while fewer than MaxIdlePipes/overlapShare
// pipes are in use (its own first pipe included). The bound keeps the extra
// pipes few: overlap speeds up a stream that has a core to itself, not many
// streams sharing the cores, and every pipe counts against an unprivileged
// user's budget (fs.pipe-user-pages-soft), past which transfers copy.
const (
	overlapFactor = 2
	overlapShare  = 4
)

const (
	fillFlags  = unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MOVE
	drainFlags = unix.SPLICE_F_NONBLOCK | unix.SPLICE_F_MOVE
)

// pipe is one kernel pipe used as the splice buffer. data is the number of
// bytes it holds; only pipes with data == 0 may be pooled.
type pipe struct {
	rfd, wfd int
	size     int // capacity granted by the kernel (F_GETPIPE_SZ)
	data     int
	more     bool // more body follows the bytes it holds (two-pipe path)
}

func (p *pipe) destroy() error {
	e1 := unix.Close(p.rfd)
	e2 := unix.Close(p.wfd)
	if e1 != nil {
		return os.NewSyscallError("close", e1)
	}
	if e2 != nil {
		return os.NewSyscallError("close", e2)
	}
	return nil
}

// pipeSet is the bounded pool of idle, empty pipes plus the counters behind
// Stats. It is safe for concurrent use.
type pipeSet struct {
	size, min, maxIdle int

	mu     sync.Mutex
	idle   []*pipe // LIFO: the most recently used pipe is the warmest
	closed bool

	inUse   atomic.Int64
	granted atomic.Int64 // F_GETPIPE_SZ of the last fresh pipe
	created atomic.Int64 // pipes opened, for tests

	srcWaits, dstWaits atomic.Int64 // EAGAIN waits, for tests
	overlapped         atomic.Int64 // transfers on the two-pipe path, for tests
	readAheads         atomic.Int64 // fills made while dst was not writable (two-pipe path), for tests
}

func newPipeSet(o Options) *pipeSet {
	return &pipeSet{size: o.PipeSize, min: o.MinPipeSize, maxIdle: o.MaxIdlePipes}
}

func (s *pipeSet) stats() Stats {
	s.mu.Lock()
	idle := len(s.idle)
	s.mu.Unlock()
	return Stats{PipesInUse: s.inUse.Load(), PipesIdle: int64(idle), PipeSize: int(s.granted.Load())}
}

func (s *pipeSet) close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle = nil
	s.closed = true
	s.mu.Unlock()
	var errs []error
	for _, p := range idle {
		if err := p.destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// get returns an empty pipe of at least s.min bytes, from the pool or
// fresh. tooSmall reports that the kernel granted a fresh pipe less than
// s.min (the pipe is already closed). A nil pipe with tooSmall false means
// no pipe could be created (e.g. EMFILE): the caller copies instead.
func (s *pipeSet) get() (p *pipe, tooSmall bool) {
	s.mu.Lock()
	if k := len(s.idle); k > 0 {
		p = s.idle[k-1]
		s.idle[k-1] = nil
		s.idle = s.idle[:k-1]
		s.mu.Unlock()
		s.inUse.Add(1)
		return p, false
	}
	s.mu.Unlock()

	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, false
	}
	s.created.Add(1)
	p = &pipe{rfd: fds[0], wfd: fds[1]}
	// EPERM past fs.pipe-max-size or fs.pipe-user-pages-soft: a smaller
	// pipe may still fit in the budget.
	if _, err := unix.FcntlInt(uintptr(p.rfd), unix.F_SETPIPE_SZ, s.size); err != nil && s.min < s.size {
		_, _ = unix.FcntlInt(uintptr(p.rfd), unix.F_SETPIPE_SZ, s.min)
	}
	got, err := unix.FcntlInt(uintptr(p.rfd), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		_ = p.destroy()
		return nil, false
	}
	s.granted.Store(int64(got))
	if got < s.min {
		_ = p.destroy()
		return nil, true
	}
	p.size = got
	s.inUse.Add(1)
	return p, false
}

// put returns p to the pool if it is empty, reusable (no error on its
// transfer), and there is room; otherwise it closes p.
func (s *pipeSet) put(p *pipe, reusable bool) {
	s.inUse.Add(-1)
	if reusable && p.data == 0 {
		s.mu.Lock()
		if !s.closed && len(s.idle) < s.maxIdle {
			s.idle = append(s.idle, p)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
	_ = p.destroy()
}

// spliceJob is the splice state of one transfer, read and written by the
// RawConn callbacks fill and drain (bound once per pooled job, so passing
// them costs no allocation). The fill fields belong to the goroutine running
// Move, as do the drain fields (one goroutine; the two-pipe path is in
// splice_overlap_linux.go).
type spliceJob struct {
	p        *pipe // fill: the empty pipe being filled
	max      int   // fill: bytes to ask for
	got      int   // fill: bytes moved into the pipe
	serr     error // fill: errno from splice(2), or nil
	srcWaits int64
	batch    int   // fill: SO_RCVLOWAT wanted on src while the body lasts (0: off)
	lowat    int   // fill: SO_RCVLOWAT set on src now (0: never set by this job)
	setTo    int   // setLowatFn: the value to set
	setErr   error // setLowatFn: setsockopt's error

	dp       *pipe // drain: the pipe being emptied
	more     bool  // drain: more body follows this chunk (SPLICE_F_MORE)
	drained  int   // drain: bytes moved to dst by this drain
	progress bool  // drain: bytes moved since the stall deadline was armed
	dserr    error // drain: errno from splice(2), nil, or io.ErrNoProgress
	dstWaits int64

	fillFn     func(uintptr) bool
	drainFn    func(uintptr) bool
	setLowatFn func(uintptr)

	overlap // the two-pipe path's read-ahead state
}

func (j *job) initSplice() {
	j.fillFn = j.fill
	j.drainFn = j.drain
	j.setLowatFn = j.setLowatOn
	j.initOverlap()
}

func (j *job) resetSplice() {
	j.p, j.dp = nil, nil
	j.batch, j.lowat = 0, 0
	j.serr, j.dserr = nil, nil
	j.resetOverlap()
}

// splice wraps unix.Splice, which returns int on some Linux architectures
// and int64 on others, and never reports a negative count.
func splice(rfd, wfd, n, flags int) (int, error) {
	m, err := unix.Splice(rfd, nil, wfd, nil, n, flags)
	if err != nil {
		return 0, err
	}
	return int(m), nil
}

// fill is the syscall.RawConn.Read callback: one splice src -> empty pipe of
// at most j.max bytes. It returns false (wait for readability) on EAGAIN.
func (j *job) fill(fd uintptr) bool {
	for {
		n, err := splice(int(fd), j.p.wfd, j.max, fillFlags)
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			j.srcWaits++
			return false
		}
		j.got, j.serr = n, err
		return true
	}
}

// drain is the syscall.RawConn.Write callback: splice pipe -> dst until the
// pipe is empty, handling partial splices. It returns false (wait for
// writability) on EAGAIN, after re-arming the stall deadline if bytes moved.
func (j *job) drain(fd uintptr) bool {
	flags := drainFlags
	if j.more {
		flags |= unix.SPLICE_F_MORE
	}
	for j.dp.data > 0 {
		n, err := splice(j.dp.rfd, int(fd), j.dp.data, flags)
		if n > 0 {
			j.dp.data -= n
			j.drained += n
			j.progress = true
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			j.dstWaits++
			if j.progress {
				j.progress = false
				j.armDst()
			}
			return false
		case nil:
			// The pipe holds data, so 0 means the kernel moved
			// nothing without saying why: do not spin on it.
			err = io.ErrNoProgress
		}
		j.dserr = err
		return true
	}
	return true
}

// spliceBody moves n bytes src -> pipe -> dst. handled is false when the
// transfer must copy instead (a conn without a file descriptor, no pipe, a
// pipe too small, or a socket type splice refuses before any byte moved).
//
// A body larger than overlapFactor pipes takes a second pipe when one is to
// be had and few are in use, and reads ahead into it while dst makes it wait
// (overlapLoop); smaller bodies, or when the second pipe cannot be had,
// alternate fill and drain on one pipe (spliceLoop).
func (m *Mover) spliceBody(j *job, res *Result, n int64) (handled bool, err error) {
	sc, ok := j.src.(syscall.Conn)
	if !ok {
		return false, nil
	}
	dc, ok := j.dst.(syscall.Conn)
	if !ok {
		return false, nil
	}
	rsrc, err := sc.SyscallConn()
	if err != nil {
		return false, nil
	}
	rdst, err := dc.SyscallConn()
	if err != nil {
		return false, nil
	}
	p, tooSmall := m.pipes.get()
	if p == nil {
		res.PipeTooSmall = tooSmall
		return false, nil
	}
	var q *pipe
	if n > overlapFactor*int64(p.size) && m.pipes.inUse.Load() < int64(m.pipes.maxIdle/overlapShare) {
		q, _ = m.pipes.get() // nil (none, or too small): one pipe will do
	}
	j.p = p
	j.srcWaits, j.dstWaits = 0, 0
	j.batch, j.lowat = 0, 0
	if m.opts.ReadBatch > 1 && n > overlapFactor*int64(p.size) {
		j.batch = min(m.opts.ReadBatch, p.size)
	}
	res.Mode = ModeSplice
	if q != nil {
		m.pipes.overlapped.Add(1)
		j.readAheads = &m.pipes.readAheads
		err = j.overlapLoop(rsrc, rdst, res, n, q)
	} else {
		err = j.spliceLoop(rsrc, rdst, res, n)
	}
	if j.lowat > 1 {
		// The connection may serve another request (or go back to the event loop), whose head
		// is smaller than the batch.
		j.setLowat(rsrc, 1)
	}
	if errors.Is(err, errSpliceUnsupported) {
		res.Mode = 0
		m.pipes.put(p, true)
		if q != nil {
			m.pipes.put(q, true)
		}
		return false, nil
	}
	m.pipes.srcWaits.Add(j.srcWaits)
	m.pipes.dstWaits.Add(j.dstWaits)
	// After an error a pipe may hold bytes: close it (put checks data too).
	m.pipes.put(p, err == nil)
	if q != nil {
		m.pipes.put(q, err == nil)
	}
	return true, err
}

// errSpliceUnsupported: splice(2) refused the socket pair (EINVAL) before
// moving any byte; the transfer can fall back to copying.
var errSpliceUnsupported = errors.New("transfer: splice unsupported for these sockets")

// spliceLoop alternates on the one pipe j.p: fill it once, drain it fully.
func (j *job) spliceLoop(rsrc, rdst syscall.RawConn, res *Result, n int64) error {
	first := true
	j.dp = j.p
	for n > 0 {
		if err := j.fillOnce(rsrc, n, first); err != nil {
			return err
		}
		first = false
		n -= int64(j.got)
		err := j.drainOnce(rdst, n > 0)
		res.Spliced += int64(j.drained)
		if err != nil {
			return err
		}
	}
	return nil
}

// fillOnce splices at most min(n, pipe size) bytes from src into the empty
// pipe j.p, waiting for src to be readable, and sets j.p.data = j.got > 0.
// first tells that no byte of the body moved yet (EINVAL then means splice
// does not support this socket pair: errSpliceUnsupported).
func (j *job) fillOnce(rsrc syscall.RawConn, n int64, first bool) error {
	j.max = j.p.size
	if int64(j.max) > n {
		j.max = int(n)
	}
	j.got, j.serr = 0, nil
	if j.batch > 0 {
		j.batchSrc(rsrc, n)
	}
	j.armSrc()
	for {
		err := rsrc.Read(j.fillFn)
		if err == nil {
			break
		}
		if j.lowat > 1 && errors.Is(err, os.ErrDeadlineExceeded) && queued(rsrc) {
			// The stall deadline passed with bytes queued below the batch: the client is slow,
			// not stalled. Wake for every byte from now on, under a fresh deadline (a
			// cancelled job's deadline stays in the past, so this ends on the next round).
			j.batch = 0
			j.setLowat(rsrc, 1)
			j.srcArmed = time.Time{}
			j.armSrc()
			continue
		}
		return j.fail(SideSrc, "splice", err)
	}
	if j.serr != nil {
		if first && j.serr == unix.EINVAL {
			return errSpliceUnsupported
		}
		return j.fail(SideSrc, "splice", os.NewSyscallError("splice", j.serr))
	}
	if j.got == 0 {
		return &Error{Side: SideSrc, Op: "splice", Err: ErrShortBody}
	}
	j.p.data = j.got
	return nil
}

// batchSrc sets src's SO_RCVLOWAT for the next wait of a body with n bytes still to read: j.batch
// while at least that many remain, else 1 (the tail must wake the transfer without more bytes, which
// a client awaiting its answer never sends).
//
// Woken for every segment, a transfer moves a fast stream in many small splices; batched, in fewer
// large ones, for less CPU per GiB (bench/results/2026-12-02-read-batch.md). The kernel still wakes
// the transfer below the batch when the socket's receive window is nearly exhausted, and on EOF or
// an error.
func (j *job) batchSrc(rsrc syscall.RawConn, n int64) {
	want := j.batch
	if n < int64(want) {
		want = 1
	}
	if want != j.lowat {
		j.setLowat(rsrc, want)
	}
}

// setLowat sets src's SO_RCVLOWAT to v. If the kernel refuses, batching is off for this transfer.
// The callback is bound once per pooled job (a closure would cost an allocation per call).
func (j *job) setLowat(rsrc syscall.RawConn, v int) {
	j.setTo, j.setErr = v, nil
	if err := rsrc.Control(j.setLowatFn); err != nil || j.setErr != nil {
		j.batch = 0
		return
	}
	j.lowat = v
}

// setLowatOn is setLowat's syscall.RawConn.Control callback.
func (j *job) setLowatOn(fd uintptr) {
	j.setErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, j.setTo)
}

// queued reports whether src's socket holds bytes not read yet (SIOCINQ). Only a stall deadline
// calls it, so its closure's allocation does not matter.
func queued(rsrc syscall.RawConn) bool {
	var n int
	var serr error
	if err := rsrc.Control(func(fd uintptr) {
		n, serr = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	}); err != nil || serr != nil {
		return false
	}
	return n > 0
}

// drainOnce splices the pipe j.dp to dst until it is empty, waiting for dst
// to be writable; more sets SPLICE_F_MORE (clear it on the body's last
// chunk). j.drained is what moved, also on error.
func (j *job) drainOnce(rdst syscall.RawConn, more bool) error {
	return j.drainWith(rdst, j.drainFn, more)
}

// drainWith runs the drain callback fn (drain, or tryDrain which never
// waits) on dst and turns its outcome into an error.
func (j *job) drainWith(rdst syscall.RawConn, fn func(uintptr) bool, more bool) error {
	j.more = more
	j.drained, j.progress, j.dserr = 0, false, nil
	j.armDst()
	if err := rdst.Write(fn); err != nil {
		return j.fail(SideDst, "splice", err)
	}
	if j.dserr != nil {
		serr := j.dserr
		if serr != io.ErrNoProgress {
			serr = os.NewSyscallError("splice", serr)
		}
		return j.fail(SideDst, "splice", serr)
	}
	return nil
}
