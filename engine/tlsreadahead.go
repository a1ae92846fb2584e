package engine

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// Read-ahead for detached TLS clients. crypto/tls reads its transport a record or two at a time (it
// asks for the free room of its own buffer), so a TLS upload read through tls.Conn costs a read
// system call per 16–32 KiB — and on loopback each of them also sends a window update that wakes
// the sender. While a detached exchange reads a TLS client's body, its transport (loopTLSConn in
// socket mode) reads the socket tlsReadAheadSize bytes at a time instead and serves crypto/tls
// from that buffer: one read per 128 KiB of ciphertext. Bytes read ahead past the exchange (a
// pipelined request, close_notify) are carried back to the loop when the connection re-enrolls.
//
// Memory: the buffers come from a bounded pool, at most as many as the copy path has buffers
// (server.copy_memory_max / copy buffer size), so read-ahead adds at most half of copy_memory_max
// (128 KiB per 256 KiB copy buffer). When all are in use a detached TLS client reads as crypto/tls
// asks, without read-ahead.

// tlsReadAheadSize is the size of a read-ahead buffer: eight full TLS records.
const tlsReadAheadSize = 128 << 10

// Read batching. While a large body lasts, the socket's SO_RCVLOWAT is set to the batch
// (server.zero_copy.read_batch, capped at tlsReadAheadSize), so the runtime's poller wakes the
// reader once per batch of ciphertext instead of once per segment: fewer wake-ups, reads and window
// updates per GiB when bodies arrive more slowly than the proxy reads them
// (bench/results/2026-12-02-tls-read-batch-verdict.md). The same rules as the splice path's
// (transfer.Options.ReadBatch):
//   - The tail: a client that sent its whole body waits for the answer and sends nothing more, so
//     the mark may only be the batch while at least a batch of ciphertext is certain to still come.
//     The body's plaintext not yet read from the socket bounds that from below (ciphertext is never
//     shorter than its plaintext); what user space already held when the body started is at most
//     tlsHeldMax (crypto/tls) plus the transport's carry. Below that the mark is 1.
//   - The end: the mark goes back to 1 when the body ends (stopReadAhead), before the socket goes
//     back to its loop or the next request's head is read.
//   - A slow client: a read deadline that passes with bytes queued below the batch turns batching
//     off for the rest of the body and re-arms the deadline, instead of failing the body as stalled.

// tlsHeldMax bounds what crypto/tls holds of a connection's input at any time: the transport hands
// it at most one record per Read (loopTLSConn.Read), so its raw input never exceeds two records
// (it reads until one is complete), and its decrypted input is at most one record's plaintext.
const tlsHeldMax = 2*tlsMaxRecord + 16<<10

// readAheads lends the read-ahead buffers, at most n (newReadAheads) at once, and carries the
// read-batch settings.
type readAheads struct {
	sem   chan struct{}
	pool  sync.Pool
	batch int           // SO_RCVLOWAT while a body lasts; 0: batching off
	stall time.Duration // the read deadline a slow client's read is re-armed with
}

// newReadAheads returns a pool of at most n buffers. batch is the read batch (≤ 1: off; capped at
// tlsReadAheadSize); stall is server.body_stall_timeout.
func newReadAheads(n, batch int, stall time.Duration) *readAheads {
	r := &readAheads{sem: make(chan struct{}, max(1, n)), stall: stall}
	if batch > 1 && canBatchReads {
		r.batch = min(batch, tlsReadAheadSize)
	}
	r.pool.New = func() any { b := make([]byte, tlsReadAheadSize); return &b }
	return r
}

// get returns a buffer, or nil when all are lent out.
func (r *readAheads) get() *[]byte {
	select {
	case r.sem <- struct{}{}:
		return r.pool.Get().(*[]byte)
	default:
		return nil
	}
}

// put returns a buffer get lent (nil is ignored).
func (r *readAheads) put(b *[]byte) {
	if b == nil {
		return
	}
	r.pool.Put(b)
	<-r.sem
}

// readAhead is the read-ahead state of a loopTLSConn in socket mode.
type readAhead struct {
	buf      *[]byte // lent by readAheads; nil: no read-ahead
	off, end int     // unread bytes are (*buf)[off:end]
	err      error   // the error of the read that filled buf, returned once its bytes are served
	carry    []byte  // bytes read ahead when the connection went back to the loop (memory mode serves them first)

	// read batching (see above)
	rc     syscall.RawConn // the body's socket's; nil: no batching (taken per body: the loop driver's detached exchanges each get a new socket object)
	batch  int             // the mark while budget lasts; 0: off for this body
	budget int64           // ciphertext certain to still come from the socket
	lowat  int             // the mark set now; 0 or 1: the socket's default
	stall  time.Duration
	setTo  int
	setErr error
	setFn  func(fd uintptr) // bound once: a closure per call would allocate
}

