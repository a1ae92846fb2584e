//go:build !race

package engine

// Built without -race, like alloc_test.go whose loopPut it drives.

import (
	"bytes"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// newServerTLSLoopPut is loopPut (alloc_test.go) with the client speaking TLS to a loop-served
// connection (what ServeTLS leaves after the handshake); cl is the client's side.
func newServerTLSLoopPut(tb testing.TB) (p *loopPut, cl *loopTLS, plain []byte) {
	p = newLoopPut(tb, 1024)
	cl, srv := loopTLSPair(tb, p.u.pool.m) // cl: a TLS client; srv: the proxy's TLS server side
	t := &serverTLS{loopTLS: srv}
	t.gc = tlsGConn{Conn: p.client, t: srv}
	p.st.tls = t
	p.st.conn = &t.gc
	return p, cl, append([]byte(nil), p.client.in...)
}

// runServerTLS sends the small PUT sealed by cl (cut into records of at most chunk bytes when
// chunk > 0), relays it upstream in the loop and checks the sealed answer.
func (p *loopPut) runServerTLS(tb testing.TB, cl *loopTLS, plain []byte, chunk int) {
	p.client.reset()
	p.upc.reset()
	p.client.in = p.client.in[:0]
	for rest := plain; len(rest) > 0; {
		n := len(rest)
		if chunk > 0 {
			n = min(n, chunk)
		}
		ct, err := cl.seal(rest[:n])
		if err != nil {
			tb.Fatal(err)
		}
		p.client.in = append(p.client.in, ct...)
		rest = rest[n:]
	}
	if a := p.e.tlsTraffic(p.client, p.st); a != gnet.None {
		tb.Fatalf("tlsTraffic = %v; want None", a)
	}
	if p.u.j == nil || p.st.phase.Load() != phaseBusy {
		tb.Fatalf("not sent on the loop's upstream connection: phase %d", p.st.phase.Load())
	}
	if !bytes.HasPrefix(p.upc.out, []byte("PUT /upstream/photos/2025/cat.jpg HTTP/1.1\r\n")) {
		tb.Fatalf("upstream got %q", p.upc.out)
	}
	if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.None {
		tb.Fatalf("onUpstreamTraffic = %v; want None", a)
	}
	cl.plain = cl.plain[:0]
	if err := cl.open(p.client.out, 4<<10, maxLoopTLSPlain, errTLSAnswerTooLarge); err != nil {
		tb.Fatalf("client decrypting the answer: %v", err)
	}
	if !bytes.HasPrefix(cl.plain, []byte("HTTP/1.1 200 OK\r\n")) || p.st.phase.Load() != phaseHead {
		tb.Fatalf("client got %q, phase %d", cl.plain, p.st.phase.Load())
	}
	if len(p.st.tls.plain) != 0 {
		tb.Fatalf("%d decrypted request bytes left after the answer", len(p.st.tls.plain))
	}
}

// A TLS client's request is decrypted and answered (sealed) in the loop whether its records come
// whole or cut small.
func TestLoopServerTLSRequestInRecords(t *testing.T) {
	p, cl, plain := newServerTLSLoopPut(t)
	for _, chunk := range []int{0, 1, 100, 700, 0} {
		p.runServerTLS(t, cl, plain, chunk)
	}
}

// The loop's TLS client path allocates nothing of its own once warm: crypto/tls allocates one
// small reader each time it reads ciphertext from its transport (readFromUntil's atLeastReader),
// twice per request on each side (the record, then the look for the next one) — 2 in the proxy,
// 2 in the test's client.
func TestAllocInlineLoopServerTLS(t *testing.T) {
	p, cl, plain := newServerTLSLoopPut(t)
	for range 3 {
		p.runServerTLS(t, cl, plain, 0)
	}
	n := testing.AllocsPerRun(100, func() { p.runServerTLS(t, cl, plain, 0) })
	t.Logf("%v allocs per request (proxy and test client)", n)
	if n > 4 {
		t.Errorf("small signed PutObject from a TLS client through the loop: %v allocs per request; want at most 4 (crypto/tls's own)", n)
	}
}

// tlsRecords splits ct into TLS records and returns their content types; ok is false when ct does
// not end on a record boundary.
func tlsRecords(ct []byte) (types []byte, ok bool) {
	for len(ct) > 0 {
		if len(ct) < 5 {
			return types, false
		}
		n := 5 + int(ct[3])<<8 | int(ct[4])
		if len(ct) < n {
			return types, false
		}
		types = append(types, ct[0])
		ct = ct[n:]
	}
	return types, true
}

// A small answer to a TLS client leaves the loop as one record (head and body sealed together),
// so the client gets it in one write and one segment, whichever way the request's records came.
// (issue 11: per-exchange latency; bench/results/2026-12-01-tls-4k-latency.md)
func TestLoopServerTLSAnswerOneRecord(t *testing.T) {
	p, cl, plain := newServerTLSLoopPut(t)
	for _, chunk := range []int{0, 100, 0} {
		p.runServerTLS(t, cl, plain, chunk)
		types, ok := tlsRecords(p.client.out)
		if !ok || len(types) != 1 || types[0] != 23 {
			t.Fatalf("answer sent as records %v (whole: %v); want one application-data record (23)", types, ok)
		}
	}
}
