package engine_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// drainDrivers starts a proxy and returns its engine and a dial function for each way a client
// reaches it: the event loops (plain), the goroutine driver (plain), TLS on the loops and TLS on
// goroutines. dial returns the TCP connection and a function that makes it usable: for TLS, the
// handshake (the client may send its ClientHello late).
func drainDrivers(t *testing.T, driver string, opts ...proxyOpt) (*proxy, *engine.Engine, func() (net.Conn, func(net.Conn) net.Conn)) {
	t.Helper()
	var eng *engine.Engine
	p := startProxyEngine(t, &eng, opts...)
	addr := p.Addr
	var pool *tls.Config
	switch driver {
	case "goroutine":
		addr = serveOn(t, eng, p).Addr
	case "tls-loop", "tls-goroutine":
		cert, roots := selfSigned(t)
		addr = serveTLS(t, driver[len("tls-"):], cert)
		pool = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}}
	}
	q := *p
	q.Addr = addr
	waitFor(t, "no client connection before the test's", 5*time.Second, func() bool {
		return metricValue(t, "mizuchi_connections_active") == 0
	})
	return &q, eng, func() (net.Conn, func(net.Conn) net.Conn) {
		c := dial(t, addr)
		waitFor(t, "the connection accepted", 5*time.Second, func() bool {
			return metricValue(t, "mizuchi_connections_active") == 1
		})
		if pool == nil {
			return c, func(c net.Conn) net.Conn { return c }
		}
		return c, func(c net.Conn) net.Conn {
			tc := tls.Client(c, pool)
			if err := tc.Handshake(); err != nil {
				t.Fatalf("TLS handshake during the drain: %v", err)
			}
			return tc
		}
	}
}

// shutdownAsync starts a drain and waits until the engine says it is draining.
func shutdownAsync(t *testing.T, eng *engine.Engine, timeout time.Duration) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		done <- eng.Shutdown(ctx)
	}()
	waitFor(t, "the engine to drain", 5*time.Second, func() bool { return !eng.Ready() })
	return done
}

// storedAcrossDrain reads the answer to a PUT on c that crossed the start of a drain (done is
// Shutdown's result): 200 with Connection: close, the drain ends cleanly, and the object holds body.
func storedAcrossDrain(t *testing.T, c net.Conn, done <-chan error, upBucket, key string, body []byte) {
	t.Helper()
	resp, rb := readResponse(t, bufio.NewReader(c))
	if resp.StatusCode != 200 {
		t.Fatalf("PUT %s across the drain's start: %d %s", key, resp.StatusCode, rb)
	}
	if !resp.Close {
		t.Error("the answer during a drain does not close the connection (Connection: close)")
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got, _ := upstream.GetObject(t, upBucket, key); string(got) != string(body) {
		t.Fatalf("stored object: %d bytes, want the %d sent", len(got), len(body))
	}
}

// A connection the proxy accepted before its drain began is served its first request even when
// that request comes after the drain began (a client that connected just as the process was told
// to stop, or whose connection was accepted as an upgrade's hand-over retired the listeners): the
// answer closes the connection, and the drain waits for it. Before, the drain closed such a
// connection unanswered (as an idle keep-alive one) and the client's write failed: broken pipe.
func TestDrainServesAcceptedConnection(t *testing.T) {
	for _, driver := range []string{"loop", "goroutine", "tls-loop", "tls-goroutine"} {
		t.Run(driver, func(t *testing.T) {
			p, eng, dialAccepted := drainDrivers(t, driver)
			raw, ready := dialAccepted()
			done := shutdownAsync(t, eng, 20*time.Second)
			time.Sleep(800 * time.Millisecond) // past a sweep of the connections (every 500 ms)
			c := ready(raw)
			body := s3test.RandomBytes(8<<10, 3)
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/late-" + driver, Body: body}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
				t.Fatalf("request on a connection accepted before the drain: %v", err)
			}
			storedAcrossDrain(t, c, done, p.UpBucket, "late-"+driver, body)
		})
	}
}

