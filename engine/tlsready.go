package engine

import (
	"crypto/tls"
	"net"
	"syscall"
)

// tlsMaxRecord is the largest TLS record on the wire: header, 16 KiB of plaintext and the most
// expansion TLS allows (RFC 8446 5.2).
const tlsMaxRecord = 5 + 16<<10 + 256

// readyTLS is the tls.Conn a detached TLS client's body is read through, telling the copy path
// whether a Read would return at once (transfer.ReadReadier): when the socket holds a whole
// record's worth of ciphertext beyond what crypto/tls buffered, the next record can be completed
// and decrypted without waiting. The copy path then fills its buffer with several records before
// writing upstream — one write per buffer instead of one per 16 KiB record.
type readyTLS struct {
	*tls.Conn
	rc  syscall.RawConn // the socket's; nil when it has none (then only read-ahead bytes count)
	ra  *readAhead      // the transport's read-ahead (tlsreadahead.go)
	ctl func(fd uintptr)
	inq int // set by ctl
}

// point sets r to read through tc over sock, whose transport reads ahead into ra.
func (r *readyTLS) point(tc *tls.Conn, sock net.Conn, ra *readAhead) {
	r.Conn, r.rc, r.ra = tc, nil, ra
	if sc, ok := sock.(syscall.Conn); ok && canAskQueued {
		r.rc, _ = sc.SyscallConn()
	}
	if r.ctl == nil {
		r.ctl = r.queued
	}
}

// ReadReady reports whether at least one whole TLS record's worth of ciphertext waits beyond what
// crypto/tls holds: read ahead, or in the socket's receive queue.
func (r *readyTLS) ReadReady() bool {
	have := len(r.ra.carry) + r.ra.buffered()
	if have >= tlsMaxRecord || r.rc == nil {
		return have >= tlsMaxRecord
	}
	r.inq = 0
	if r.rc.Control(r.ctl) != nil {
		return false
	}
	return have+r.inq >= tlsMaxRecord
}

// queued stores in r.inq the bytes the socket fd holds unread (0 when it cannot tell).
func (r *readyTLS) queued(fd uintptr) { r.inq = socketQueued(fd) }
