package engine

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/transfer"
)

// upConn is one keep-alive connection to an upstream endpoint.
type upConn struct {
	c         net.Conn
	pool      *upstreamPool
	idleSince time.Time
	reused    bool   // taken from the idle list (it may have died while idle)
	rbuf      []byte // response bytes: head and body
	closed    bool   // close or reset ran (the slot was given back)
}

// upstreamPool keeps idle keep-alive connections to one endpoint. Safe for concurrent use.
// A connection whose exchange did not complete cleanly is never put back.
//
// Idle connections of an endpoint live in two places: this pool's list (goroutine exchanges) and
// each event loop's list (loop-owned connections, see upstream_loop.go). idleN counts both, and a
// connection enters either list only through enterIdle, so at most maxIdle connections per
// endpoint are idle at any time; one that would exceed it is closed instead of kept. The sweep
// (sweepIdle here, sweepUpstreams for the loops) closes those idle past idleTimeout.
type upstreamPool struct {
	ep          endpoint
	dialTimeout time.Duration
	idleTimeout time.Duration
	maxIdle     int
	tlsConf     *tls.Config
	m           *engineMetrics
	log         *slog.Logger // connection events at debug level (debuglog.go); nil below it

	slots chan struct{} // one per open connection when MaxConns > 0
	open  atomic.Int64
	idleN atomic.Int64 // idle connections in this pool's list and in the loops' lists

	mu   sync.Mutex
	idle []*upConn
}

var errPoolExhausted = errors.New("engine: upstream connection limit reached")

// tlsSessionCacheSize bounds the sessions kept per https endpoint. The cache is keyed by server
// name, so an endpoint uses one entry in practice (each new ticket replaces the previous one).
const tlsSessionCacheSize = 64

func newUpstreamPool(ep endpoint, roots *x509.CertPool, o UpstreamOptions, m *engineMetrics) *upstreamPool {
	p := &upstreamPool{ep: ep, dialTimeout: o.DialTimeout, idleTimeout: o.IdleTimeout, maxIdle: o.MaxIdle, m: m}
	if o.MaxConns > 0 {
		p.slots = make(chan struct{}, o.MaxConns)
	}
	if ep.tls {
		host, _, err := net.SplitHostPort(ep.addr)
		if err != nil {
			host = ep.addr
		}
		// One session cache per endpoint: a connection dialled after an idle one was closed
		// resumes the session (an abbreviated handshake: no certificate chain to send and verify,
		// no signature), counted in mizuchi_upstream_tls_resumed_total.
		p.tlsConf = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12, RootCAs: roots,
			ClientSessionCache: tls.NewLRUClientSessionCache(tlsSessionCacheSize)}
	}
	return p
}

// get returns an idle connection that still looks alive, or dials a new one.
func (p *upstreamPool) get() (*upConn, error) {
	now := time.Now()
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			break
		}
		u := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		p.leaveIdle()
		if now.Sub(u.idleSince) > p.idleTimeout || !connAlive(u.c) {
			u.close()
			continue
		}
		u.reused = true
		if p.log != nil {
			p.logConn("reuse", "goroutine", u.c, nil)
		}
		return u, nil
	}
	return p.dial()
}

