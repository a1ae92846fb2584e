//go:build !race

package engine

// Built without -race, like alloc_test.go whose loopPut it drives.

import (
	"bytes"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/internal/testca"
)

// loopTLSPair makes a handshaken loop TLS client (what dialForLoop leaves on a loopUp) and an
// in-memory TLS server to talk to it, both driven through loopTLS.
func loopTLSPair(tb testing.TB, m *engineMetrics) (client, server *loopTLS) {
	tb.Helper()
	ca, err := testca.New(testca.Spec{CommonName: "upstream.test", DNSNames: []string{"upstream.test"}, Validity: time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	roots := ca.Pool()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close(); b.Close() })
	p := &upstreamPool{tlsConf: &tls.Config{ServerName: "upstream.test", RootCAs: roots, MinVersion: tls.VersionTLS13,
		ClientSessionCache: tls.NewLRUClientSessionCache(4)},
		dialTimeout: 5 * time.Second, m: m}
	server = &loopTLS{}
	server.mc = loopTLSConn{sock: b}
	server.tc = tls.Server(&server.mc, &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate()}})
	done := make(chan error, 1)
	go func() { done <- server.tc.Handshake() }()
	client, err = p.handshakeForLoop(a)
	if err != nil {
		tb.Fatal(err)
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	server.mc.sock = nil
	return client, server
}

// exchangeTLS is the upstream's side of one request on the fake connection: it decrypts what the
// loop sent, checks it is the request, and puts the encrypted answer in upc's inbound bytes (in
// records of at most chunk bytes, when chunk > 0, to cut the answer across records).
func exchangeTLS(tb testing.TB, upc *fakeConn, srv *loopTLS, answer []byte, chunk int) {
	tb.Helper()
	srv.plain = srv.plain[:0]
	if err := srv.open(upc.out, 4<<10, maxLoopTLSPlain, errTLSAnswerTooLarge); err != nil {
		tb.Fatalf("upstream decrypting the request: %v", err)
	}
	if !bytes.HasPrefix(srv.plain, []byte("PUT /upstream/photos/2025/cat.jpg HTTP/1.1\r\n")) {
		tb.Fatalf("upstream got %q", srv.plain)
	}
	upc.in, upc.off = upc.in[:0], 0
	for len(answer) > 0 {
		n := len(answer)
		if chunk > 0 {
			n = min(n, chunk)
		}
		ct, err := srv.seal(answer[:n])
		if err != nil {
			tb.Fatal(err)
		}
		upc.in = append(upc.in, ct...)
		answer = answer[n:]
	}
	upc.out = upc.out[:0]
}

var upstreamOKBytes = []byte(upstreamOK)

// newTLSLoopPut is loopPut (alloc_test.go) on a loop-owned https upstream connection.
func newTLSLoopPut(tb testing.TB) (*loopPut, *loopTLS) {
	p := newLoopPut(tb, 1024)
	cl, srv := loopTLSPair(tb, p.u.pool.m)
	p.u.tls = cl
	p.upc.in = make([]byte, 0, 4096)
	return p, srv
}

func (p *loopPut) runTLS(tb testing.TB, srv *loopTLS, split int) {
	p.client.reset()
	p.upc.reset()
	if a := p.e.process(p.client, p.st); a != gnet.None {
		tb.Fatalf("process = %v; want None (answer %q)", a, p.client.out)
	}
	if p.u.j == nil || p.st.phase.Load() != phaseBusy {
		tb.Fatalf("not sent on the loop's upstream connection: phase %d, answer %q", p.st.phase.Load(), p.client.out)
	}
	exchangeTLS(tb, p.upc, srv, upstreamOKBytes, 0)
	full := p.upc.in
	if split > 0 { // the answer's ciphertext arrives in two reads, cut inside a record
		p.upc.in = full[:split]
		if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.None || len(p.client.out) != 0 {
			tb.Fatalf("a partial record: onUpstreamTraffic = %v, client got %q; want None and nothing", a, p.client.out)
		}
		p.upc.in, p.upc.off = full[split:], 0
	}
	if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.None {
		tb.Fatalf("onUpstreamTraffic = %v; want None", a)
	}
	if !bytes.HasPrefix(p.client.out, []byte("HTTP/1.1 200 OK\r\n")) || p.st.phase.Load() != phaseHead {
		tb.Fatalf("client got %q, phase %d", p.client.out, p.st.phase.Load())
	}
	if len(p.u.tls.plain) != 0 {
		tb.Fatalf("%d decrypted bytes left after the answer", len(p.u.tls.plain))
	}
}

// The loop's TLS path relays the upstream's answer whether its ciphertext comes in one read or is
// cut inside a record, and keeps the connection for the next request.
func TestLoopTLSAnswerAcrossReads(t *testing.T) {
	p, srv := newTLSLoopPut(t)
	for _, split := range []int{0, 1, 5, 20, 60, 0} {
		p.runTLS(t, srv, split)
		p.upc.in = p.upc.in[:0:cap(p.upc.in)]
	}
}

