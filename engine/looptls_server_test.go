package engine_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// tlsPut dials addr over TLS (trusting pool) and returns the connection and its reader.
func tlsDial(t *testing.T, addr string, pool *x509.CertPool) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Fatalf("ALPN = %q; want http/1.1", p)
	}
	return c, bufio.NewReader(c)
}

// The loop driver holds no goroutine per connection: 40 idle keep-alive TLS connections that
// each sent a request cost the goroutine driver 40 goroutines and the loop driver none.
func TestServeTLSLoopNoGoroutinePerConnection(t *testing.T) {
	for _, driver := range []string{"goroutine", "loop"} {
		t.Run(driver, func(t *testing.T) {
			g := startProxy(t)
			cert, pool := selfSigned(t)
			addr := serveTLS(t, driver, cert)
			time.Sleep(100 * time.Millisecond)
			before := runtime.NumGoroutine()
			for i := range 40 {
				c, br := tlsDial(t, addr, pool)
				key := fmt.Sprintf("idle/%s-%d", driver, i)
				r := rawReq{Method: "PUT", Path: "/" + g.Bucket + "/" + key, Body: []byte("x")}
				if _, err := c.Write(r.bytes(t, addr)); err != nil {
					t.Fatal(err)
				}
				if resp, body := readResponse(t, br); resp.StatusCode != 200 {
					t.Fatalf("PUT %s: %d %s", key, resp.StatusCode, body)
				}
			}
			time.Sleep(200 * time.Millisecond)
			grew := runtime.NumGoroutine() - before
			t.Logf("%s driver: %d goroutines more with 40 idle TLS connections", driver, grew)
			if driver == "loop" && grew >= 10 {
				t.Fatalf("loop driver: %d goroutines more with 40 idle TLS connections; want none per connection", grew)
			}
			if driver == "goroutine" && grew < 40 {
				t.Fatalf("goroutine driver: %d goroutines more; the assertion above would not tell the drivers apart", grew)
			}
		})
	}
}

// On one loop-served TLS connection: pipelined small PUTs, a body large enough to detach to a
// goroutine (above InlineBodyMax: through the tls.Conn, over the socket), then a streamed and a
// small PUT after the connection rejoined its loop; a refusal keeps the connection. Every object
// is stored byte for byte.
func TestServeTLSLoopDetachAndReturn(t *testing.T) {
	g := startProxy(t)
	cert, pool := selfSigned(t)
	addr := serveTLS(t, "loop", cert)
	// The gauge is the process's: let the readiness dial of startProxy (closed, but its OnClose may
	// still be due) leave it first, or the baseline counts a connection that goes away later.
	waitFor(t, "no client connection before the test's", 5*time.Second, func() bool {
		return metricValue(t, "mizuchi_connections_active") == 0
	})
	active := metricValue(t, "mizuchi_connections_active")
	c, br := tlsDial(t, addr, pool)
	defer func() {
		// The gauge counts the connection through its detach and return, and forgets it once closed.
		c.Close()
		waitFor(t, "mizuchi_connections_active back to its value", 5*time.Second, func() bool {
			return metricValue(t, "mizuchi_connections_active") == active
		})
	}()
	put := func(key string, body []byte) []byte {
		r := rawReq{Method: "PUT", Path: "/" + g.Bucket + "/" + key, Body: body}
		return r.bytes(t, addr)
	}
	expect := func(key string, body []byte, status int) {
		t.Helper()
		resp, rb := readResponse(t, br)
		if resp.StatusCode != status {
			t.Fatalf("PUT %s: %d %s; want %d", key, resp.StatusCode, rb, status)
		}
		if status != 200 {
			return
		}
		if got, _ := upstream.GetObject(t, g.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("%s: upstream has %d bytes; want %d", key, len(got), len(body))
		}
	}
	a, b := s3test.RandomBytes(3000, 1), s3test.RandomBytes(10, 2)
	if _, err := c.Write(append(put("loop/a", a), put("loop/b", b)...)); err != nil {
		t.Fatal(err)
	}
	expect("loop/a", a, 200)
	expect("loop/b", b, 200)
	before := detachedCount(t)
	for i, size := range []int{1<<20 + 1, 200 << 10, 5000} {
		key := fmt.Sprintf("loop/after-%d", i)
		body := s3test.RandomBytes(size, int64(10+i))
		go func(w []byte) { _, _ = c.Write(w) }(put(key, body))
		expect(key, body, 200)
	}
	wantDetached(t, "above the cap, streamed, small", before, 1)
	bad := rawReq{Method: "PUT", Path: "/" + g.Bucket + "/loop/bad", Body: []byte("zz"), SK: "wrong", AK: clientAK}
	if _, err := c.Write(bad.bytes(t, addr)); err != nil {
		t.Fatal(err)
	}
	resp, body := readResponse(t, br)
	wantS3Error(t, resp, body, 403, "SignatureDoesNotMatch")
	last := s3test.RandomBytes(100, 20)
	if _, err := c.Write(put("loop/last", last)); err != nil {
		t.Fatal(err)
	}
	expect("loop/last", last, 200)
	if got := metricValue(t, "mizuchi_connections_active"); got != active+1 {
		t.Errorf("mizuchi_connections_active = %v with the connection open; want %v", got, active+1)
	}
}