// buffered returns the bytes read ahead and not yet served.
func (ra *readAhead) buffered() int { return ra.end - ra.off }

// read serves b from the read-ahead buffer, refilling it with one read of sock when empty.
func (ra *readAhead) read(sock interface{ Read([]byte) (int, error) }, b []byte) (int, error) {
	if ra.end == ra.off {
		if ra.err != nil {
			err := ra.err
			ra.err = nil
			return 0, err
		}
		n, err := ra.fill(sock)
		ra.off, ra.end = 0, n
		if n == 0 {
			return 0, err
		}
		ra.err = err
	}
	n := copy(b, (*ra.buf)[ra.off:ra.end])
	ra.off += n
	if ra.off == ra.end && ra.err != nil {
		err := ra.err
		ra.err = nil
		return n, err
	}
	return n, nil
}

// fill reads sock once into the read-ahead buffer, with the mark the body's budget allows.
func (ra *readAhead) fill(sock interface{ Read([]byte) (int, error) }) (int, error) {
	buf := *ra.buf
	if ra.batch == 0 {
		return sock.Read(buf)
	}
	want := 1
	if ra.budget >= int64(ra.batch) {
		want = ra.batch
	}
	ra.setLowat(want)
	n, err := sock.Read(buf)
	if n == 0 && ra.lowat > 1 && isTimeout(err) && ra.queued() > 0 {
		// Slow, not stalled: what came is read at once, and the client gets a fresh stall period.
		ra.setLowat(1)
		ra.batch = 0
		if d, ok := sock.(interface{ SetReadDeadline(time.Time) error }); ok && ra.stall > 0 {
			_ = d.SetReadDeadline(time.Now().Add(ra.stall))
		}
		n, err = sock.Read(buf)
	}
	ra.budget -= int64(n)
	return n, err
}

// setLowat sets the socket's SO_RCVLOWAT to v (a value below 2 means the default, 1). If the
// kernel refuses, batching is off for this body.
func (ra *readAhead) setLowat(v int) {
	if max(v, 1) == max(ra.lowat, 1) {
		return
	}
	ra.setTo, ra.setErr = v, nil
	if err := ra.rc.Control(ra.setFn); err != nil || ra.setErr != nil {
		ra.batch = 0
		return
	}
	ra.lowat = v
}

// queued returns the bytes the socket holds unread. Only a stall deadline calls it, so its
// closure's allocation does not matter.
func (ra *readAhead) queued() int {
	n := 0
	_ = ra.rc.Control(func(fd uintptr) { n = socketQueued(fd) })
	return n
}

// startBatch batches the reads of a body of which body bytes of plaintext are still to come, when it
// is large enough: its budget is what must still come through the socket beyond what user space
// may already hold.
func (ra *readAhead) startBatch(p *readAheads, sock net.Conn, body int64) {
	ra.batch, ra.budget = 0, body-int64(tlsHeldMax+len(ra.carry)+ra.buffered())
	if p.batch == 0 || ra.budget < int64(p.batch) {
		return
	}
	sc, ok := sock.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	ra.rc = rc
	if ra.setFn == nil {
		ra.setFn = func(fd uintptr) { ra.setErr = setRcvLowat(fd, ra.setTo) }
	}
	ra.batch, ra.stall = p.batch, p.stall
}

// endBatch puts the socket's mark back to 1 and lets go of the socket.
func (ra *readAhead) endBatch() {
	ra.batch = 0
	if ra.lowat > 1 {
		ra.setLowat(1)
		ra.lowat = 1 // even if refused: nothing more can be done for this socket
	}
	ra.rc = nil
}

// startReadAhead gives m's socket mode a read-ahead buffer from p, if one is free, for a body of
// which body bytes are still to come (≤ 0: not known; no batching).
func (m *loopTLSConn) startReadAhead(p *readAheads, body int64) {
	if m.ra.buf == nil {
		m.ra.buf = p.get()
		m.ra.off, m.ra.end, m.ra.err = 0, 0, nil
	}
	if m.ra.buf != nil && m.sock != nil {
		m.ra.startBatch(p, m.sock, body)
	}
}

// stopReadAhead returns m's read-ahead buffer to p; bytes still in it are kept in m.ra.carry for
// memory mode to serve first (their error, if any, is dropped: the loop sees the socket's own).
func (m *loopTLSConn) stopReadAhead(p *readAheads) {
	m.ra.endBatch()
	if m.ra.buf == nil {
		return
	}
	if rest := (*m.ra.buf)[m.ra.off:m.ra.end]; len(rest) > 0 {
		m.ra.carry = append(m.ra.carry[:0], rest...)
	}
	p.put(m.ra.buf)
	m.ra.buf, m.ra.off, m.ra.end, m.ra.err = nil, 0, 0, nil
}
