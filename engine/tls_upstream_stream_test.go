package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// Bodies above 64 KiB up to Options.InlineBodyMax to an https upstream stream inside the event
// loop over its loop-owned TLS connections (inline_stream.go, looptls.go), from plain clients and
// from TLS clients served by the loops alike: every test checks that none was detached
// (mizuchi_detached_requests_total does not move) besides the outcome.

// httpsStreamClient is one client connection to an httpsBed: plain or TLS (served by the loops).
type httpsStreamClient struct {
	addr string // what requests are signed for
	c    net.Conn
	br   *bufio.Reader
	tcp  *net.TCPConn
}

// httpsStreamClients returns a function that dials the bed's proxy as a plain or TLS client.
func httpsStreamClients(t *testing.T, b *httpsBed) map[string]func() *httpsStreamClient {
	cert, pool := selfSigned(t)
	tlsAddr := serveTLS(t, "loop", cert)
	return map[string]func() *httpsStreamClient{
		"plain": func() *httpsStreamClient {
			c := dial(t, b.p.Addr)
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			return &httpsStreamClient{addr: b.p.Addr, c: c, br: bufio.NewReader(c), tcp: c.(*net.TCPConn)}
		},
		"tls": func() *httpsStreamClient {
			c, br := tlsDial(t, tlsAddr, pool)
			return &httpsStreamClient{addr: tlsAddr, c: c, br: br, tcp: c.NetConn().(*net.TCPConn)}
		},
	}
}

func (k *httpsStreamClient) unsignedHead(t *testing.T, b *httpsBed, key string, size int, h http.Header) []byte {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Length", fmt.Sprint(size))
	r := rawReq{Method: "PUT", Path: "/" + b.p.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD", Header: h}
	return r.bytes(t, k.addr)
}

// Several PUTs on one keep-alive connection, 200 KiB and 1 MiB streamed and small ones between
// them, are stored byte-exact and none is detached.
func TestHTTPSUpstreamStreamKeepAlive(t *testing.T) {
	b := startHTTPSBed(t)
	for name, dialer := range httpsStreamClients(t, b) {
		t.Run(name, func(t *testing.T) {
			k := dialer()
			for i, size := range []int{200 << 10, inlineCap, 3000, inlineCap, 200 << 10} {
				key := fmt.Sprintf("https-stream/%s-%d-%d", name, i, size)
				body := s3test.RandomBytes(size, int64(80+i))
				before := detachedCount(t)
				r := rawReq{Method: "PUT", Path: "/" + b.p.Bucket + "/" + key, Body: body}
				if _, err := k.c.Write(r.bytes(t, k.addr)); err != nil {
					t.Fatal(err)
				}
				if resp, rb := readResponse(t, k.br); resp.StatusCode != 200 || resp.Close {
					t.Fatalf("PUT %s: %d close=%v %s", key, resp.StatusCode, resp.Close, rb)
				}
				if got, _ := b.srv.GetObject(t, b.p.UpBucket, key); !bytes.Equal(got, body) {
					t.Fatalf("%s: upstream holds %d bytes, not the body", key, len(got))
				}
				wantDetached(t, key, before, 0)
			}
		})
	}
}

// A client that resets mid-body leaves no object: the upstream TLS connection is reset.
func TestHTTPSUpstreamStreamClientGone(t *testing.T) {
	b := startHTTPSBed(t)
	for name, dialer := range httpsStreamClients(t, b) {
		for _, size := range []int{256 << 10, inlineCap} {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				key := fmt.Sprintf("https-stream/gone-%s-%d", name, size)
				before := detachedCount(t)
				k := dialer()
				if _, err := k.c.Write(append(k.unsignedHead(t, b, key, size, nil), s3test.RandomBytes(size/2, 81)...)); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the upload in flight", 5*time.Second, func() bool { return b.e.ActiveUploads() == 1 })
				_ = k.tcp.SetLinger(0)
				_ = k.tcp.Close()
				waitFor(t, "the upload to end", 5*time.Second, func() bool { return b.e.ActiveUploads() == 0 })
				noObjectOn(t, b.srv, b.p.UpBucket, key)
				wantDetached(t, key, before, 0)
			})
		}
	}
}

