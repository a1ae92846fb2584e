//go:build !race

package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/httpparse"
)

// The in-loop path of a small request allocates nothing once its pools, buffers, metrics series
// and the SigV4 key cache are warm. TestAllocInlinePut runs the loop's steps one by one, without
// gnet; TestAllocInlineLoop runs the loop's own code (process, onUpstreamTraffic) over fake
// connections.

// upstreamOK is an upstream's answer to a PutObject, as versitygw sends it.
const upstreamOK = "HTTP/1.1 200 OK\r\n" +
	"Date: Sun, 01 Jun 2025 12:00:00 GMT\r\n" +
	"ETag: \"5eb63bbbe01eeed093cb22bb8f5acdc3\"\r\n" +
	"Server: VERSITYGW\r\n" +
	"X-Amz-Request-Id: 0123456789ABCDEF0123\r\n" +
	"X-Amz-Checksum-Crc32: DUoRhQ==\r\n" +
	"Content-Length: 0\r\n" +
	"\r\n"

// inlinePut is one small signed PutObject going through the loop's steps.
type inlinePut struct {
	e    *Engine
	buf  []byte // what the loop buffered: head and whole body
	up   []byte // the upstream's answer
	st   *connState
	rp   httpparse.Parser
	resp httpparse.Response
}

// smallPut returns the wire bytes (head and body) of a signed PutObject of bodyLen bytes, with the
// headers aws-sdk-go-v2 sends.
func smallPut(tb testing.TB, bodyLen int) []byte {
	tb.Helper()
	body := make([]byte, bodyLen)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	sum := sha256.Sum256(body)
	r := admitReq{method: "PUT", path: "/sig/photos/2025/cat.jpg", query: "x-id=PutObject", cl: n64(int64(bodyLen)),
		payload: hex.EncodeToString(sum[:]),
		hdr: []string{"User-Agent: aws-sdk-go-v2/1.36.3 os/linux lang/go#1.26 md/GOOS#linux api/s3#1.79.2",
			"Content-Type: image/jpeg", "X-Amz-Meta-Owner: tests", "Amz-Sdk-Invocation-Id: 6a1d2f9e-7b0c-4d8e-9f1a-2b3c4d5e6f70",
			"Amz-Sdk-Request: attempt=1; max=3", "Accept-Encoding: identity"}}
	return append(r.wire(tb), body...)
}

func newInlinePut(tb testing.TB, bodyLen int) *inlinePut {
	tb.Helper()
	e := newAdmitEngine(tb)
	p := &inlinePut{e: e, buf: smallPut(tb, bodyLen), up: []byte(upstreamOK), st: &connState{remote: "192.0.2.1:40000"}}
	p.st.idleSince.Store(e.now())
	return p
}

// run is one request: what process, onHead, act, dispatchInline, onUpstreamTraffic, finish and
// next do for it on the loop, minus the socket writes.
func (p *inlinePut) run(tb testing.TB) {
	e, st, buf := p.e, p.st, p.buf
	// process: a head from the buffer.
	if st.req == nil {
		st.req = requestPool.Get().(*httpparse.Request)
	}
	st.headSince.Store(e.now())
	st.idleSince.Store(0)
	if err := st.parser.Parse(buf, e.limits, st.req); err != nil {
		tb.Fatalf("parse: %v", err)
	}
	req := st.req
	// onHead: admit.
	e.newRequestID(&st.reqID)
	st.gen.Add(1)
	st.headSince.Store(0)
	st.isHead = string(req.Method.Bytes(buf)) == "HEAD"
	st.keepAlive = req.KeepAlive
	st.expect100 = req.Expect100
	// As onHead builds it (conn.go): the Head lives in the connection state (a local one would
	// escape through the Authenticator interface call). Keep this in step with onHead.
	st.head = Head{req: req, buf: buf}
	d := e.admit(&st.head)
	st.head.buf = nil
	if d.verdict != verdictInline {
		tb.Fatalf("admit = %v, %s; want inline", d.verdict, errString(d.err))
	}
	// act: the body is buffered already.
	st.rt, st.bodyLen, st.principal = d.rt, d.bodyLen, d.principal
	st.toBody(e.now())
	if len(buf) != req.HeadLen+int(st.bodyLen) {
		tb.Fatalf("buffered %d; want head %d + body %d", len(buf), req.HeadLen, st.bodyLen)
	}
	// dispatchInline: the upstream request.
	j := e.newJob(st, req.Path.Bytes(buf), sideLoop)
	if err := e.buildUpstreamHead(j, st, j.bucket, buf); err != nil {
		tb.Fatalf("buildUpstreamHead: %v", err)
	}
	j.out = append(j.out, buf[req.HeadLen:req.HeadLen+int(st.bodyLen)]...)
	st.toBusy()
	// onUpstreamTraffic: the answer.
	p.rp.Reset()
	if err := p.rp.ParseResponse(p.up, e.limits, &p.resp); err != nil {
		tb.Fatalf("parse response: %v", err)
	}
	total := p.resp.HeadLen + int(p.resp.ContentLength)
	status := e.relay(j, p.up, &p.resp, total, !j.keepAlive)
	// finish and next.
	e.record(&j.reqMeta, outcome{status: status, bodyBytes: int64(len(j.out) - j.headLen), mode: "inline"}, int64(len(j.resp)))
	if status != 200 || len(j.resp) == 0 {
		tb.Fatalf("relayed %d, %q", status, j.resp)
	}
	j.release()
	st.toHead(e.now())
}

func TestAllocInlinePut(t *testing.T) {
	p := newInlinePut(t, 1024)
	for range 3 {
		p.run(t)
	}
	if n := testing.AllocsPerRun(100, func() { p.run(t) }); n != 0 {
		t.Errorf("small signed PutObject in the loop: %v allocs per request; want 0", n)
	}
}

