package transfer

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// Mode is the path a transfer took for the bytes after its prefix.
type Mode uint8

const (
	// ModeSplice: client -> pipe -> upstream with splice(2), no user-space copy.
	ModeSplice Mode = iota + 1
	// ModeCopy: read into a pooled buffer, write it out.
	ModeCopy
)

// String returns "splice" or "copy".
func (m Mode) String() string {
	switch m {
	case ModeSplice:
		return "splice"
	case ModeCopy:
		return "copy"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Defaults used for zero (or negative) Options fields.
const (
	DefaultPipeSize       = 1 << 20
	DefaultMinPipeSize    = 256 << 10
	DefaultMaxIdlePipes   = 64
	DefaultCopyBufferSize = 256 << 10
	DefaultCopyMemoryMax  = 64 << 20
	DefaultReadBatch      = 256 << 10
)

// Options configures a Mover. The zero value is ready to use.
type Options struct {
	// PipeSize is the pipe capacity requested with F_SETPIPE_SZ, in bytes;
	// 0 means DefaultPipeSize (1 MiB). The kernel rounds it up to a power of
	// two pages and refuses sizes above fs.pipe-max-size to unprivileged
	// processes.
	PipeSize int

	// MinPipeSize is the smallest granted capacity worth splicing through;
	// 0 means DefaultMinPipeSize (256 KiB), and it is capped at PipeSize.
	// When a fresh pipe gets less (F_GETPIPE_SZ after F_SETPIPE_SZ; EPERM
	// past fs.pipe-user-pages-soft or fs.pipe-max-size), the pipe is closed,
	// that transfer copies and Result.PipeTooSmall is set.
	MinPipeSize int

	// MaxIdlePipes bounds the pool of idle pipes; 0 means
	// DefaultMaxIdlePipes (64). Only empty pipes return to the pool.
	MaxIdlePipes int

	// ForceCopy makes every transfer take the copy path.
	ForceCopy bool

	// CopyBufferSize is the size of the pooled copy buffers, in bytes;
	// 0 means DefaultCopyBufferSize (256 KiB). A transfer on the copy path holds
	// exactly one, from its first body byte to its end.
	CopyBufferSize int

	// CopyMemoryMax bounds the bytes of copy buffers lent out at once, over all
	// transfers; 0 means DefaultCopyMemoryMax (64 MiB: 256 buffers of 256 KiB).
	// It allows CopyMemoryMax/CopyBufferSize buffers (at least one); a
	// transfer that finds them all busy waits for a buffer, within its
	// context and StallTimeout (then ErrStalled, Side SideSrc), while the
	// holders that read sockets hand theirs round after each chunk; a source
	// that is not a socket (a TLS client) copies through a 16 KiB overflow
	// buffer instead of waiting (see copyPool). Buffers are mapped outside the Go heap on Unix; a few
	// beyond those in use are kept for reuse, the rest returned to the OS.
	CopyMemoryMax int

	// ReadBatch is, for a splice transfer of a body larger than two pipes, how many bytes the
	// client's socket gathers before it wakes the transfer (SO_RCVLOWAT, set for the body's length
	// and reset to 1 after it; capped at the pipe's size). 0 means DefaultReadBatch (256 KiB);
	// 1 or less turns batching off. Fewer, larger splices cost less CPU per GiB (0.955x paired
	// over 15 runs of one 1 GiB stream; throughput unchanged within noise:
	// bench/results/2026-12-02-read-batch.md). A slower client loses nothing: the kernel wakes the transfer below the batch when
	// the socket's receive window is nearly exhausted, and a stall deadline that passes with bytes
	// queued turns batching off for that transfer instead of failing it.
	ReadBatch int

	// StallTimeout, if positive, fails a transfer with ErrStalled when no
	// byte moves for this long. It is enforced with deadlines refreshed
	// at most once per chunk (a pipe fill, a pipe drain that makes progress
	// before waiting, a copy-buffer read or write), so it should be well
	// above the time one chunk takes on the slowest link you accept.
	StallTimeout time.Duration
}

func (o Options) normalized() Options {
	if o.PipeSize <= 0 {
		o.PipeSize = DefaultPipeSize
	}
	if o.MinPipeSize <= 0 {
		o.MinPipeSize = DefaultMinPipeSize
	}
	if o.MinPipeSize > o.PipeSize {
		o.MinPipeSize = o.PipeSize
	}
	if o.MaxIdlePipes <= 0 {
		o.MaxIdlePipes = DefaultMaxIdlePipes
	}
	if o.CopyBufferSize <= 0 {
		o.CopyBufferSize = DefaultCopyBufferSize
	}
	if o.CopyMemoryMax <= 0 {
		o.CopyMemoryMax = DefaultCopyMemoryMax
	}
	if o.StallTimeout < 0 {
		o.StallTimeout = 0
	}
	if o.ReadBatch == 0 {
		o.ReadBatch = DefaultReadBatch
	}
	return o
}

// Mover moves bodies between connections. It owns a bounded pool of pipes
// and a bounded pool of copy buffers. A Mover is safe for concurrent use by any
// number of transfers; create one per process (or per listener) and Close it
// when done.
type Mover struct {
	opts  Options
	bufs  *copyPool // len opts.CopyBufferSize each, at most CopyMemoryMax in all
	jobs  sync.Pool // *job
	pipes *pipeSet  // platform-specific; never references the Mover
}

// NewMover returns a Mover configured by o (zero fields take the defaults).
// It opens no file descriptor: pipes are created on demand.
func NewMover(o Options) *Mover {
	m := &Mover{opts: o.normalized()}
	m.bufs = newCopyPool(m.opts.CopyBufferSize, m.opts.CopyMemoryMax)
	m.jobs.New = func() any { return newJob() }
	m.pipes = newPipeSet(m.opts)
	// Idle pipes hold file descriptors: release them if the Mover is
	// dropped without Close.
	runtime.AddCleanup(m, func(s *pipeSet) { _ = s.close() }, m.pipes)
	runtime.AddCleanup(m, func(p *copyPool) { p.close() }, m.bufs)
	return m
}

// Close closes the idle pipes and releases the idle copy buffers. Transfers
// still running finish normally; their pipes are closed, not pooled, and
// their buffers released, when they end. A closed Mover can still Move
// (pipes and buffers are then created and released per transfer). Close is
// idempotent and safe to call concurrently with Move.
func (m *Mover) Close() error {
	m.bufs.close()
	return m.pipes.close()
}

// Stats is a snapshot of a Mover's pipe pool and copy buffers.
type Stats struct {
	PipesInUse int64 // pipes held by running transfers
	PipesIdle  int64 // empty pipes waiting in the pool
	PipeSize   int   // capacity the kernel granted the most recent fresh pipe; 0 before the first

	CopyBuffersMax   int   // copy buffers that may be lent at once (CopyMemoryMax / CopyBufferSize)
	CopyBuffersInUse int64 // copy buffers held by running transfers
	CopyBuffersIdle  int64 // copy buffers made and kept for reuse
	CopyWaiting      int64 // transfers waiting for a copy buffer now
	CopyWaits        int64 // transfers that had to wait for a copy buffer, since NewMover
	CopyOverflows    int64 // copies given a CopyOverflowBufferSize buffer past the cap (sources that cannot wait), since NewMover
}

// Stats returns a snapshot of the pipe pool and the copy buffers. Safe for concurrent use.
func (m *Mover) Stats() Stats {
	s := m.pipes.stats()
	m.bufs.stats(&s)
	return s
}

// Result reports what a Move did. It is valid also when Move fails: the
// counts are the bytes written to dst before the failure.
type Result struct {
	Spliced int64 // body bytes moved by splice(2)
	Copied  int64 // bytes written from user space: the prefix plus copied body bytes
	Mode    Mode  // path used for the n bytes after the prefix
	// PipeTooSmall is set when the kernel granted a fresh pipe less than
	// Options.MinPipeSize, so this transfer copied instead of splicing.
	PipeTooSmall bool
}

// Move writes prefix to dst, then moves exactly n bytes from src to dst (n
// excludes the prefix), never reading past them: a pipelined next request
// stays in src's kernel buffer for the caller.
//
// dst and src are usually *net.TCPConn. Splice needs both to implement
// syscall.Conn; any other pair (e.g. a *tls.Conn dst) takes the copy path, as
// does every transfer with Options.ForceCopy. File descriptors must be
// non-blocking ones polled by the Go runtime (net.Dial, net.FileConn); Move
// waits only by parking in the runtime poller, never by spinning or
// sleeping.
//
// Resources: a splice transfer holds one pipe (two descriptors, PipeSize of
// pipe buffer) from the pool. A body larger than twice the pipe size, while
// fewer than MaxIdlePipes/4 pipes are in use, holds two: it reads ahead
// into the second while the upstream makes it wait, so that one stream keeps
// both sockets busy. Move runs no goroutine of its own.
//
// prefix is only read, and not retained after Move returns (the caller may
// pass a borrowed buffer). Bytes are counted in Result; on error Result
// tells how far the transfer got.
//
// Deadlines: during the call Move owns src's read deadline and dst's write
// deadline. It sets them when ctx can be cancelled or StallTimeout is set,
// and clears them (to "no deadline") before returning. The other directions
// (reading dst, e.g. to catch an early upstream answer, and writing src) are
// left alone, so another goroutine may use them concurrently.
//
// When ctx is done Move returns promptly an *Error wrapping ctx.Err(); when
// no byte moves for StallTimeout it returns one wrapping ErrStalled. A client
// closing before n bytes gives ErrShortBody with Side SideSrc. Every error is
// an *Error (except ErrNegativeLength); after an error both connections are
// in an unknown state for HTTP and must be closed by the caller (see
// ResetClose for dst).
//
// Move is safe for concurrent use, on different connection pairs.
func (m *Mover) Move(ctx context.Context, dst, src net.Conn, prefix []byte, n int64) (Result, error) {
	var res Result
	if n < 0 {
		return res, ErrNegativeLength
	}
	if err := ctx.Err(); err != nil {
		return res, &Error{Side: SideSrc, Op: "read", Err: err}
	}
	j := m.jobs.Get().(*job)
	j.start(ctx, dst, src, m.opts.StallTimeout)
	err := m.move(j, &res, prefix, n)
	if j.finish() {
		m.jobs.Put(j)
	}
	return res, err
}

// MoveTee is Move on the copy path with every byte written to dst (prefix included) also written to
// tee first, in order — for digests the caller must verify itself (a hash.Hash never fails; an
// error from tee fails the transfer with Side SideDst and Op "tee"). The bytes pass through user
// space by necessity: use Move when no digest is needed.
func (m *Mover) MoveTee(ctx context.Context, dst, src net.Conn, prefix []byte, n int64, tee io.Writer) (Result, error) {
	var res Result
	if n < 0 {
		return res, ErrNegativeLength
	}
	if err := ctx.Err(); err != nil {
		return res, &Error{Side: SideSrc, Op: "read", Err: err}
	}
	j := m.jobs.Get().(*job)
	j.start(ctx, dst, src, m.opts.StallTimeout)
	j.tee = tee
	err := m.move(j, &res, prefix, n)
	j.tee = nil
	if j.finish() {
		m.jobs.Put(j)
	}
	return res, err
}

func (m *Mover) move(j *job, res *Result, prefix []byte, n int64) error {
	if j.tee != nil && len(prefix) > 0 {
		if _, err := j.tee.Write(prefix); err != nil {
			return j.fail(SideDst, "tee", err)
		}
	}
	if len(prefix) > 0 {
		j.armDst()
		w, err := j.dst.Write(prefix)
		res.Copied += int64(w)
		if err != nil {
			return j.fail(SideDst, "write", err)
		}
	}
	if !m.opts.ForceCopy && j.tee == nil {
		handled, err := m.spliceBody(j, res, n)
		if handled {
			return err
		}
	}
	res.Mode = ModeCopy
	return m.copyBody(j, res, n)
}

// aLongTimeAgo is a deadline in the past: setting it wakes blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// job is the per-transfer state. It is pooled so that the callbacks handed
// to syscall.RawConn (bound once in newJob) cost no allocation per Move.
type job struct {
	ctx      context.Context
	src, dst net.Conn
	stall    time.Duration

	stop      func() bool // from context.AfterFunc; nil if ctx cannot be cancelled
	deadlines bool        // Move set a deadline: clear on return
	mu        sync.Mutex  // guards cancelled, finished and the deadlines while ctx may fire
	cancelled bool
	finished  bool
	onCancel  func()    // j.cancel, bound once
	tee       io.Writer // MoveTee: receives every body byte before dst

	srcArmed, dstArmed time.Time // when the stall deadlines were last set

	spliceJob // platform-specific state
}

func newJob() *job {
	j := &job{}
	j.onCancel = j.cancel
	j.initSplice()
	return j
}

func (j *job) start(ctx context.Context, dst, src net.Conn, stall time.Duration) {
	j.ctx, j.dst, j.src, j.stall = ctx, dst, src, stall
	j.srcArmed, j.dstArmed = time.Time{}, time.Time{}
	j.cancelled, j.finished = false, false
	j.deadlines = stall > 0
	j.stop = nil
	if ctx.Done() != nil {
		j.deadlines = true
		j.stop = context.AfterFunc(ctx, j.onCancel)
	}
}

// cancel runs when ctx is done: past deadlines wake Move wherever it waits.
func (j *job) cancel() {
	j.mu.Lock()
	if !j.finished {
		j.cancelled = true
		_ = j.src.SetReadDeadline(aLongTimeAgo)
		_ = j.dst.SetWriteDeadline(aLongTimeAgo)
	}
	j.mu.Unlock()
}

// finish stops the context watch and clears the deadlines Move set. It
// reports whether j may be pooled (false if the AfterFunc callback started
// and may still hold j).
func (j *job) finish() bool {
	reusable := true
	if j.stop != nil && !j.stop() {
		reusable = false
	}
	if j.deadlines {
		j.mu.Lock()
		j.finished = true
		_ = j.src.SetReadDeadline(time.Time{})
		_ = j.dst.SetWriteDeadline(time.Time{})
		j.mu.Unlock()
	}
	if !reusable {
		return false
	}
	j.ctx, j.src, j.dst, j.stop = nil, nil, nil, nil
	j.resetSplice()
	return true
}

// armSrc refreshes the stall deadline for reading src (one chunk).
//
// A deadline armed less than stall/8 ago is left alone: a stalled transfer is then detected between
// StallTimeout and 9/8 of it, and a fast one does not pay a timer update per chunk.
func (j *job) armSrc() {
	if j.stall <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(j.srcArmed) < j.stall/8 {
		return
	}
	j.mu.Lock()
	if !j.cancelled {
		_ = j.src.SetReadDeadline(now.Add(j.stall))
		j.srcArmed = now
	}
	j.mu.Unlock()
}

// armDst refreshes the stall deadline for writing dst (one chunk).
func (j *job) armDst() {
	if j.stall <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(j.dstArmed) < j.stall/8 {
		return
	}
	j.mu.Lock()
	if !j.cancelled {
		_ = j.dst.SetWriteDeadline(now.Add(j.stall))
		j.dstArmed = now
	}
	j.mu.Unlock()
}

// fail wraps err as an *Error, turning deadline expiry into the context's
// error or ErrStalled.
func (j *job) fail(side Side, op string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		j.mu.Lock()
		cancelled := j.cancelled
		j.mu.Unlock()
		switch {
		case cancelled:
			err = j.ctx.Err()
		case j.stall > 0:
			err = ErrStalled
		}
	}
	return &Error{Side: side, Op: op, Err: err}
}

// ResetClose closes c so that the peer sees a TCP RST instead of a clean
// FIN (SO_LINGER 0), discarding unsent data. Use it on the upstream when the
// client vanished mid-body, so the server never mistakes a truncated body
// for a complete one. Wrappers with a NetConn method (such as *tls.Conn) are
// unwrapped and their transport is reset directly, without a TLS
// close_notify. Connections that are not TCP are closed normally.
func ResetClose(c net.Conn) error {
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetLinger(0); err != nil {
			_ = tc.Close()
			return err
		}
	}
	return c.Close()
}
