//go:build !race

package engine

import (
	"bytes"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// trickleConn is a fakeConn whose bytes arrive in steps: only in[:lim] has been read.
type trickleConn struct {
	fakeConn
	lim int
}

func (c *trickleConn) Peek(n int) ([]byte, error) {
	b := c.in[c.off:c.lim]
	if n >= 0 && n < len(b) {
		b = b[:n]
	}
	return b, nil
}

func (c *trickleConn) Discard(n int) (int, error) {
	if n < 0 || n > c.lim-c.off {
		n = c.lim - c.off
	}
	c.off += n
	return n, nil
}

func (c *trickleConn) InboundBuffered() int { return c.lim - c.off }

// writevConn is a fakeConn that takes Writev too (a streamed request's head and first body bytes).
type writevConn struct{ fakeConn }

func (c *writevConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		c.out = append(c.out, b...)
		n += len(b)
	}
	return n, nil
}

// streamPut drives a 1 MiB signed PutObject through the loop's own code as gnet would: the head
// and the body arrive in 64 KiB reads (process streams each to the idle loop-owned upstream
// connection), then the answer (onUpstreamTraffic).
type streamPut struct {
	e      *Engine
	client *trickleConn
	upc    *writevConn
	st     *connState
	u      *loopUp
}

func newStreamPut(tb testing.TB, bodyLen int) *streamPut {
	tb.Helper()
	e := newAdmitEngine(tb)
	e.opts.InlineBodyMax = 1 << 20
	client := &trickleConn{fakeConn: fakeConn{in: smallPut(tb, bodyLen)}}
	upc := &writevConn{fakeConn{in: []byte(upstreamOK), out: make([]byte, 0, 2<<20)}}
	pool := e.lookupBucket([]byte("sig")).pool
	ls := &loopState{idle: map[*upstreamPool][]*loopUp{}}
	u := &loopUp{pool: pool, ls: ls, c: upc}
	ls.idle[pool] = append(make([]*loopUp, 0, 4), u)
	st := &connState{conn: client, remote: "192.0.2.1:40000", loop: ls}
	st.idleSince.Store(e.now())
	return &streamPut{e: e, client: client, upc: upc, st: st, u: u}
}

func (p *streamPut) run(tb testing.TB) {
	p.client.reset()
	p.upc.reset()
	p.client.lim = 0
	for p.client.lim < len(p.client.in) {
		p.client.lim = min(p.client.lim+64<<10, len(p.client.in))
		if a := p.e.process(p.client, p.st); a != gnet.None {
			tb.Fatalf("process = %v; want None (answer %q)", a, p.client.out)
		}
		if p.st.phase.Load() != phaseStream && p.st.phase.Load() != phaseBusy {
			tb.Fatalf("phase %d after %d bytes; want streaming (answer %q)", p.st.phase.Load(), p.client.lim, p.client.out)
		}
		if p.client.InboundBuffered() != 0 {
			tb.Fatalf("%d bytes left in the client's buffer; want each read streamed on", p.client.InboundBuffered())
		}
	}
	if p.u.j == nil || p.st.phase.Load() != phaseBusy {
		tb.Fatalf("not sent on the loop's upstream connection: phase %d, answer %q", p.st.phase.Load(), p.client.out)
	}
	if !bytes.HasPrefix(p.upc.out, []byte("PUT /upstream/photos/2025/cat.jpg HTTP/1.1\r\n")) ||
		!bytes.HasSuffix(p.client.in, p.upc.out[bytes.Index(p.upc.out, []byte("\r\n\r\n"))+4:]) {
		tb.Fatalf("upstream got %d bytes, not the head and the body", len(p.upc.out))
	}
	if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.None {
		tb.Fatalf("onUpstreamTraffic = %v; want None", a)
	}
	if !bytes.HasPrefix(p.client.out, []byte("HTTP/1.1 200 OK\r\n")) || p.st.phase.Load() != phaseHead {
		tb.Fatalf("client got %q, phase %d", p.client.out, p.st.phase.Load())
	}
}

func TestAllocInlineStream(t *testing.T) {
	p := newStreamPut(t, 1<<20)
	for range 3 {
		p.run(t)
	}
	if n := testing.AllocsPerRun(20, func() { p.run(t) }); n != 0 {
		t.Errorf("1 MiB signed PutObject streamed in the loop: %v allocs per request; want 0", n)
	}
}

func BenchmarkInlineStream(b *testing.B) {
	p := newStreamPut(b, 1<<20)
	p.run(b)
	b.SetBytes(int64(len(p.client.in)))
	b.ReportAllocs()
	for b.Loop() {
		p.run(b)
	}
}