func (p *upstreamPool) dial() (*upConn, error) {
	if p.slots != nil {
		t := time.NewTimer(p.dialTimeout)
		select {
		case p.slots <- struct{}{}:
			t.Stop()
		case <-t.C:
			return nil, errPoolExhausted
		}
	}
	p.m.upstreamDials.Inc()
	d := net.Dialer{Timeout: p.dialTimeout, KeepAlive: 30 * time.Second}
	c, err := d.Dial("tcp", p.ep.addr)
	if err != nil {
		if p.log != nil {
			p.logConn("dial failed", "goroutine", nil, err)
		}
		p.m.upstreamDialErrors.Inc()
		p.releaseSlot()
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if p.tlsConf != nil {
		tc := tlsUpstream(c, p.tlsConf) // large writes leave in one system call (upstream_tlsbatch.go)
		_ = tc.SetDeadline(time.Now().Add(p.dialTimeout))
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			p.m.upstreamDialErrors.Inc()
			p.releaseSlot()
			return nil, err
		}
		_ = tc.SetDeadline(time.Time{})
		p.m.upstreamTLSHandshakes.Inc()
		if tc.ConnectionState().DidResume {
			p.m.upstreamTLSResumed.Inc()
		}
		c = tc
	}
	p.open.Add(1)
	p.m.upstreamOpen.Inc()
	if p.log != nil {
		p.logConn("dial", "goroutine", c, nil)
	}
	return &upConn{c: c, pool: p}, nil
}

// tryAcquireSlot takes a connection slot without waiting (always succeeds without a limit).
func (p *upstreamPool) tryAcquireSlot() bool {
	if p.slots == nil {
		return true
	}
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p *upstreamPool) releaseSlot() {
	if p.slots != nil {
		<-p.slots
	}
}

// close closes the connection and gives its slot back.
func (u *upConn) close() {
	if u.pool.log != nil && !u.closed {
		u.pool.logConn("close", "goroutine", u.c, nil)
	}
	_ = u.c.Close()
	u.forget()
}

// reset closes the connection with a TCP RST (see transfer.ResetClose): the upstream sees an error,
// never a clean end of a truncated body.
func (u *upConn) reset() {
	if u.pool.log != nil && !u.closed {
		u.pool.logConn("reset", "goroutine", u.c, nil)
	}
	_ = transfer.ResetClose(u.c)
	u.forget()
}

func (u *upConn) forget() {
	if u.closed {
		return
	}
	u.closed = true
	u.pool.open.Add(-1)
	u.pool.m.upstreamOpen.Dec()
	u.pool.releaseSlot()
}

// put returns a connection whose exchange completed cleanly; the pool closes it when full.
func (p *upstreamPool) put(u *upConn) {
	_ = u.c.SetDeadline(time.Time{})
	u.idleSince = time.Now()
	u.reused = false
	if cap(u.rbuf) > 64<<10 {
		u.rbuf = nil
	}
	if !p.enterIdle() {
		u.close()
		return
	}
	p.mu.Lock()
	p.idle = append(p.idle, u)
	p.mu.Unlock()
}

// enterIdle reserves one of the endpoint's maxIdle idle places for a connection about to become
// idle (in this pool or on a loop), and counts it in the idle gauge. It reports false when all are
// taken: the caller closes the connection. The connection must be counted open already, so the
// idle gauge never exceeds the open gauge.
func (p *upstreamPool) enterIdle() bool {
	for {
		n := p.idleN.Load()
		if n >= int64(p.maxIdle) {
			return false
		}
		if p.idleN.CompareAndSwap(n, n+1) {
			p.m.upstreamIdle.Inc()
			return true
		}
	}
}

// leaveIdle gives back the place of a connection taken out of an idle list. Call it before the
// connection is closed (the idle gauge falls before the open gauge).
func (p *upstreamPool) leaveIdle() {
	p.idleN.Add(-1)
	p.m.upstreamIdle.Dec()
}

