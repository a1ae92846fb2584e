package engine

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// TLS on loop-owned upstream connections (https endpoints): the connection is dialled and its
// handshake done in a goroutine over the socket, then the socket joins the loop like a plain one and
// crypto/tls is driven from the loop's callbacks over an in-memory transport (loopTLSConn): what it
// writes is ciphertext the loop sends with gnet, what it reads is the ciphertext gnet read. When no
// ciphertext is left, loopTLSConn's Read fails with a temporary net.Error, which crypto/tls does not
// keep (a partial record stays in its own buffer), so tls.Conn.Read is called again on the next
// OnTraffic. No goroutine hop per request, as for plain http endpoints.

// maxLoopTLSPlain bounds the decrypted answer held for one request (head and body).
const maxLoopTLSPlain = maxResponseBytes + 64<<10

// loopTLSKeep is the largest buffer an idle loop TLS connection keeps (a larger one, for a large
// inline body or answer, is dropped once used).
const loopTLSKeep = 64 << 10

// errNoCiphertext is loopTLSConn's Read when all the ciphertext gnet read has been handed to crypto/tls.
var errNoCiphertext net.Error = noCiphertext{}

type noCiphertext struct{}

func (noCiphertext) Error() string   { return "loop tls: no ciphertext buffered" }
func (noCiphertext) Timeout() bool   { return false }
func (noCiphertext) Temporary() bool { return true }

// loopTLSConn is the transport under a loop-owned tls.Conn. During the handshake (in the dialling
// goroutine) it passes through to the socket; afterwards it only touches in and out, on the loop.
type loopTLSConn struct {
	sock net.Conn // the socket while handshaking; nil once the connection belongs to the loop
	in   []byte   // ciphertext not yet read by crypto/tls (aliases gnet's buffer during OnTraffic)
	out  []byte   // ciphertext crypto/tls wrote, not yet given to gnet
	addr net.Addr
	peer net.Addr
	ra   readAhead // a detached TLS client's (tlsreadahead.go)
}

// Read, in socket mode, hands crypto/tls at most one record's worth per call, whatever room it
// offers, so it never holds more than tlsHeldMax of the input (read batching relies on that bound:
// tlsreadahead.go). Memory mode needs no cap: the loop decrypts all it hands over (loopTLS.open),
// so crypto/tls holds less than a record when the connection detaches.
func (m *loopTLSConn) Read(b []byte) (int, error) {
	if m.sock != nil {
		b = b[:min(len(b), tlsMaxRecord)]
	}
	if len(m.ra.carry) > 0 {
		n := copy(b, m.ra.carry)
		m.ra.carry = m.ra.carry[:copy(m.ra.carry, m.ra.carry[n:])]
		return n, nil
	}
	if m.sock != nil {
		if m.ra.buf != nil {
			return m.ra.read(m.sock, b)
		}
		return m.sock.Read(b)
	}
	if len(m.in) == 0 {
		return 0, errNoCiphertext
	}
	n := copy(b, m.in)
	m.in = m.in[n:]
	return n, nil
}

func (m *loopTLSConn) Write(b []byte) (int, error) {
	if m.sock != nil {
		return m.sock.Write(b)
	}
	m.out = append(m.out, b...)
	return len(b), nil
}

func (m *loopTLSConn) Close() error {
	if m.sock != nil {
		return m.sock.Close()
	}
	return nil
}

// LocalAddr and RemoteAddr are the socket's while there is one (behind a PROXY header, the
// client's once the header is read), else those it had.
func (m *loopTLSConn) LocalAddr() net.Addr {
	if m.sock != nil {
		return m.sock.LocalAddr()
	}
	return m.addr
}

func (m *loopTLSConn) RemoteAddr() net.Addr {
	if m.sock != nil {
		return m.sock.RemoteAddr()
	}
	return m.peer
}

func (m *loopTLSConn) SetDeadline(t time.Time) error {
	if m.sock != nil {
		return m.sock.SetDeadline(t)
	}
	return nil
}

func (m *loopTLSConn) SetReadDeadline(t time.Time) error {
	if m.sock != nil {
		return m.sock.SetReadDeadline(t)
	}
	return nil
}

func (m *loopTLSConn) SetWriteDeadline(t time.Time) error {
	if m.sock != nil {
		return m.sock.SetWriteDeadline(t)
	}
	return nil
}

// loopTLS is the TLS state of one loop-owned upstream connection (or of a loop-served client's,
// looptls_server.go).
type loopTLS struct {
	mc    loopTLSConn
	tc    *tls.Conn
	plain []byte // decrypted bytes not yet consumed
	keep  int    // the largest emptied plain kept: loopTLSKeep, or more while a body streams (0: loopTLSKeep)
	ended bool   // the peer's close_notify was read (upstream side): nothing follows plain
}