// A TLS client that closes its side (close_notify, then FIN) right after its request still reads
// the answer, on both drivers.
func TestServeTLSHalfClosedClientGetsAnswer(t *testing.T) {
	for _, driver := range []string{"goroutine", "loop"} {
		t.Run(driver, func(t *testing.T) {
			g := startProxy(t)
			cert, pool := selfSigned(t)
			addr := serveTLS(t, driver, cert)
			for i := range 5 {
				c, br := tlsDial(t, addr, pool)
				key := fmt.Sprintf("half/%s-%d", driver, i)
				body := s3test.RandomBytes(2000, int64(i))
				r := rawReq{Method: "PUT", Path: "/" + g.Bucket + "/" + key, Body: body}
				if _, err := c.Write(r.bytes(t, addr)); err != nil {
					t.Fatal(err)
				}
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				if resp, rb := readResponse(t, br); resp.StatusCode != 200 {
					t.Fatalf("PUT %s: %d %s", key, resp.StatusCode, rb)
				}
				if got, _ := upstream.GetObject(t, g.UpBucket, key); !bytes.Equal(got, body) {
					t.Fatalf("%s: upstream has %d bytes", key, len(got))
				}
			}
		})
	}
}

// The client limits hold on loop-served TLS connections: over the per-address limit the first
// request is 503 SlowDown and the connection closes; one over the limit that sends nothing after
// its handshake is closed after head_timeout; the connections under the limit keep working.
func TestServeTLSLoopClientLimits(t *testing.T) {
	p := startProxy(t, func(o *engine.Options) { o.Limits.MaxConnsPerIP, o.HeadTimeout = 2, time.Second })
	cert, pool := selfSigned(t)
	addr := serveTLS(t, "loop", cert)
	put := func(c *tls.Conn, br *bufio.Reader, key string) int {
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: []byte("limits " + key)}
		if _, err := c.Write(r.bytes(t, addr)); err != nil {
			return 0
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 {
			wantS3Error(t, resp, body, 503, "SlowDown")
		}
		return resp.StatusCode
	}
	type kept struct {
		c  *tls.Conn
		br *bufio.Reader
	}
	var ok []kept
	for i := range 2 {
		waitFor(t, "a TLS connection admitted", 5*time.Second, func() bool {
			c, br := tlsDial(t, addr, pool)
			if put(c, br, fmt.Sprintf("tls-limit-%d", i)) == 200 {
				ok = append(ok, kept{c, br})
				return true
			}
			c.Close()
			return false
		})
	}
	before := limitedSeries(t, "connections_per_ip")
	c, br := tlsDial(t, addr, pool)
	if st := put(c, br, "tls-third"); st != 503 {
		t.Fatalf("third TLS connection: status %d; want 503", st)
	}
	closedWithin(t, c, 5*time.Second)
	if upstream.ObjectExists(t, p.UpBucket, "tls-third") {
		t.Errorf("the refused request reached the upstream")
	}
	if g := limitedSeries(t, "connections_per_ip") - before; g != 1 {
		t.Errorf("limited{connections_per_ip} grew by %v; want 1", g)
	}
	silent, _ := tlsDial(t, addr, pool)
	start := time.Now()
	closedWithin(t, silent, 5*time.Second)
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("silent TLS connection over the limit closed after %v; want about head_timeout (1s)", d)
	}
	for i, k := range ok {
		if st := put(k.c, k.br, fmt.Sprintf("tls-again-%d", i)); st != 200 {
			t.Fatalf("connection %d after the refusal: %d", i, st)
		}
	}
}