// A connection that was accepted and sends nothing does not hold a drain: it is closed once the
// grace for its first request (the head timeout, at most 5 s) has passed.
func TestDrainClosesSilentConnection(t *testing.T) {
	for _, driver := range []string{"loop", "goroutine", "tls-loop", "tls-goroutine"} {
		t.Run(driver, func(t *testing.T) {
			_, eng, dialAccepted := drainDrivers(t, driver, func(o *engine.Options) { o.HeadTimeout = time.Second })
			c, _ := dialAccepted()
			start := time.Now()
			done := shutdownAsync(t, eng, 20*time.Second)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("silent connection during the drain: read %d bytes, %v; want it closed", n, err)
			}
			if err := <-done; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the drain took %v with one silent connection; want about its 1 s grace", d)
			}
		})
	}
}

// A connection accepted after the drain began, before the listeners were retired (the loops
// accept on their own; an upgrade's hand-over races them), is served too, not closed at once.
func TestDrainServesConnectionAcceptedLate(t *testing.T) {
	var eng *engine.Engine
	p := startProxyEngine(t, &eng)
	eng.SetDrainingForTest(true)
	defer eng.SetDrainingForTest(false)
	c := dial(t, p.Addr)
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/accepted-late", Body: []byte("late")}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
		t.Fatal(err)
	}
	resp, rb := readResponse(t, bufio.NewReader(c))
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("connection accepted while draining: %d close=%v %s; want 200 and Connection: close", resp.StatusCode, resp.Close, rb)
	}
}

// A small body still arriving when the drain begins (read in the loop: no upload counts it yet)
// is read to its end and stored, not answered 503 when the loops stop.
func TestDrainFinishesInlineBody(t *testing.T) {
	for _, driver := range []string{"loop", "goroutine"} {
		t.Run(driver, func(t *testing.T) {
			p, eng, dialAccepted := drainDrivers(t, driver)
			c, _ := dialAccepted()
			body := s3test.RandomBytes(32<<10, 5)
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/inline-" + driver, Body: body}
			wire := r.bytes(t, p.Addr)
			half := len(wire) - len(body)/2
			if _, err := c.Write(wire[:half]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // the head is read, the body awaited
			done := shutdownAsync(t, eng, 20*time.Second)
			time.Sleep(300 * time.Millisecond)
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(wire[half:]); err != nil {
				t.Fatalf("the rest of the body during the drain: %v", err)
			}
			storedAcrossDrain(t, c, done, p.UpBucket, "inline-"+driver, body)
		})
	}
}

// gateAuthorizer allows every request once open is closed, and tells entered when it is asked.
type gateAuthorizer struct{ entered, open chan struct{} }

func (g *gateAuthorizer) Authorize(ctx context.Context, in *engine.AuthzInput) *engine.Error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.open
	return nil
}

// A request whose Authorizer is still deciding when the drain begins (parked off the loop: no
// upload counts it yet) gets its decision and is stored, not cut when the loops stop.
func TestDrainWaitsForDecision(t *testing.T) {
	gate := &gateAuthorizer{entered: make(chan struct{}, 1), open: make(chan struct{})}
	var eng *engine.Engine
	p := startProxyEngine(t, &eng, func(o *engine.Options) {
		o.Buckets[0].Authorizer = gate
		o.AuthorizeTimeout = 10 * time.Second
	})
	c := dial(t, p.Addr)
	body := []byte("decided during the drain")
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/decided", Body: body}
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gate.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the Authorizer was not asked")
	}
	done := shutdownAsync(t, eng, 20*time.Second)
	waitFor(t, "the drain to begin", 5*time.Second, func() bool { return !eng.Ready() })
	close(gate.open)
	storedAcrossDrain(t, c, done, p.UpBucket, "decided", body)
}