// handshakeForLoop runs the TLS handshake of a freshly dialled socket (in the dialling goroutine)
// and returns the state the loop drives afterwards.
func (p *upstreamPool) handshakeForLoop(conn net.Conn) (*loopTLS, error) {
	t := &loopTLS{}
	t.mc = loopTLSConn{sock: conn, addr: conn.LocalAddr(), peer: conn.RemoteAddr()}
	t.tc = tls.Client(&t.mc, p.tlsConf)
	_ = conn.SetDeadline(time.Now().Add(p.dialTimeout))
	if err := t.tc.Handshake(); err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	p.m.upstreamTLSHandshakes.Inc()
	if t.tc.ConnectionState().DidResume {
		p.m.upstreamTLSResumed.Inc()
	}
	t.mc.sock = nil // from here on the loop owns the socket (Enroll) and feeds crypto/tls from memory
	return t, nil
}

// seal encrypts b and returns the ciphertext to send (valid until the next call on t).
func (t *loopTLS) seal(b []byte) ([]byte, error) {
	t.mc.out = t.mc.out[:0]
	if _, err := t.tc.Write(b); err != nil {
		return nil, err
	}
	return t.mc.out, nil
}

// Errors of open when the decrypted bytes would pass their bound.
var (
	errTLSAnswerTooLarge = errors.New("loop tls: answer too large")
	errTLSClientTooMuch  = errors.New("loop tls: client sent too much")
)

// open hands ciphertext (all of it is consumed: crypto/tls keeps a partial record) to crypto/tls
// and appends what it decrypts to t.plain, growing it from minCap up to limit (tooMuch past it).
// Ciphertext crypto/tls wants to send in reply (a key update) is left in t.mc.out for flush.
func (t *loopTLS) open(ct []byte, minCap, limit int, tooMuch error) error {
	t.mc.in = ct
	defer func() { t.mc.in = nil }()
	for {
		if len(t.plain) == cap(t.plain) {
			if cap(t.plain) >= limit {
				return tooMuch
			}
			n := make([]byte, len(t.plain), max(2*cap(t.plain), minCap))
			copy(n, t.plain)
			t.plain = n
		}
		n, err := t.tc.Read(t.plain[len(t.plain):cap(t.plain)])
		t.plain = t.plain[:len(t.plain)+n]
		if err == errNoCiphertext {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// consume drops the first n decrypted bytes (an answer relayed, a request read).
func (t *loopTLS) consume(n int) {
	rest := copy(t.plain, t.plain[n:])
	t.plain = t.plain[:rest]
	t.trim()
}

// trim lets go of an emptied buffer larger than the connection keeps.
func (t *loopTLS) trim() {
	if len(t.plain) == 0 && cap(t.plain) > max(t.keep, loopTLSKeep) {
		t.plain = nil
	}
}

// send writes b to the upstream on c, through TLS when the connection has it. On the loop only; a
// failed write closes the connection (OnClose runs inside this call).
func (u *loopUp) send(c gnet.Conn, b []byte) {
	if u.tls != nil {
		ct, err := u.tls.seal(b)
		if err != nil {
			_ = c.Close()
			return
		}
		b = ct
	}
	_, _ = c.Write(b)
}

// answer returns the answer bytes received so far: gnet's buffer, or for TLS the decrypted bytes
// (the ciphertext is taken out of gnet's buffer). ok is false when the TLS stream failed. ended
// is true once the upstream's close_notify was read: buf is all it will send (an upstream that
// closes after answering sends it right behind the answer, often in the same read).
func (u *loopUp) answer(c gnet.Conn) (buf []byte, ok, ended bool) {
	buf, _ = c.Peek(-1)
	if u.tls == nil {
		return buf, true, false
	}
	if u.tls.ended {
		_, _ = c.Discard(len(buf)) // nothing after close_notify counts
		return u.tls.plain, true, true
	}
	u.tls.mc.out = u.tls.mc.out[:0] // what seal left there went out already
	if cap(u.tls.mc.out) > loopTLSKeep {
		u.tls.mc.out = nil
	}
	err := u.tls.open(buf, 4<<10, maxLoopTLSPlain, errTLSAnswerTooLarge)
	_, _ = c.Discard(len(buf))
	if errors.Is(err, io.EOF) {
		u.tls.ended, err = true, nil
	}
	if out := u.tls.mc.out; len(out) > 0 && err == nil && !u.tls.ended {
		_, _ = c.Write(out)
		u.tls.mc.out = out[:0]
	}
	return u.tls.plain, err == nil, u.tls.ended
}

// discard drops the first n answer bytes of buf (what answer returned) and returns the rest.
func (u *loopUp) discard(c gnet.Conn, buf []byte, n int) []byte {
	if u.tls != nil {
		u.tls.consume(n)
		return u.tls.plain
	}
	_, _ = c.Discard(n)
	return buf[n:]
}
