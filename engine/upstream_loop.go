package engine

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/httpparse"
)

// In-loop upstream connections: a request whose whole body arrived with its head is sent upstream
// on a connection owned by the client's own event loop, and the answer is relayed inside that
// loop's callbacks — no goroutine hop, no detach: two reads and two writes per request (see
// ../shared/DESIGN.md, "Small requests inside the loop"). New connections are dialled in a goroutine
// (with the pool's dial timeout) and handed to the loop with Enroll.

// loopState is per event loop: the idle upstream connections it owns, per endpoint pool.
type loopState struct {
	idle map[*upstreamPool][]*loopUp
	pipe *loopPipe // splices streamed bodies (inline_splice_linux.go); nil: copy them
	iov  [][]byte  // pump's writev of a head and body bytes
}

// loopUp is one upstream connection registered on an event loop. Fields are touched on its loop
// only, except the atomics, which the sweeper reads.
type loopUp struct {
	pool   *upstreamPool
	ls     *loopState
	el     gnet.EventLoop
	c      gnet.Conn // nil until OnOpen
	parser httpparse.Parser
	resp   httpparse.Response
	chunks httpparse.ChunkScanner
	scan   int  // bytes of the chunked body already scanned (from resp.HeadLen)
	head   bool // the response head is parsed
	j      *job // request in flight; nil when idle
	reused bool // j was sent on a connection that had served a request before
	got    bool // bytes of j's answer arrived
	inIdle bool // in ls.idle[pool] (holding one of the pool's idle places)
	closed bool
	tls    *loopTLS // https endpoints: crypto/tls driven from the loop (looptls.go); nil for http
	// headPending: a streamed request's head waits to go out with its first body bytes (pump).
	headPending bool

	busySince atomic.Int64 // unix nanos j was sent; 0 when idle
	idleSince atomic.Int64 // unix nanos it went idle
	timedOut  atomic.Bool  // the sweeper closed it for want of an answer
}

func (e *Engine) loopOf(el gnet.EventLoop) *loopState {
	e.loopsMu.Lock()
	defer e.loopsMu.Unlock()
	ls := e.loops[el]
	if ls == nil {
		ls = &loopState{idle: map[*upstreamPool][]*loopUp{}}
		if !e.opts.Transfer.ForceCopy {
			ls.pipe = newLoopPipe()
		}
		e.loops[el] = ls
	}
	return ls
}

// sendInLoop sends j upstream on a loop-owned connection. It returns false when the request must take
// the goroutine path instead (the endpoint's connection limit is reached). On the loop only.
func (e *Engine) sendInLoop(c gnet.Conn, j *job) bool { return e.sendLoop(c, j, false, false) }

// sendLoop is sendInLoop for a caller that may already hold one of the endpoint's connection slots
// (slot): it is used for a new connection, or given back. A streamed request (j.streaming) sends
// its head only (or none yet with deferHead: pump sends it with the first body bytes, in one
// writev) and becomes its client's st.up: the body follows from pump (or OnOpen).
func (e *Engine) sendLoop(c gnet.Conn, j *job, slot, deferHead bool) bool {
	j.traceUpstream(upstreamNames[j.op], j.out)
	ls := j.st.loop
	if ls == nil { // first request of the connection: look its loop up once (a connection keeps its loop)
		ls = e.loopOf(c.EventLoop())
		j.st.loop = ls
	}
	p := j.bucket.pool
	idle := ls.idle[p]
	for len(idle) > 0 {
		u := idle[len(idle)-1]
		idle[len(idle)-1] = nil
		idle = idle[:len(idle)-1]
		ls.idle[p] = idle
		u.inIdle = false
		p.leaveIdle()
		if u.closed {
			continue
		}
		if slot {
			p.releaseSlot()
		}
		u.start(j, true, e.now())
		if p.log != nil {
			p.logConn("reuse", "loop", u.c, nil)
		}
		out := j.out
		if j.streaming {
			j.st.up = u
			if deferHead {
				u.headPending = true
				return true
			}
			out = j.out[:j.headLen]
		}
		// A failed write closes u inside this call; OnClose then retries or answers j.
		u.send(u.c, out)
		return true
	}
	if !slot && !p.tryAcquireSlot() {
		return false
	}
	u := &loopUp{pool: p, ls: ls, el: c.EventLoop()}
	u.start(j, false, e.now())
	if j.streaming {
		j.st.up = u
	}
	go e.dialForLoop(u)
	return true
}

func (u *loopUp) start(j *job, reused bool, now int64) {
	u.j, u.reused, u.got, u.headPending = j, reused, false, false
	u.head, u.scan = false, 0
	u.parser.Reset()
	u.chunks.Reset()
	u.busySince.Store(now)
}

