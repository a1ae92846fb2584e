package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// TLS clients served by the event loops (ServeTLS). A connection is accepted and its handshake
// done in a goroutine (PROXY header first, client limits, handshake timeout), over a transport
// that passes through to the socket (loopTLSConn, as for loop-owned https upstreams); then the
// transport switches to memory and the socket is enrolled on an event loop. From there on each
// OnTraffic hands gnet's ciphertext to crypto/tls and process parses the decrypted bytes; every
// answer the loop writes is sealed first (tlsGConn wraps the gnet connection so that the
// pipeline's code is the plain path's). Small bodies are exchanged in the loop; a body that
// would be streamed or auto-chunked detaches (detach.go): the goroutine reads it through the
// tls.Conn with the transport pointed at the socket again (crypto/tls keeps a partial record)
// and takes the copy path; handBack switches the transport back to memory and re-enrolls.

// maxTLSClientPlain bounds the decrypted bytes held for one client connection (process refuses
// or closes long before: heads, inline bodies, pipelined bytes are all capped below this).
const maxTLSClientPlain = 64 << 20

// serverTLS is the TLS state of one loop-served TLS client connection.
type serverTLS struct {
	*loopTLS
	gc       tlsGConn
	enrolled bool // joined a loop once
}

// tlsGConn is the gnet connection of a TLS client as the pipeline sees it: reads return the
// decrypted bytes, writes are sealed. Everything else is the gnet connection's.
type tlsGConn struct {
	gnet.Conn
	t *loopTLS
}

func (g *tlsGConn) Peek(n int) ([]byte, error) {
	p := g.t.plain
	if n < 0 || n == len(p) {
		return p, nil
	}
	if n > len(p) {
		return p, io.ErrShortBuffer
	}
	return p[:n], nil
}

func (g *tlsGConn) Discard(n int) (int, error) {
	if n < 0 || n > len(g.t.plain) {
		n = len(g.t.plain)
	}
	g.t.consume(n)
	return n, nil
}

func (g *tlsGConn) InboundBuffered() int { return len(g.t.plain) }

// Write seals b and queues the ciphertext on the gnet connection. On the loop only.
func (g *tlsGConn) Write(b []byte) (int, error) {
	ct, err := g.t.seal(b)
	if err == nil {
		_, err = g.Conn.Write(ct)
	}
	g.t.mc.out = g.t.mc.out[:0] // gone to gnet (tlsTraffic sends only what crypto/tls adds later)
	if cap(g.t.mc.out) > loopTLSKeep {
		g.t.mc.out = nil
	}
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

func (g *tlsGConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		m, err := g.Write(b)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// AsyncWrite seals and writes b on the connection's loop (crypto/tls's state is the loop's).
func (g *tlsGConn) AsyncWrite(b []byte, cb gnet.AsyncCallback) error {
	c := g.Conn
	return c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		var err error
		if g.Conn != c {
			err = net.ErrClosed
		} else {
			_, err = g.Write(b)
		}
		if cb != nil {
			return cb(g, err)
		}
		return nil
	}))
}

func (g *tlsGConn) AsyncWritev(bs [][]byte, cb gnet.AsyncCallback) error {
	var b []byte
	for _, x := range bs {
		b = append(b, x...)
	}
	return g.AsyncWrite(b, cb)
}

// tlsTraffic decrypts what gnet read for a TLS client and runs the pipeline on the plaintext.
func (e *Engine) tlsTraffic(c gnet.Conn, st *connState) gnet.Action {
	t := st.tls
	raw, _ := c.Peek(-1)
	err := t.openClient(raw)
	_, _ = c.Discard(len(raw))
	if out := t.mc.out; len(out) > 0 {
		_, _ = c.Write(out) // crypto/tls's own answer (a key update)
		t.mc.out = out[:0]
	}
	if err != nil && (!errors.Is(err, io.EOF) || len(t.plain) == 0 && !st.inFlight()) {
		return gnet.Close // a bad record, or close_notify with nothing left to serve or answer
	}
	// After close_notify the answer of a request in flight is still written: the client's FIN then
	// comes to OnClose, which keeps a dup of the socket for it (finishInLoop, halfClosedAnswer).
	return e.process(&t.gc, st)
}