// A close_notify on an idle loop TLS connection closes it. (Session tickets, records without data,
// are read with the first answer; TestHTTPSUpstreamKeepAliveAndResumption shows a later dial
// resuming with a ticket a loop-owned connection received.)
func TestLoopTLSIdleCloseNotify(t *testing.T) {
	p, srv := newTLSLoopPut(t)
	p.runTLS(t, srv, 0)
	srv.mc.out = srv.mc.out[:0]            // the answer's records, sent already
	if err := srv.tc.Close(); err != nil { // close_notify, into srv.mc.out
		t.Fatal(err)
	}
	p.upc.in, p.upc.off = append([]byte(nil), srv.mc.out...), 0
	if _, ok, ended := p.u.answer(p.upc); !ok || !ended {
		t.Fatalf("close_notify read as ok=%v ended=%v; want a clean end of stream", ok, ended)
	}
	p.upc.in, p.upc.off = append(p.upc.in[:0], srv.mc.out...), 0
	if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.Close {
		t.Fatalf("close_notify on an idle connection: %v; want Close", a)
	}
}

// The in-loop path of a small request to an https upstream allocates nothing of its own once warm.
// crypto/tls allocates one small reader each time it reads ciphertext from its transport
// (readFromUntil's atLeastReader, in conn.go), the goroutine path's too: here twice per request on
// each side (the record, then the look for the next one), so 4 per request with the test's server.
func TestAllocInlineLoopTLS(t *testing.T) {
	p, srv := newTLSLoopPut(t)
	for range 3 {
		p.runTLS(t, srv, 0)
	}
	if n := testing.AllocsPerRun(100, func() { p.runTLS(t, srv, 0) }); n > 4 {
		t.Errorf("small signed PutObject to an https upstream through the loop: %v allocs per request; want at most 4 (crypto/tls's own)", n)
	}
}

// sealAnswerAndClose puts on upc's inbound bytes what an upstream that closes after answering
// sends in one write: the answer's records, then its close_notify.
func sealAnswerAndClose(tb testing.TB, p *loopPut, srv *loopTLS, answer []byte) {
	tb.Helper()
	p.client.reset()
	p.upc.reset()
	if a := p.e.process(p.client, p.st); a != gnet.None {
		tb.Fatalf("process = %v; want None (answer %q)", a, p.client.out)
	}
	exchangeTLS(tb, p.upc, srv, answer, 0)
	srv.mc.out = srv.mc.out[:0]            // the answer's records, in upc.in already
	if err := srv.tc.Close(); err != nil { // close_notify, into srv.mc.out
		tb.Fatal(err)
	}
	p.upc.in, p.upc.off = append(p.upc.in, srv.mc.out...), 0
}

// An upstream that closes right after its answer (Connection: close, or an error it answers before
// the body) sends close_notify behind it, often in the same read. The answer is relayed, then the
// connection is closed: the end of the stream is not a failure of an answer already complete.
func TestLoopTLSAnswerThenCloseNotify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
	}{
		{"connection close", strings.Replace(upstreamOK, "Content-Length: 0\r\n", "Connection: close\r\nContent-Length: 0\r\n", 1)},
		{"keep-alive", upstreamOK},
		{"error with body", "HTTP/1.1 412 Precondition Failed\r\nConnection: close\r\nContent-Type: application/xml\r\nContent-Length: 66\r\n\r\n" +
			"<Error><Code>PreconditionFailed</Code><Message>x</Message></Error>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, srv := newTLSLoopPut(t)
			sealAnswerAndClose(t, p, srv, []byte(tc.answer))
			if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.Close {
				t.Fatalf("onUpstreamTraffic = %v; want Close (the upstream ended its stream)", a)
			}
			status := tc.answer[len("HTTP/1.1 "):len("HTTP/1.1 200")]
			if !bytes.HasPrefix(p.client.out, []byte("HTTP/1.1 "+status+" ")) {
				t.Fatalf("client got %q; want the upstream's %s", p.client.out, status)
			}
			if p.u.j != nil || p.u.inIdle {
				t.Fatalf("connection still in use (job %v) or idle (%v) after the upstream closed", p.u.j != nil, p.u.inIdle)
			}
		})
	}
}

// An answer cut short by close_notify is not relayed: the connection closes (OnClose answers 502).
func TestLoopTLSPartialAnswerThenCloseNotify(t *testing.T) {
	p, srv := newTLSLoopPut(t)
	sealAnswerAndClose(t, p, srv, upstreamOKBytes[:len(upstreamOKBytes)-10])
	if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.Close {
		t.Fatalf("onUpstreamTraffic = %v; want Close", a)
	}
	if len(p.client.out) != 0 || p.u.j == nil {
		t.Fatalf("client got %q (job left %v); want nothing yet: OnClose answers 502", p.client.out, p.u.j != nil)
	}
}

// A reused loop TLS connection whose upstream closes it (close_notify) as the request goes out
// sent no byte of an answer: the request may be retried on a new connection (onUpstreamClose),
// as when a plain one is found dead. Records without data (a session ticket) are no answer either.
func TestLoopTLSCloseNotifyBeforeAnswerIsRetryable(t *testing.T) {
	p, srv := newTLSLoopPut(t)
	p.runTLS(t, srv, 0)
	p.client.reset()
	p.upc.reset()
	if a := p.e.process(p.client, p.st); a != gnet.None || p.u.j == nil {
		t.Fatalf("second request not sent on the connection: %v", a)
	}
	srv.mc.out = srv.mc.out[:0]
	if err := srv.tc.Close(); err != nil { // close_notify
		t.Fatal(err)
	}
	p.upc.in, p.upc.off = append(p.upc.in[:0], srv.mc.out...), 0
	if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.Close {
		t.Fatalf("onUpstreamTraffic = %v; want Close", a)
	}
	if p.u.got {
		t.Fatal("a close_notify counted as answer bytes: the request would be answered 502, not retried")
	}
	if len(p.client.out) != 0 {
		t.Fatalf("client got %q", p.client.out)
	}
}