// sweepIdle closes the pool's idle connections that sat idle longer than idleTimeout at now or
// whose peer closed them. The liveness check is a non-blocking peek per idle connection (at most
// maxIdle), under the pool's lock.
func (p *upstreamPool) sweepIdle(now time.Time) {
	var victims []*upConn
	p.mu.Lock()
	keep := p.idle[:0]
	for _, u := range p.idle {
		if now.Sub(u.idleSince) > p.idleTimeout || !connAlive(u.c) {
			victims = append(victims, u)
		} else {
			keep = append(keep, u)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, u := range victims {
		p.leaveIdle()
		u.close()
	}
}

// closeIdle closes every idle connection of the pool (engine stop, endpoint dropped on reload).
func (p *upstreamPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, u := range idle {
		p.leaveIdle()
		u.close()
	}
}

// maxResponseBytes bounds an upstream response (ListParts of 10,000 parts fits).
const maxResponseBytes = 16 << 20

var (
	errResponseTooLarge = errors.New("engine: upstream response too large")
	errResponseTrailing = errors.New("engine: upstream sent bytes after its response")
)

// upResponse is a parsed upstream response held in upConn.rbuf.
type upResponse struct {
	head      httpparse.Response
	total     int  // bytes of head + body in rbuf
	keepAlive bool // the upstream connection may be reused
}

// readResponse reads one complete response (skipping 1xx) into u.rbuf. started reports whether any
// response byte arrived (after which a request must never be retried).
func readResponse(u *upConn, lim httpparse.Limits, resp *upResponse) (started bool, err error) {
	var p httpparse.Parser
	if cap(u.rbuf) < 4<<10 {
		// An upload's answer is a few hundred bytes; readMore grows the buffer for longer ones
		// (ListParts). Each transfer in flight holds one of these.
		u.rbuf = make([]byte, 0, 4<<10)
	}
	buf := u.rbuf[:0]
	defer func() { u.rbuf = buf }()
	for {
		// Head.
		for {
			err = p.ParseResponse(buf, lim, &resp.head)
			if err == nil {
				break
			}
			if err != httpparse.ErrNeedMore {
				return len(buf) > 0, err
			}
			if buf, err = readMore(u.c, buf); err != nil {
				return len(buf) > 0, err
			}
		}
		if resp.head.Status >= 100 && resp.head.Status < 200 {
			buf = append(buf[:0], buf[resp.head.HeadLen:]...)
			p.Reset()
			continue
		}
		break
	}
	h := &resp.head
	resp.keepAlive = h.KeepAlive
	switch {
	case h.Status == 204 || h.Status == 304:
		resp.total = h.HeadLen // no body by definition (RFC 9112 6.3)
	case h.Chunked:
		var cs httpparse.ChunkScanner
		pos := h.HeadLen
		for {
			n, done, err := cs.Scan(buf[pos:])
			if err != nil {
				return true, err
			}
			pos += n
			if done {
				break
			}
			if buf, err = readMore(u.c, buf); err != nil {
				return true, err
			}
		}
		resp.total = pos
	case h.ContentLength >= 0:
		if h.ContentLength > maxResponseBytes {
			return true, errResponseTooLarge
		}
		want := h.HeadLen + int(h.ContentLength)
		for len(buf) < want {
			if buf, err = readMore(u.c, buf); err != nil {
				return true, err
			}
		}
		resp.total = want
	default:
		// Body delimited by close.
		resp.keepAlive = false
		for {
			if buf, err = readMore(u.c, buf); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return true, err
			}
		}
		resp.total = len(buf)
	}
	if len(buf) > resp.total {
		resp.keepAlive = false
		return true, errResponseTrailing
	}
	return true, nil
}

func readMore(c net.Conn, buf []byte) ([]byte, error) {
	if len(buf) >= maxResponseBytes {
		return buf, errResponseTooLarge
	}
	if cap(buf)-len(buf) < 4096 {
		nb := make([]byte, len(buf), 2*cap(buf)+4096)
		copy(nb, buf)
		buf = nb
	}
	n, err := c.Read(buf[len(buf):cap(buf)])
	buf = buf[:len(buf)+n]
	if n > 0 && err == io.EOF {
		err = nil
	}
	if n == 0 && err == nil {
		err = io.ErrNoProgress
	}
	return buf, err
}

// poolError maps a failure to get an upstream connection to the client's answer.
func poolError(err error) *s3Error {
	if errors.Is(err, errPoolExhausted) {
		return errSlowDown
	}
	return errServiceUnavailable
}
