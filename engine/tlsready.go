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
	rc  syscall.RawConn // the socket's; nil when it has none (then never ready)
	ctl func(fd uintptr)
	inq int // set by ctl
}

// point sets r to read through tc over sock.
func (r *readyTLS) point(tc *tls.Conn, sock net.Conn) {
	r.Conn, r.rc = tc, nil
	if sc, ok := sock.(syscall.Conn); ok && canAskQueued {
		r.rc, _ = sc.SyscallConn()
	}
	if r.ctl == nil {
		r.ctl = r.queued
	}
}

// ReadReady reports whether the socket holds at least one whole TLS record not yet read.
func (r *readyTLS) ReadReady() bool {
	if r.rc == nil {
		return false
	}
	r.inq = 0
	if r.rc.Control(r.ctl) != nil {
		return false
	}
	return r.inq >= tlsMaxRecord
}

// queued stores in r.inq the bytes the socket fd holds unread (0 when it cannot tell).
func (r *readyTLS) queued(fd uintptr) { r.inq = socketQueued(fd) }
