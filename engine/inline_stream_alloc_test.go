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
// connection), then the answer (onUpstreamTraffic). With cl set (newTLSStreamPut) the client
// speaks TLS: its request arrives sealed and each read goes through tlsTraffic.
type streamPut struct {
	e      *Engine
	client *trickleConn
	upc    *writevConn
	st     *connState
	u      *loopUp
	wire   []byte   // the request the client sends (before TLS)
	cl     *loopTLS // the TLS client's side; nil: a plain client
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
	return &streamPut{e: e, client: client, upc: upc, st: st, u: u, wire: client.in}
}

// newTLSStreamPut is newStreamPut with a TLS client on a loop-served connection (what ServeTLS
// leaves after the handshake).
func newTLSStreamPut(tb testing.TB, bodyLen int) *streamPut {
	p := newStreamPut(tb, bodyLen)
	cl, srv := loopTLSPair(tb, p.u.pool.m)
	t := &serverTLS{loopTLS: srv}
	t.gc = tlsGConn{Conn: p.client, t: srv}
	p.st.tls, p.st.conn, p.cl = t, &t.gc, cl
	p.client.in = nil
	return p
}

// arrive is what the client's socket gets for p.wire: the request itself, or sealed by the TLS
// client in records of at most 16 KiB (as crypto/tls writes them).
func (p *streamPut) arrive(tb testing.TB) {
	if p.cl == nil {
		return
	}
	p.client.in = p.client.in[:0]
	for rest := p.wire; len(rest) > 0; {
		n := min(len(rest), 16<<10)
		ct, err := p.cl.seal(rest[:n])
		if err != nil {
			tb.Fatal(err)
		}
		p.client.in = append(p.client.in, ct...)
		rest = rest[n:]
	}
}

// traffic is OnTraffic for the client's connection.
func (p *streamPut) traffic() gnet.Action {
	if p.cl != nil {
		return p.e.tlsTraffic(p.client, p.st)
	}
	return p.e.process(p.client, p.st)
}

// answer is what the client reads: the answer written, decrypted for a TLS client.
func (p *streamPut) answer(tb testing.TB) []byte {
	if p.cl == nil {
		return p.client.out
	}
	p.cl.plain = p.cl.plain[:0]
	if err := p.cl.open(p.client.out, 4<<10, maxLoopTLSPlain, errTLSAnswerTooLarge); err != nil {
		tb.Fatalf("client decrypting the answer: %v", err)
	}
	return p.cl.plain
}

func (p *streamPut) run(tb testing.TB) {
	p.client.reset()
	p.upc.reset()
	p.arrive(tb)
	p.client.lim = 0
	for p.client.lim < len(p.client.in) {
		p.client.lim = min(p.client.lim+64<<10, len(p.client.in))
		if a := p.traffic(); a != gnet.None {
			tb.Fatalf("OnTraffic = %v; want None (answer %q)", a, p.client.out)
		}
		if p.st.phase.Load() != phaseStream && p.st.phase.Load() != phaseBusy {
			tb.Fatalf("phase %d after %d bytes; want streaming (answer %q)", p.st.phase.Load(), p.client.lim, p.client.out)
		}
		if n := p.st.conn.InboundBuffered(); n != 0 {
			tb.Fatalf("%d bytes left in the client's buffer; want each read streamed on", n)
		}
	}
	if p.u.j == nil || p.st.phase.Load() != phaseBusy {
		tb.Fatalf("not sent on the loop's upstream connection: phase %d, answer %q", p.st.phase.Load(), p.client.out)
	}
	if !bytes.HasPrefix(p.upc.out, []byte("PUT /upstream/photos/2025/cat.jpg HTTP/1.1\r\n")) ||
		!bytes.HasSuffix(p.wire, p.upc.out[bytes.Index(p.upc.out, []byte("\r\n\r\n"))+4:]) {
		tb.Fatalf("upstream got %d bytes, not the head and the body", len(p.upc.out))
	}
	if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.None {
		tb.Fatalf("onUpstreamTraffic = %v; want None", a)
	}
	if answer := p.answer(tb); !bytes.HasPrefix(answer, []byte("HTTP/1.1 200 OK\r\n")) || p.st.phase.Load() != phaseHead {
		tb.Fatalf("client got %q, phase %d", answer, p.st.phase.Load())
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

// A TLS client's streamed body allocates nothing per byte of the loop's own once warm. What
// remains is crypto/tls's — one small reader each time it reads ciphertext from its transport
// (readFromUntil's atLeastReader): about one per record in the proxy, two for the answer in the
// test's client (see TestAllocInlineLoopServerTLS) — and the decrypt buffer grown once per request
// (16 to 128 KiB: four; an idle connection does not keep it).
func TestAllocInlineStreamServerTLS(t *testing.T) {
	p := newTLSStreamPut(t, 1<<20)
	for range 3 {
		p.run(t)
	}
	records := (len(p.wire) + 16<<10 - 1) / (16 << 10)
	n := testing.AllocsPerRun(20, func() { p.run(t) })
	t.Logf("%v allocs per request, %d records", n, records)
	if budget := float64(records + 2 + 4 + 2); n > budget {
		t.Errorf("1 MiB signed PutObject from a TLS client streamed in the loop: %v allocs per request; want at most %v (crypto/tls's own, one per record, and the decrypt buffer's growth)", n, budget)
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