// dialForLoop dials u's endpoint (and does the TLS handshake of an https one) and enrolls the
// connection on u's loop (OnOpen then sends u.j).
func (e *Engine) dialForLoop(u *loopUp) {
	p := u.pool
	p.m.upstreamDials.Inc()
	d := net.Dialer{Timeout: p.dialTimeout, KeepAlive: 30 * time.Second}
	conn, err := d.Dial("tcp", p.ep.addr)
	if err == nil && p.tlsConf != nil {
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		if u.tls, err = p.handshakeForLoop(conn); err != nil {
			_ = conn.Close()
		}
	}
	if err == nil {
		// Enroll dups the socket into the loop and closes conn; OnOpen then sends u.j.
		if ch, err := u.el.Enroll(gnet.NewContext(context.Background(), u), conn); err != nil {
			_ = conn.Close()
		} else if res := <-ch; res.Err == nil {
			return
		}
	}
	if p.log != nil {
		p.logConn("dial failed", "loop", nil, nil)
	}
	p.m.upstreamDialErrors.Inc()
	p.releaseSlot()
	_ = u.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if j := u.j; j != nil {
			u.j = nil
			e.metrics.upstreamErrors.Inc()
			e.finishInLoop(j, e.errorResponse(j, errServiceUnavailable, true), true)
		}
		return nil
	}))
}

// onUpstreamOpen runs when a dialled upstream connection joins its loop: it sends the request.
func (e *Engine) onUpstreamOpen(c gnet.Conn, u *loopUp) ([]byte, gnet.Action) {
	u.c = c
	u.pool.open.Add(1)
	u.pool.m.upstreamOpen.Inc()
	if u.pool.log != nil {
		u.pool.logConn("dial", "loop", c, nil)
	}
	e.upConns.add(u)
	if u.j == nil {
		return nil, gnet.Close
	}
	if j := u.j; j.streaming && !e.takeBody(j, u) {
		return nil, gnet.Close // aborted: u was reset
	}
	if u.tls != nil { // never streaming: inline_stream.go keeps https endpoints off that path
		ct, err := u.tls.seal(u.j.out)
		if err != nil {
			return nil, gnet.Close // OnClose answers 502
		}
		return ct, gnet.None
	}
	return u.j.out, gnet.None
}

// onUpstreamTraffic parses the upstream's answer from the loop's buffer and, once it is complete,
// relays it to the client and puts the connection back to idle.
func (e *Engine) onUpstreamTraffic(c gnet.Conn, u *loopUp) gnet.Action {
	raw := c.InboundBuffered()
	buf, ok, ended := u.answer(c)
	if !ok || u.closed {
		return gnet.Close // OnClose answers 502
	}
	j := u.j
	if j == nil {
		if u.tls != nil && len(buf) == 0 && !ended {
			return gnet.None // TLS records with no data (session tickets) on an idle connection
		}
		return gnet.Close // bytes nobody asked for, or the upstream's close_notify
	}
	if len(buf) > 0 || raw > 0 && !ended {
		u.got = true // a close_notify alone is no answer: the request may still be retried
	}
	// An answer is relayed once complete, even when the upstream's close_notify came with it; one
	// that the close_notify cuts short is not (waitMore: OnClose answers 502).
	waitMore := gnet.None
	if ended {
		waitMore = gnet.Close
	}
	for !u.head {
		err := u.parser.ParseResponse(buf, e.limits, &u.resp)
		if err == httpparse.ErrNeedMore {
			return waitMore
		}
		if err != nil {
			return gnet.Close // OnClose answers 502
		}
		if u.resp.Status >= 100 && u.resp.Status < 200 {
			buf = u.discard(c, buf, u.resp.HeadLen)
			u.parser.Reset()
			continue
		}
		u.head = true
	}
	h := &u.resp
	var total int
	switch {
	case h.Status == 204 || h.Status == 304:
		total = h.HeadLen
	case h.Chunked:
		n, done, err := u.chunks.Scan(buf[h.HeadLen+u.scan:])
		if err != nil {
			return gnet.Close
		}
		u.scan += n
		if !done {
			return waitMore
		}
		total = h.HeadLen + u.scan
	case h.ContentLength >= 0:
		if h.ContentLength > maxResponseBytes {
			return gnet.Close
		}
		total = h.HeadLen + int(h.ContentLength)
		if len(buf) < total {
			return waitMore
		}
	default:
		return gnet.Close // a body delimited by close is not relayed from the loop
	}
	// An answer before the whole body went up (412, 403, 400 …): relay it, reset this connection
	// (its request is unfinished), drain the rest of the body and close the client (finishInLoop).
	early := j.streaming && j.streamLeft > 0
	if early {
		_ = c.SetLinger(0)
	}
	keep := !early && !ended && h.KeepAlive && len(buf) == total && !e.draining.Load() && u.pool.enterIdle()
	closeClient := early || !j.keepAlive || e.draining.Load() || j.st != nil && j.st.overflow
	status := e.relay(j, buf, h, total, closeClient)
	u.discard(c, buf, total)
	u.j = nil
	u.busySince.Store(0)
	action := gnet.None
	if keep {
		u.idleSince.Store(e.now())
		u.ls.idle[u.pool] = append(u.ls.idle[u.pool], u)
		u.inIdle = true
	} else {
		action = gnet.Close
	}
	e.finishInLoop(j, status, closeClient)
	return action
}

