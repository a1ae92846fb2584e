package engine

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/proxyproto"
)

// The PROXY protocol (v1 and v2) on the client listeners: behind an L4 balancer (HAProxy
// send-proxy[-v2], an AWS NLB) each connection from a trusted balancer begins with a header naming
// the client, and that address becomes the connection's remote (access log, Authorizer input,
// limits). On the event loops the header is parsed from gnet's buffer before the first head
// (process → proxyHeader); on a net.Listener (the https listener) ProxyListener reads it before
// the TLS handshake, in the connection's goroutine.

// ProxyProtocol configures the PROXY protocol on the listeners.
type ProxyProtocol struct {
	// Enabled: every connection must come from a Trusted address and begin with a PROXY header
	// (v1 or v2, detected by its first byte). A connection from any other address, or with a
	// missing or malformed header, is closed without an answer.
	Enabled bool
	// Trusted are the balancers' networks. Required when Enabled.
	Trusted []netip.Prefix
}

// Reasons a connection was refused, the label of mizuchi_proxy_protocol_rejected_total.
const (
	ppUntrusted  = iota // the peer is not in Trusted
	ppMissing           // the first bytes are no PROXY header
	ppMalformed         // a header that breaks the specification (or is too long)
	ppIncomplete        // the peer closed or timed out before the header was whole (https listener)
	ppReasons
)

var ppReasonNames = [ppReasons]string{"untrusted", "missing", "malformed", "incomplete"}

func (p *ProxyProtocol) validate() error {
	if p.Enabled && len(p.Trusted) == 0 {
		return errors.New("proxy protocol is enabled without trusted networks: any client could claim any address (set server.proxy_protocol.trusted_cidrs)")
	}
	return nil
}

// trusted reports whether the peer a may send a PROXY header.
func (p *ProxyProtocol) trusted(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap()
	for _, n := range p.Trusted {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// ppError maps a parse error to its rejection reason.
func ppError(err error) int {
	if errors.Is(err, proxyproto.ErrMissing) {
		return ppMissing
	}
	return ppMalformed
}

// clientAddr is the address a header names: its source, or the peer's for a LOCAL / UNKNOWN one.
func clientAddr(h *proxyproto.Header, peer net.Addr) string {
	if h.Local || !h.Source.IsValid() {
		if peer == nil {
			return ""
		}
		return peer.String()
	}
	return netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port()).String()
}

// proxyHeader reads the PROXY header of a new event-loop connection (st.proxyWait) from gnet's
// buffer. It returns done=true with the action while the header is incomplete (wait, bounded by
// the head timeout) or was refused (close); done=false once the header was consumed and st.remote
// set: the bytes after it are the first head's. It allocates only st.remote's string, the one
// OnOpen skips for these connections.
func (e *Engine) proxyHeader(c gnet.Conn, st *connState) (gnet.Action, bool) {
	buf, _ := c.Peek(-1)
	if len(buf) == 0 {
		return gnet.None, true
	}
	if st.headSince.Load() == 0 {
		st.headSince.Store(e.now())
		st.idleSince.Store(0)
	}
	var h proxyproto.Header
	n, err := proxyproto.Parse(buf, &h)
	if err == proxyproto.ErrNeedMore {
		return gnet.None, true
	}
	if err != nil {
		e.metrics.proxyRejected[ppError(err)].Inc()
		return gnet.Close, true
	}
	_, _ = c.Discard(n)
	st.proxyWait = false
	st.remote = clientAddr(&h, c.RemoteAddr())
	st.headSince.Store(0)
	st.idleSince.Store(e.now())
	if !e.admitConn(st) { // the connection limits count the client's address, not the balancer's
		return gnet.Close, true
	}
	return gnet.None, false
}

// ProxyListener wraps l for Serve when the PROXY protocol is enabled (else it returns l): Accept
// closes connections from untrusted peers at once, and each accepted connection reads its header
// in its own goroutine — on the first Read, or when Serve asks before it reads the remote
// address — within timeout (the TLS handshake timeout for the https listener, which wraps this
// listener's connections in tls.Server).
func (e *Engine) ProxyListener(l net.Listener, timeout time.Duration) net.Listener {
	if !e.opts.ProxyProtocol.Enabled {
		return l
	}
	if timeout <= 0 {
		timeout = e.opts.HeadTimeout
	}
	return &proxyListener{Listener: l, e: e, timeout: timeout}
}

type proxyListener struct {
	net.Listener
	e       *Engine
	timeout time.Duration
}

func (l *proxyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.e.opts.ProxyProtocol.trusted(c.RemoteAddr()) {
			l.e.metrics.proxyRejected[ppUntrusted].Inc()
			_ = c.Close()
			continue
		}
		return &ProxyConn{Conn: c, e: l.e, timeout: l.timeout}, nil
	}
}

// ProxyConn is a connection accepted by ProxyListener. ReadProxyHeader reads and checks its
// header (once); RemoteAddr is then the client's address. Read serves the bytes that followed the
// header first. Not safe for concurrent use before the header was read.
type ProxyConn struct {
	net.Conn
	e       *Engine
	timeout time.Duration
	once    sync.Once
	err     error
	remote  net.Addr
	rest    []byte // bytes read past the header
}

// proxyHeaderReader is implemented by connections whose PROXY header Serve reads before it takes
// the remote address (ProxyConn, and server's TLS connections over one).
type proxyHeaderReader interface{ ReadProxyHeader() error }

// ReadProxyHeader reads the header within the timeout; a missing, malformed or incomplete header
// is an error (counted), and the caller closes the connection without an answer.
func (c *ProxyConn) ReadProxyHeader() error {
	c.once.Do(func() { c.err = c.readHeader() })
	return c.err
}

func (c *ProxyConn) readHeader() error {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.timeout))
	defer func() { _ = c.Conn.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, 0, 256)
	var h proxyproto.Header
	for {
		n, err := proxyproto.Parse(buf, &h)
		if err == nil {
			c.rest = buf[n:]
			if !h.Local && h.Source.IsValid() {
				c.remote = net.TCPAddrFromAddrPort(netip.AddrPortFrom(h.Source.Addr().Unmap(), h.Source.Port()))
			}
			return nil
		}
		if err != proxyproto.ErrNeedMore {
			c.e.metrics.proxyRejected[ppError(err)].Inc()
			return err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), proxyproto.MaxV2Len))...)[:len(buf)]
		}
		m, rerr := c.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if rerr != nil && m == 0 {
			c.e.metrics.proxyRejected[ppIncomplete].Inc()
			return rerr
		}
	}
}

// Read returns the bytes that followed the header, then reads the connection.
func (c *ProxyConn) Read(p []byte) (int, error) {
	if err := c.ReadProxyHeader(); err != nil {
		return 0, err
	}
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// RemoteAddr is the client's address from the header once it was read (the peer's for a LOCAL
// or UNKNOWN header, and before).
func (c *ProxyConn) RemoteAddr() net.Addr {
	if c.remote != nil {
		return c.remote
	}
	return c.Conn.RemoteAddr()
}