func BenchmarkInlinePut(b *testing.B) {
	p := newInlinePut(b, 1024)
	p.run(b)
	b.SetBytes(int64(len(p.buf)))
	b.ReportAllocs()
	for b.Loop() {
		p.run(b)
	}
}

// TestAllocAdmit checks that admit allocates nothing for the requests it accepts (warm key
// cache) and for the ones it refuses before authentication or with a known key.
func TestAllocAdmit(t *testing.T) {
	e := newAdmitEngine(t)
	for _, tt := range admitTests {
		switch {
		case tt.want.err == nil, !tt.want.authErr, tt.want.err == errSignatureDoesNotMatch:
		default:
			continue
		}
		wire := tt.req.wire(t)
		h := Head{req: parseHead(t, e, wire), buf: wire}
		_ = e.admit(&h)
		if n := testing.AllocsPerRun(100, func() { _ = e.admit(&h) }); n != 0 {
			t.Errorf("%s: admit allocs = %v; want 0", tt.name, n)
		}
	}
}

// fakeConn is the part of a gnet.Conn the loop's request path uses, over fixed inbound bytes.
// Any other method panics (nil embedded interface): a call the test did not expect.
type fakeConn struct {
	gnet.Conn
	in  []byte
	off int
	out []byte // what was written
}

func (c *fakeConn) reset() { c.off, c.out = 0, c.out[:0] }

func (c *fakeConn) Peek(n int) ([]byte, error) {
	b := c.in[c.off:]
	if n >= 0 && n < len(b) {
		b = b[:n]
	}
	return b, nil
}

func (c *fakeConn) Discard(n int) (int, error) {
	if n < 0 || n > len(c.in)-c.off {
		n = len(c.in) - c.off
	}
	c.off += n
	return n, nil
}

func (c *fakeConn) InboundBuffered() int { return len(c.in) - c.off }

func (c *fakeConn) Write(b []byte) (int, error) {
	c.out = append(c.out, b...)
	return len(b), nil
}

// loopPut drives the engine's own loop code for one small PutObject: process (head, admit, act,
// dispatchInline, sendInLoop on an idle loop-owned upstream connection), then onUpstreamTraffic
// (relay, finish, next) — everything OnTraffic runs, over fake connections.
type loopPut struct {
	e      *Engine
	client *fakeConn
	upc    *fakeConn
	st     *connState
	u      *loopUp
}

func newLoopPut(tb testing.TB, bodyLen int) *loopPut {
	tb.Helper()
	return newLoopRequest(tb, newAdmitEngine(tb), smallPut(tb, bodyLen))
}

// newLoopRequest is newLoopPut for a request of one's own to bucket "sig" of e.
func newLoopRequest(tb testing.TB, e *Engine, wire []byte) *loopPut {
	tb.Helper()
	client := &fakeConn{in: wire}
	upc := &fakeConn{in: []byte(upstreamOK)}
	pool := e.lookupBucket([]byte("sig")).pool
	ls := &loopState{idle: map[*upstreamPool][]*loopUp{}}
	u := &loopUp{pool: pool, ls: ls, c: upc}
	if !pool.enterIdle() { // counted in the idle gauge, as the engine's own idle connections are
		tb.Fatal("no idle place in the pool")
	}
	ls.idle[pool] = append(make([]*loopUp, 0, 4), u)
	u.inIdle = true
	st := &connState{conn: client, remote: "192.0.2.1:40000", loop: ls}
	st.idleSince.Store(e.now())
	// The process-wide gauges must come back (TestGaugesReturnToIdle and others read them): give
	// back the idle place, and end an exchange the test left where gnet would have gone on.
	tb.Cleanup(func() {
		u.dropIdle()
		if j := u.j; j != nil {
			u.j = nil
			j.release()
		}
	})
	return &loopPut{e: e, client: client, upc: upc, st: st, u: u}
}

func (p *loopPut) run(tb testing.TB) {
	p.client.reset()
	p.upc.reset()
	if a := p.e.process(p.client, p.st); a != gnet.None {
		tb.Fatalf("process = %v; want None (answer %q)", a, p.client.out)
	}
	if p.u.j == nil || p.st.phase.Load() != phaseBusy {
		tb.Fatalf("not sent on the loop's upstream connection: phase %d, answer %q", p.st.phase.Load(), p.client.out)
	}
	if !bytes.HasPrefix(p.upc.out, []byte("PUT /upstream/photos/2025/cat.jpg HTTP/1.1\r\n")) {
		tb.Fatalf("upstream got %q", p.upc.out)
	}
	if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.None {
		tb.Fatalf("onUpstreamTraffic = %v; want None", a)
	}
	if !bytes.HasPrefix(p.client.out, []byte("HTTP/1.1 200 OK\r\n")) || p.st.phase.Load() != phaseHead {
		tb.Fatalf("client got %q, phase %d", p.client.out, p.st.phase.Load())
	}
}

func TestAllocInlineLoop(t *testing.T) {
	p := newLoopPut(t, 1024)
	for range 3 {
		p.run(t)
	}
	if n := testing.AllocsPerRun(100, func() { p.run(t) }); n != 0 {
		t.Errorf("small signed PutObject through process and onUpstreamTraffic: %v allocs per request; want 0", n)
	}
}

func BenchmarkInlineLoop(b *testing.B) {
	p := newLoopPut(b, 1024)
	p.run(b)
	b.SetBytes(int64(len(p.client.in)))
	b.ReportAllocs()
	for b.Loop() {
		p.run(b)
	}
}