// onUpstreamClose forgets the connection; a request still waiting on it is retried once (when the
// connection was reused and no answer byte came: it may have died while idle) or answered 502/504.
func (e *Engine) onUpstreamClose(u *loopUp) {
	if u.closed {
		return
	}
	u.closed = true
	if u.pool.log != nil && u.c != nil {
		u.pool.logConn("close", "loop", u.c, nil)
	}
	u.dropIdle()
	e.upConns.remove(u)
	if u.c != nil {
		u.pool.open.Add(-1)
		u.pool.m.upstreamOpen.Dec()
	}
	u.pool.releaseSlot()
	j := u.j
	if j == nil {
		return
	}
	u.j = nil
	if j.streaming && j.streamLeft > 0 && u.c != nil {
		// Closed mid-body (engine stopping, response timeout, the upstream gone): gnet closes the
		// socket after this; a reset, never a clean end of a truncated body.
		_ = u.c.SetLinger(0)
	}
	if j.streaming && j.st != nil && j.st.up == u {
		j.st.up = nil
	}
	// A streamed body cannot be replayed once bytes of it went out (they are discarded).
	if u.reused && !u.got && !j.retried && j.streamed == 0 {
		j.retried = true
		if j.st != nil && !j.st.closed && e.sendInLoop(j.c, j) {
			return
		}
		if j.st != nil && !j.st.closed && !j.streaming {
			j.st.loopJob = false
			j.side = sideAsync
			go e.runInline(j)
			return
		}
	}
	e.metrics.upstreamErrors.Inc()
	se := errBadGateway
	if u.timedOut.Load() {
		se = errUpstreamTimeout
	}
	e.finishInLoop(j, e.errorResponse(j, se, true), true)
}

// finishInLoop finishes an in-loop request with the answer in j.resp.
// A streamed request whose body is not all read yet closes its client after draining the rest.
func (e *Engine) finishInLoop(j *job, status int, closeClient bool) {
	body := int64(len(j.out) - j.headLen)
	if j.streaming {
		body = j.streamed
		if st := j.st; st != nil {
			st.up = nil
			if j.streamLeft > 0 {
				closeClient = true
				if !st.closed {
					st.drainAfter = j.streamLeft
				}
			}
		}
	}
	if st := j.st; st != nil && st.halfFD > 0 {
		// The client half-closed after its request (OnClose kept a dup): answer, then close.
		fd := st.halfFD - 1
		st.halfFD = 0
		writeHalfClosed(fd, st.halfClosedAnswer(j.resp)) // sealed for a TLS client
	}
	e.finish(j, outcome{status: status, bodyBytes: body, mode: "inline", closeClient: closeClient})
}

// dropIdle takes u out of its loop's idle list (if it is there) and gives its idle place back. On
// u's loop only.
func (u *loopUp) dropIdle() {
	if !u.inIdle {
		return
	}
	u.inIdle = false
	idle := u.ls.idle[u.pool]
	for i, v := range idle {
		if v == u {
			copy(idle[i:], idle[i+1:])
			idle[len(idle)-1] = nil
			u.ls.idle[u.pool] = idle[:len(idle)-1]
			break
		}
	}
	u.pool.leaveIdle()
}

// sweepUpstreams closes loop-owned upstream connections that waited too long for an answer or sat
// idle too long, and sweeps the goroutine pools' idle connections. A busy connection is closed
// directly (asynchronous; OnClose answers its request on the loop). An idle one is closed from its
// own loop, which checks again that it is still idle and takes it out of the idle list first, so a
// request can never be sent on a connection the sweep is closing.
func (e *Engine) sweepUpstreams(now int64) {
	var victims []gnet.Conn
	var idle []*loopUp
	timeout := int64(e.opts.Upstream.IdleTimeout)
	e.upConns.mu.Lock()
	for u := range e.upConns.m {
		if t := u.busySince.Load(); t != 0 && now-t > int64(e.opts.ResponseTimeout) {
			u.timedOut.Store(true)
			victims = append(victims, u.c)
		} else if t == 0 && now-u.idleSince.Load() > timeout {
			idle = append(idle, u)
		}
	}
	e.upConns.mu.Unlock()
	for _, c := range victims {
		if c != nil {
			_ = c.Close()
		}
	}
	for _, u := range idle {
		_ = u.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			if u.inIdle && !u.closed && e.now()-u.idleSince.Load() > timeout {
				u.dropIdle()
				_ = u.c.Close()
			}
			return nil
		}))
	}
	e.poolsMu.Lock()
	pools := make([]*upstreamPool, 0, len(e.pools))
	for _, p := range e.pools {
		pools = append(pools, p)
	}
	e.poolsMu.Unlock()
	wall := time.Now() // the pools' own clock
	for _, p := range pools {
		p.sweepIdle(wall)
	}
	if e.draining.Load() {
		e.stopAborts() // background aborts: one last attempt now (see abort.go)
	}
}