// The upstream answers 412 to If-None-Match: * before the body is complete: the client reads it
// while still sending, the rest of the body is drained, the connection closes, the object stays.
func TestHTTPSUpstreamStreamEarlyAnswer(t *testing.T) {
	b := startHTTPSBed(t)
	for name, dialer := range httpsStreamClients(t, b) {
		t.Run(name, func(t *testing.T) {
			key := "https-stream/412-" + name
			k := dialer()
			first := rawReq{Method: "PUT", Path: "/" + b.p.Bucket + "/" + key, Body: []byte("first")}
			if _, err := k.c.Write(first.bytes(t, k.addr)); err != nil {
				t.Fatal(err)
			}
			if resp, rb := readResponse(t, k.br); resp.StatusCode != 200 {
				t.Fatalf("first PUT: %d %s", resp.StatusCode, rb)
			}
			before := detachedCount(t)
			size := inlineCap
			head := k.unsignedHead(t, b, key, size, http.Header{"If-None-Match": {"*"}})
			if _, err := k.c.Write(append(head, make([]byte, size/4)...)); err != nil {
				t.Fatal(err)
			}
			resp, rb := readResponse(t, k.br)
			if resp.StatusCode != 412 || !resp.Close {
				t.Fatalf("conditional PUT mid-body: %d close=%v %s; want 412 and close", resp.StatusCode, resp.Close, rb)
			}
			if _, err := k.c.Write(make([]byte, size-size/4)); err != nil {
				t.Fatalf("rest of the body: %v", err)
			}
			if n, err := io.Copy(io.Discard, k.br); err != nil || n != 0 {
				t.Fatalf("after the answer: %d bytes, %v; want a clean close", n, err)
			}
			if got, _ := b.srv.GetObject(t, b.p.UpBucket, key); string(got) != "first" {
				t.Fatalf("object overwritten despite If-None-Match")
			}
			wantDetached(t, key, before, 0)
		})
	}
}

// The https upstream stops mid-body: the client gets a 5xx (the body cannot be replayed), its
// connection closes and,
// once the upstream is back, no object is there.
func TestHTTPSUpstreamStreamUpstreamStops(t *testing.T) {
	for _, name := range []string{"plain", "tls"} {
		t.Run(name, func(t *testing.T) {
			b := startHTTPSBed(t)
			k := httpsStreamClients(t, b)[name]()
			key := "https-stream/stops-" + name
			size := inlineCap
			before := detachedCount(t)
			if _, err := k.c.Write(append(k.unsignedHead(t, b, key, size, nil), make([]byte, size/2)...)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the upload in flight", 5*time.Second, func() bool { return b.e.ActiveUploads() == 1 })
			b.srv.Stop()
			go func() { _, _ = k.c.Write(make([]byte, size-size/2)) }()
			resp, rb := readResponse(t, k.br)
			// 502 BadGateway when the connection just ends; versitygw may first answer 500 itself
			// (its request context canceled), which is relayed.
			if resp.StatusCode < 500 || resp.StatusCode > 599 {
				t.Fatalf("answer %d %s; want a 5xx", resp.StatusCode, rb)
			}
			if resp.StatusCode == 502 {
				wantS3Error(t, resp, rb, 502, "BadGateway")
			}
			if !resp.Close {
				t.Errorf("connection not closed after the upstream failed mid-body")
			}
			wantDetached(t, key, before, 0)
			b.srv.Restart(t)
			noObjectOn(t, b.srv, b.p.UpBucket, key)
		})
	}
}

// At the drain deadline a body still streaming to the https upstream is cut: the upstream request
// is reset (no object) and the client told 503.
func TestHTTPSUpstreamStreamDrainDeadline(t *testing.T) {
	for _, name := range []string{"plain", "tls"} {
		t.Run(name, func(t *testing.T) {
			b := startHTTPSBed(t)
			k := httpsStreamClients(t, b)[name]()
			key := "https-stream/cut-" + name
			size := inlineCap
			before := detachedCount(t)
			if _, err := k.c.Write(append(k.unsignedHead(t, b, key, size, nil), make([]byte, size*2/3)...)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the upload in flight", 5*time.Second, func() bool { return b.e.ActiveUploads() == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_ = b.e.Shutdown(ctx)
			resp, rb := readResponse(t, k.br)
			wantS3Error(t, resp, rb, 503, "ServiceUnavailable")
			noObjectOn(t, b.srv, b.p.UpBucket, key)
			wantDetached(t, key, before, 0)
		})
	}
}
