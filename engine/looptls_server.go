package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// TLS clients served by the event loops (ServeTLS). A connection is accepted and its handshake
// done in a goroutine (PROXY header first, client limits, handshake timeout), over a transport
// that passes through to the socket (loopTLSConn, as for loop-owned https upstreams); then the
// transport switches to memory and the socket is enrolled on an event loop. From there on each
// OnTraffic hands gnet's ciphertext to crypto/tls and process parses the decrypted bytes; every
// answer the loop writes is sealed first (tlsGConn wraps the gnet connection so that the
// pipeline's code is the plain path's). Bodies up to Options.InlineBodyMax stay in the loop as a
// plain client's do: up to 64 KiB buffered whole, above that streamed (inline_stream.go) — pump
// takes the decrypted bytes through tlsGConn's Peek/Discard and writes them to the loop-owned
// upstream connection as they arrive, never spliced (the socket holds ciphertext); a close_notify
// in the middle of the body ends the client's bytes as a FIN does. A body above the cap, one in
// HTTP chunks or auto-chunked, or one for an https upstream detaches (detach.go): the goroutine
// reads it through the tls.Conn with the transport pointed at the socket again (crypto/tls keeps
// a partial record) and takes the copy path; handBack switches the transport back to memory and
// re-enrolls.
//
// Memory: gnet has no backpressure, and each OnTraffic decrypts all the ciphertext gnet read (at
// most readBufferCap) into st.tls.plain. What stays there is what process lets wait in a plain
// client's inbound buffer, under the same bounds: a head, an inline body, a streamed body's rest
// while its upstream connection is dialled (at most InlineBodyMax, pump closes past it plus
// maxPipelinedBytes), a body waiting on an Authorizer, maxPipelinedBytes behind a request in
// flight. Once the upstream connection is up, every read's plaintext is written on at once and
// the buffer kept is tlsStreamKeep. So a streaming TLS client holds its body about once — in that
// buffer or in the upstream's outbound buffer (a slow upstream) — as a plain client does.

// maxTLSClientPlain bounds the decrypted bytes held for one client connection (process refuses
// or closes long before: heads, inline and streamed bodies, pipelined bytes are all capped below
// this).
const maxTLSClientPlain = 64 << 20

// tlsStreamKeep is the decrypt buffer a TLS client keeps while its body streams in the loop: what
// one OnTraffic decrypts — a read of gnet's buffer (readBufferCap) and the rest of a record cut
// by the previous read — so that it is not made again for each read. Dropped when the request ends.
const tlsStreamKeep = 2 * (64 << 10)

// serverTLS is the TLS state of one loop-served TLS client connection.
type serverTLS struct {
	*loopTLS
	gc       tlsGConn
	rd       readyTLS // the tls.Conn as a detached exchange reads it (tlsready.go)
	enrolled bool     // joined a loop once
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
	err := t.open(raw, 16<<10, maxTLSClientPlain, errTLSClientTooMuch)
	_, _ = c.Discard(len(raw))
	if out := t.mc.out; len(out) > 0 {
		_, _ = c.Write(out) // crypto/tls's own answer (a key update)
		t.mc.out = out[:0]
	}
	eof := errors.Is(err, io.EOF)
	if err != nil && (!eof || len(t.plain) == 0 && !st.inFlight()) {
		return gnet.Close // a bad record, or close_notify with nothing left to serve or answer
	}
	// After close_notify the answer of a request in flight is still written: the client's FIN then
	// comes to OnClose, which keeps a dup of the socket for it (finishInLoop, halfClosedAnswer).
	action := e.process(&t.gc, st)
	if !eof || action != gnet.None {
		return action
	}
	// close_notify: no byte follows what was decrypted. What waits for more is ended as a plain
	// client's FIN ends it (OnClose), except that a TLS client can still read its answer.
	switch st.phase.Load() {
	case phaseStream:
		if !st.bodyAwaitsDial(&t.gc) {
			// In the middle of a streamed body: the upstream request is reset, the client told 400.
			e.abortStream(&t.gc, st, errIncompleteBody, false, true)
		}
	case phaseBody:
		// In the middle of a body buffered whole: the client is told 400 (OnClose answers nothing more).
		return e.refuseUnfinishedBody(&t.gc, st, errIncompleteBody)
	case phaseHead:
		return gnet.Close // in the middle of a head (or between requests): nothing to answer
	}
	return action
}

// inFlight reports whether a request is being exchanged, streamed or decided for the connection.
func (st *connState) inFlight() bool {
	p := st.phase.Load()
	return p == phaseBusy || p == phaseAwait || p == phaseStream
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
// tls.Conn the exchange reads and answers through; body is what is still to come of the body (≤ 0:
// not known).
func (st *connState) tlsDetached(sock net.Conn, ra *readAheads, body int64) net.Conn {
	st.tls.mc.sock = sock // gc.Conn is left to the loop: OnClose of the old connection reads it
	st.tls.mc.startReadAhead(ra, body)
	st.tls.rd.point(st.tls.tc, sock, &st.tls.mc.ra)
	return &st.tls.rd
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
// goroutine, then the connection joins the loop gnet's balancer gives it (Engine.Register).
// Without event loops (no plain listener: gnet runs none without one) the connections are served
// by the goroutine driver, as by Serve. Shutdown closes l.
func (e *Engine) ServeTLS(l net.Listener, cfg *tls.Config, handshakeTimeout time.Duration) error {
	return e.acceptLoop(l, func(c net.Conn) { e.serveTLSConn(c, cfg, handshakeTimeout) })
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
		e.arriving.Add(-1)
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
	now := time.Now()
	_ = c.SetDeadline(now.Add(timeout))
	hs := &handshake{c: c, firstBy: now.Add(min(timeout, e.firstRequestGrace()))}
	e.handshakes.add(hs)
	if e.draining.Load() {
		hs.shorten()
	}
	err := t.tc.Handshake() // one that ends while draining is still served (drain.go)
	e.handshakes.remove(hs)
	if err != nil {
		fail(st)
		return
	}
	_ = c.SetDeadline(time.Time{})
	raw := socketOf(c)
	if raw == nil || !e.loopsRunning() {
		// No loop to join (no plain listener) or not a TCP socket: the goroutine driver serves it.
		e.releaseConn(st)
		e.metrics.connsOpen.Dec()
		e.serveConn(t.tc) // counts it as arrived
		return
	}
	st.tls = t
	st.returning = true
	st.fresh.Store(true) // its first request: OnOpen keeps the flag (drain.go)
	t.mc.sock = nil      // from here on the loop owns the socket and feeds crypto/tls from memory
	// gnet's balancer picks the loop, as for an accepted connection (SourceAddrHash: see Run).
	ctx := gnet.NewNetConnContext(gnet.NewContext(context.Background(), st), raw)
	ch, err := e.gnetEngine.Register(ctx)
	if err != nil {
		fail(st)
		return
	}
	res := <-ch // OnOpen has run: the loop's registry holds it
	e.arriving.Add(-1)
	if res.Err != nil {
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

// loopsRunning waits until gnet's event loops run and reports whether they do: false without a
// plain listener (no gnet engine) or once the engine stopped without starting them.
func (e *Engine) loopsRunning() bool {
	if e.opts.NoPlainListener {
		return false
	}
	select {
	case <-e.loopsUp:
		return true
	case <-e.gnetDone:
		return false
	}
}
