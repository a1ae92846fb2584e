package engine

import "sync"

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

// readAheads lends the read-ahead buffers, at most n (newReadAheads) at once.
type readAheads struct {
	sem  chan struct{}
	pool sync.Pool
}

func newReadAheads(n int) *readAheads {
	r := &readAheads{sem: make(chan struct{}, max(1, n))}
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
		buf := *ra.buf
		if len(b) >= len(buf) {
			return sock.Read(b)
		}
		n, err := sock.Read(buf)
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

// startReadAhead gives m's socket mode a read-ahead buffer from p, if one is free.
func (m *loopTLSConn) startReadAhead(p *readAheads) {
	if m.ra.buf == nil {
		m.ra.buf = p.get()
		m.ra.off, m.ra.end, m.ra.err = 0, 0, nil
	}
}

// stopReadAhead returns m's read-ahead buffer to p; bytes still in it are kept in m.ra.carry for
// memory mode to serve first (their error, if any, is dropped: the loop sees the socket's own).
func (m *loopTLSConn) stopReadAhead(p *readAheads) {
	if m.ra.buf == nil {
		return
	}
	if rest := (*m.ra.buf)[m.ra.off:m.ra.end]; len(rest) > 0 {
		m.ra.carry = append(m.ra.carry[:0], rest...)
	}
	p.put(m.ra.buf)
	m.ra.buf, m.ra.off, m.ra.end, m.ra.err = nil, 0, 0, nil
}