// openClient hands ciphertext to crypto/tls and appends what it decrypts to t.plain (see open).
func (t *loopTLS) openClient(ct []byte) error {
	t.mc.in = ct
	defer func() { t.mc.in = nil }()
	for {
		if len(t.plain) == cap(t.plain) {
			if cap(t.plain) >= maxTLSClientPlain {
				return errors.New("loop tls: client sent too much")
			}
			n := make([]byte, len(t.plain), max(2*cap(t.plain), 16<<10))
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

// inFlight reports whether a request is being exchanged or decided for the connection.
func (st *connState) inFlight() bool {
	p := st.phase.Load()
	return p == phaseBusy || p == phaseAwait
}

// halfClosedAnswer is what finishInLoop writes to the socket of a client that half-closed: the
// answer, sealed for a TLS client.
func (st *connState) halfClosedAnswer(resp []byte) []byte {
	if st.tls == nil {
		return resp
	}
	ct, err := st.tls.seal(resp)
	if err != nil {
		return nil
	}
	return ct
}

// clientConn is the connection the pipeline uses for c: the sealing wrapper for a TLS client.
func clientConn(st *connState, c gnet.Conn) gnet.Conn {
	if st.tls != nil && st.tls.gc.Conn == c {
		return &st.tls.gc
	}
	return c
}

// tlsReturning takes a TLS client back on a loop (its first enroll after the handshake, or a
// re-enroll after a detached exchange): bytes crypto/tls already holds are served at once.
func (e *Engine) tlsReturning(st *connState, c gnet.Conn) gnet.Conn {
	if !st.tls.enrolled && st.lim.refuse != nil {
		// Over a client limit: its first head must come within head_timeout (refuseConn).
		st.idleSince.Add(int64(e.opts.HeadTimeout) - int64(e.opts.IdleTimeout))
	}
	st.tls.enrolled = true
	st.tls.gc.Conn = c
	_ = c.Wake(nil) // OnTraffic: decrypt what crypto/tls buffered, if anything
	return &st.tls.gc
}

// tlsDetached points a detached TLS client's transport at its socket again and returns the
// tls.Conn the exchange reads and answers through.
func (st *connState) tlsDetached(sock net.Conn) net.Conn {
	st.tls.mc.sock = sock // gc.Conn is left to the loop: OnClose of the old connection reads it
	return st.tls.tc
}

// tlsSocket returns the socket under a detached TLS client for re-enrolling, its transport
// switched back to memory (the loop feeds crypto/tls from then on).
func (st *connState) tlsSocket() net.Conn {
	sock := st.tls.mc.sock
	st.tls.mc.sock = nil
	return sock
}

// ServeTLS serves TLS clients accepted on l (plain TCP sockets, or a ProxyListener's) with the
// event loops: each connection's PROXY header and handshake (cfg, within handshakeTimeout) run in a
// goroutine, then the connection joins a loop. Without event loops (no plain listener) the
// connections are served by the goroutine driver, as by Serve. Shutdown closes l.
func (e *Engine) ServeTLS(l net.Listener, cfg *tls.Config, handshakeTimeout time.Duration) error {
	e.listenersMu.Lock()
	if e.draining.Load() {
		e.listenersMu.Unlock()
		return nil
	}
	e.listeners = append(e.listeners, l)
	e.listenersMu.Unlock()
	e.discoverLoops()
	for {
		c, err := l.Accept()
		if err != nil {
			if e.draining.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		go e.serveTLSConn(c, cfg, handshakeTimeout)
	}
}

// serveTLSConn handshakes with one client and enrolls it on a loop.
func (e *Engine) serveTLSConn(c net.Conn, cfg *tls.Config, timeout time.Duration) {
	e.metrics.connsOpen.Inc()
	fail := func(st *connState) {
		if st != nil {
			e.releaseConn(st)
		}
		_ = c.Close()
		e.metrics.connsOpen.Dec()
	}
	if p, ok := c.(proxyHeaderReader); ok && p.ReadProxyHeader() != nil {
		fail(nil) // counted by ReadProxyHeader; no answer
		return
	}
	st := &connState{}
	if a := c.RemoteAddr(); a != nil {
		st.remote = a.String()
	}
	if !e.admitConn(st) { // limits.go
		fail(nil)
		return
	}
	t := &serverTLS{loopTLS: &loopTLS{}}
	t.gc.t = t.loopTLS
	t.mc = loopTLSConn{sock: c, addr: c.LocalAddr(), peer: c.RemoteAddr()}
	t.tc = tls.Server(&t.mc, cfg)
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := t.tc.Handshake(); err != nil || e.draining.Load() {
		fail(st)
		return
	}
	_ = c.SetDeadline(time.Time{})
	raw, el := socketOf(c), e.tlsLoop()
	if raw == nil || el == nil {
		// No loop to join (no plain listener) or not a TCP socket: the goroutine driver serves it.
		e.releaseConn(st)
		e.metrics.connsOpen.Dec()
		e.serveConn(t.tc)
		return
	}
	st.tls = t
	st.returning = true
	t.mc.sock = nil // from here on the loop owns the socket and feeds crypto/tls from memory
	ch, err := el.Enroll(gnet.NewContext(context.Background(), st), raw)
	if err != nil {
		fail(st)
		return
	}
	if res := <-ch; res.Err != nil {
		e.releaseConn(st)
		e.metrics.connsOpen.Dec()
		e.opts.Logger.Debug("tls enroll failed", "err", res.Err)
	}
}

// socketOf returns the TCP socket under c (a ProxyConn's, once its header is read and nothing
// past it is left buffered), or nil.
func socketOf(c net.Conn) *net.TCPConn {
	if p, ok := c.(*ProxyConn); ok {
		if len(p.rest) > 0 {
			return nil
		}
		c = p.Conn
	}
	tc, _ := c.(*net.TCPConn)
	return tc
}

// loopPicker spreads TLS clients over the event loops. gnet offers no list of its loops, and its
// round-robin balancer must not be called beside its acceptor, so the loops are learnt from
// connections: ServeTLS dials the plain listener a few times first (probes, closed at once in
// OnOpen, never counted) until it has seen every loop.
type loopPicker struct {
	want   atomic.Bool
	mu     sync.Mutex
	loops  []gnet.EventLoop
	probes map[string]bool // the probes' local addresses (the listener's remote ones)
	next   atomic.Uint32
}

// probe reports whether c is one of ServeTLS's probes and notes its loop. On the loop.
func (p *loopPicker) probe(c gnet.Conn) bool {
	if !p.want.Load() {
		return false
	}
	a := c.RemoteAddr()
	if a == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.probes[a.String()] {
		return false
	}
	delete(p.probes, a.String())
	el := c.EventLoop()
	for _, l := range p.loops {
		if l == el {
			return true
		}
	}
	p.loops = append(p.loops, el)
	return true
}

// bindProbe binds a probe's socket to an ephemeral port of host and notes its address.
func (p *loopPicker) bindProbe(fd int, host string) (string, error) {
	ip := net.ParseIP(host)
	var sa syscall.Sockaddr = &syscall.SockaddrInet6{}
	if ip4 := ip.To4(); ip4 != nil {
		sa = &syscall.SockaddrInet4{Addr: [4]byte(ip4)}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return "", err
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		return "", err
	}
	var local string
	switch a := got.(type) {
	case *syscall.SockaddrInet4:
		local = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *syscall.SockaddrInet6:
		local = net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	}
	p.mu.Lock()
	p.probes[local] = true
	p.mu.Unlock()
	return local, nil
}

// numLoops is how many event loops gnet runs (its own rule).
func (e *Engine) numLoops() int {
	if e.opts.EventLoops > 0 {
		return e.opts.EventLoops
	}
	return runtime.NumCPU()
}

// discoverLoops learns the event loops (see loopPicker). Once; without a plain listener, nothing.
func (e *Engine) discoverLoops() {
	p := &e.tlsLoops
	if e.opts.NoPlainListener {
		return
	}
	<-e.bootCh
	p.mu.Lock()
	if p.probes == nil {
		p.probes = map[string]bool{}
	}
	known := len(p.loops)
	p.mu.Unlock()
	host, port, err := net.SplitHostPort(e.opts.Address)
	if err != nil || known > 0 {
		return
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	addr := net.JoinHostPort(host, port)
	p.want.Store(true)
	defer p.want.Store(false)
	n := e.numLoops()
	for i := 0; i < 4*n && known < n; i++ {
		var local string
		d := net.Dialer{Timeout: time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			// Bind first and note the address before connecting: OnOpen may run before Dial returns.
			var err error
			cerr := rc.Control(func(fd uintptr) { local, err = p.bindProbe(int(fd), host) })
			return errors.Join(cerr, err)
		}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			break
		}
		for wait := 0; wait < 200; wait++ { // until OnOpen saw it (at most 200 ms)
			p.mu.Lock()
			seen := !p.probes[local]
			known = len(p.loops)
			p.mu.Unlock()
			if seen {
				break
			}
			time.Sleep(time.Millisecond)
		}
		p.mu.Lock()
		delete(p.probes, local)
		p.mu.Unlock()
		_ = c.Close()
	}
	if known == 0 {
		e.opts.Logger.Warn("https clients: no event loop found; they are served one goroutine per connection")
	}
	e.opts.Logger.Debug("tls: event loops learnt", "loops", strconv.Itoa(known), "of", strconv.Itoa(n))
}

// tlsLoop picks the loop the next TLS client joins (round robin); nil when none is known.
func (e *Engine) tlsLoop() gnet.EventLoop {
	p := &e.tlsLoops
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.loops) == 0 {
		return nil
	}
	return p.loops[int(p.next.Add(1))%len(p.loops)]
}

// tlsDetaches reports whether d admits inline a body a TLS client would stream in the loop: it
// is detached instead (the loop does not stream through crypto/tls).
func tlsDetaches(d *decision) bool {
	inline := d.verdict == verdictInline || d.verdict == verdictAwait && d.next == verdictInline
	return inline && d.bodyLen > streamInlineMin && d.rt.op != opCompleteMultipartUpload
}
