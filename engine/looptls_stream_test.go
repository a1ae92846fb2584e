package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// TLS clients served by the event loops (ServeTLS, the loop driver) stream bodies above 64 KiB up
// to Options.InlineBodyMax inside the loop, as plain clients do (inline_stream.go): decrypted in
// the loop and written to a loop-owned upstream connection as they arrive, never detached. Every
// test checks that path was taken — mizuchi_detached_requests_total does not move — besides the
// outcome, and reads every answer through the client's TLS session (an answer not sealed cannot be
// read).

// tlsBed is a proxy whose TLS listener is served by the event loops.
type tlsBed struct {
	*proxy
	e    *engine.Engine
	addr string // the https listener
	pool *x509.CertPool
}

func startTLSBed(t *testing.T, opts ...proxyOpt) *tlsBed {
	t.Helper()
	p := startProxy(t, opts...)
	b := &tlsBed{proxy: p, e: lastEngine}
	cert, pool := selfSigned(t)
	b.addr, b.pool = serveTLS(t, "loop", cert), pool
	return b
}

func (b *tlsBed) dial(t *testing.T) (*tls.Conn, *bufio.Reader) { return tlsDial(t, b.addr, b.pool) }

// put is a signed PutObject of body as wire bytes.
func (b *tlsBed) put(t *testing.T, key string, body []byte) []byte {
	r := rawReq{Method: "PUT", Path: "/" + b.Bucket + "/" + key, Body: body}
	return r.bytes(t, b.addr)
}

// unsignedHead is the head of an UNSIGNED-PAYLOAD PutObject of size bytes, with extra headers.
func (b *tlsBed) unsignedHead(t *testing.T, key string, size int, h http.Header) []byte {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Length", fmt.Sprint(size))
	r := rawReq{Method: "PUT", Path: "/" + b.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD", Header: h}
	return r.bytes(t, b.addr)
}

func detachedCount(t *testing.T) float64 { return metricValue(t, "mizuchi_detached_requests_total") }

// wantDetached checks how many requests were detached since before.
func wantDetached(t *testing.T, what string, before, want float64) {
	t.Helper()
	if d := detachedCount(t) - before; d != want {
		t.Errorf("%s: %v requests detached; want %v (streamed in the loop up to %d bytes)", what, d, want, inlineCap)
	}
}

// aws-sdk-go-v2 over https, with its default checksums (an unsigned-trailer aws-chunked body with
// a Content-Length) and with WhenRequired (the plain body): streamed in the loop, stored exactly.
func TestTLSStreamSDK(t *testing.T) {
	b := startTLSBed(t)
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: b.pool}
	})
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithHTTPClient(hc),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(clientAK, clientSK, "")),
		config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	client := func(mode aws.RequestChecksumCalculation) *s3.Client {
		return s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.BaseEndpoint = aws.String("https://" + b.addr)
			o.UsePathStyle = true
			o.RequestChecksumCalculation = mode
		})
	}
	def, whenRequired := client(aws.RequestChecksumCalculationWhenSupported), client(aws.RequestChecksumCalculationWhenRequired)
	for i, tc := range []struct {
		name string
		cl   *s3.Client
		size int
	}{
		{"default", def, 200 << 10},
		{"when-required", whenRequired, 200 << 10},
		{"when-required", whenRequired, inlineCap},
		{"default", def, 900 << 10},
	} {
		key := fmt.Sprintf("tls-stream/sdk-%s-%d", tc.name, tc.size)
		body := s3test.RandomBytes(tc.size, int64(i))
		before := detachedCount(t)
		if _, err := tc.cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if got, _ := upstream.GetObject(t, b.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("%s: upstream holds %d bytes, not the body", key, len(got))
		}
		wantDetached(t, key, before, 0)
	}
}

// One keep-alive TLS connection: bodies on both sides of 64 KiB and of the cap, each streamed (the
// one above the cap detached, and the connection back in its loop after it), logged as "inline"
// like the plain stream; then streamed bodies pipelined with a small request in one write, and an
// Expect: 100-continue body.
func TestTLSStreamKeepAliveAndPipelining(t *testing.T) {
	var logBuf syncBuf
	b := startTLSBed(t, func(o *engine.Options) { o.AccessLog = slog.New(slog.NewJSONHandler(&logBuf, nil)) })
	c, br := b.dial(t)
	expect := func(key string, body []byte) {
		t.Helper()
		resp, rb := readResponse(t, br)
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("PUT %s: %d close=%v %s", key, resp.StatusCode, resp.Close, rb)
		}
		if got, _ := upstream.GetObject(t, b.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("%s: upstream holds %d bytes, not the body", key, len(got))
		}
	}
	for i, size := range []int{64<<10 + 1, 200 << 10, inlineCap - 1, inlineCap, inlineCap + 1, 300 << 10} {
		key := fmt.Sprintf("tls-stream/ka-%d", size)
		body := s3test.RandomBytes(size, int64(i))
		before := detachedCount(t)
		if _, err := c.Write(b.put(t, key, body)); err != nil {
			t.Fatal(err)
		}
		expect(key, body)
		want, mode := 0.0, "inline"
		if size > inlineCap {
			want, mode = 1, "copy"
		}
		wantDetached(t, key, before, want)
		waitFor(t, "the access log line of "+key, 5*time.Second, func() bool { return strings.Contains(logBuf.String(), `"key":"`+key+`"`) })
		for l := range strings.SplitSeq(logBuf.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil || m["key"] != key {
				continue
			}
			if m["mode"] != mode || m["bytes_in"] != float64(size) || m["status"] != 200.0 {
				t.Errorf("%s logged %v; want mode %s, bytes_in %d", key, l, mode, size)
			}
		}
	}

	// What waits behind a request in flight stays within maxPipelinedBytes (1 MiB; the connection
	// is closed past it), however late the upstream answers: big2 and small are < 1 MiB together.
	before := detachedCount(t)
	big, big2, small := s3test.RandomBytes(300<<10, 40), s3test.RandomBytes(600<<10, 41), s3test.RandomBytes(100, 42)
	wire := append(append(b.put(t, "tls-stream/pipe-big", big), b.put(t, "tls-stream/pipe-big2", big2)...),
		b.put(t, "tls-stream/pipe-small", small)...)
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	expect("tls-stream/pipe-big", big)
	expect("tls-stream/pipe-big2", big2)
	expect("tls-stream/pipe-small", small)
	wantDetached(t, "pipelined", before, 0)

	body := s3test.RandomBytes(256<<10, 43)
	r := rawReq{Method: "PUT", Path: "/" + b.Bucket + "/tls-stream/expect", Body: body, Header: http.Header{"Expect": {"100-continue"}}}
	wire = r.bytes(t, b.addr)
	if _, err := c.Write(wire[:len(wire)-len(body)]); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("want 100 Continue first, got %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(body); err != nil {
		t.Fatal(err)
	}
	expect("tls-stream/expect", body)
	wantDetached(t, "Expect: 100-continue", before, 0)
}

// A TLS client that goes away mid-body — a reset, a FIN without close_notify, a close_notify —
// leaves no object (the upstream request is reset); one that can still read gets 400
// IncompleteBody, sealed.
func TestTLSStreamClientGone(t *testing.T) {
	b := startTLSBed(t)
	for _, size := range []int{256 << 10, inlineCap} {
		for _, how := range []string{"rst", "fin", "close_notify"} {
			t.Run(fmt.Sprintf("%d/%s", size, how), func(t *testing.T) {
				key := fmt.Sprintf("tls-stream/gone-%d-%s", size, how)
				before := detachedCount(t)
				c, br := b.dial(t)
				if _, err := c.Write(append(b.unsignedHead(t, key, size, nil), s3test.RandomBytes(size/2, 1)...)); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the upload in flight", 5*time.Second, func() bool { return b.e.ActiveUploads() == 1 })
				tcp := c.NetConn().(*net.TCPConn)
				switch how {
				case "rst":
					_ = tcp.SetLinger(0)
					_ = tcp.Close()
				case "fin":
					_ = tcp.CloseWrite()
				case "close_notify":
					_ = c.CloseWrite()
				}
				if how != "rst" {
					resp, rb := readResponse(t, br)
					wantS3Error(t, resp, rb, 400, "IncompleteBody")
				}
				waitFor(t, "the upload to end", 5*time.Second, func() bool { return b.e.ActiveUploads() == 0 })
				waitNoObject(t, b.UpBucket, key)
				wantDetached(t, key, before, 0)
			})
		}
	}
	c, br := b.dial(t)
	body := s3test.RandomBytes(300<<10, 2)
	if _, err := c.Write(b.put(t, "tls-stream/after-gone", body)); err != nil {
		t.Fatal(err)
	}
	if resp, rb := readResponse(t, br); resp.StatusCode != 200 {
		t.Fatalf("PUT after: %d %s", resp.StatusCode, rb)
	}
}

// A TLS client that half-closes (close_notify) once its whole streamed body is sent still gets the
// answer.
func TestTLSStreamHalfCloseAfterBody(t *testing.T) {
	b := startTLSBed(t)
	for _, size := range []int{256 << 10, inlineCap} {
		key := fmt.Sprintf("tls-stream/halfclose-%d", size)
		body := s3test.RandomBytes(size, 5)
		before := detachedCount(t)
		c, br := b.dial(t)
		if _, err := c.Write(b.put(t, key, body)); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if resp, rb := readResponse(t, br); resp.StatusCode != 200 {
			t.Fatalf("PUT %d bytes then close_notify: %d %s", size, resp.StatusCode, rb)
		}
		if got, _ := upstream.GetObject(t, b.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("%s: upstream holds %d bytes, not the body", key, len(got))
		}
		wantDetached(t, key, before, 0)
	}
}

// A streamed body that stops moving is answered 400 RequestTimeout (sealed) after
// BodyStallTimeout, also when only its last byte is missing; a body longer than its Content-Length
// is 400 IncompleteBody. Neither becomes an object.
func TestTLSStreamStallAndOverlong(t *testing.T) {
	b := startTLSBed(t, func(o *engine.Options) { o.BodyStallTimeout = 700 * time.Millisecond })
	for _, tc := range []struct {
		name      string
		size, got int
	}{
		{"half", inlineCap, inlineCap / 2},
		{"last-byte", inlineCap, inlineCap - 1},
		{"small-last-byte", 200 << 10, 200<<10 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "tls-stream/stall-" + tc.name
			before := detachedCount(t)
			c, br := b.dial(t)
			if _, err := c.Write(append(b.unsignedHead(t, key, tc.size, nil), make([]byte, tc.got)...)); err != nil {
				t.Fatal(err)
			}
			resp, rb := readResponse(t, br)
			wantS3Error(t, resp, rb, 400, "RequestTimeout")
			closedWithin(t, c, 5*time.Second)
			waitNoObject(t, b.UpBucket, key)
			wantDetached(t, key, before, 0)
		})
	}
	t.Run("overlong", func(t *testing.T) {
		size := 200 << 10
		key := "tls-stream/overlong"
		before := detachedCount(t)
		c, br := b.dial(t)
		if _, err := c.Write(append(b.unsignedHead(t, key, size, nil), bytes.Repeat([]byte("z"), 2*size+100)...)); err != nil {
			t.Fatal(err)
		}
		resp, rb := readResponse(t, br)
		wantS3Error(t, resp, rb, 400, "IncompleteBody")
		waitNoObject(t, b.UpBucket, key)
		wantDetached(t, key, before, 0)
	})
}

// The upstream answers 412 to If-None-Match: * before the body is complete: the TLS client reads
// the 412 (sealed) while it is still sending, the rest of its body is drained and the connection
// closes; the object stays as it was.
func TestTLSStreamEarlyAnswer(t *testing.T) {
	b := startTLSBed(t)
	key := "tls-stream/412"
	c, br := b.dial(t)
	if _, err := c.Write(b.put(t, key, []byte("first"))); err != nil {
		t.Fatal(err)
	}
	if resp, rb := readResponse(t, br); resp.StatusCode != 200 {
		t.Fatalf("first PUT: %d %s", resp.StatusCode, rb)
	}
	before := detachedCount(t)
	size := inlineCap
	head := b.unsignedHead(t, key, size, http.Header{"If-None-Match": {"*"}})
	if _, err := c.Write(append(head, make([]byte, size/4)...)); err != nil {
		t.Fatal(err)
	}
	expectEarly412(t, c, br, size-size/4, b.UpBucket, key)
	wantDetached(t, key, before, 0)
}

// An upstream that resets after part of a streamed body: the TLS client reads 502 BadGateway
// (sealed; the body cannot be replayed) and the connection closes.
func TestTLSStreamUpstreamDies(t *testing.T) {
	ep := startDyingUpstream(t, 300<<10)
	b := startTLSBed(t, func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = ep })
	before := detachedCount(t)
	c, br := b.dial(t)
	size := inlineCap
	go func() { _, _ = c.Write(append(b.unsignedHead(t, "tls-stream/dies", size, nil), make([]byte, size)...)) }()
	resp, rb := readResponse(t, br)
	wantS3Error(t, resp, rb, 502, "BadGateway")
	if !resp.Close {
		t.Errorf("connection not closed after the upstream failed mid-body")
	}
	wantDetached(t, "upstream dies", before, 0)
}

// Shutdown lets a streamed TLS upload finish; at the drain deadline one still streaming is cut
// (the upstream request reset: no object) and its client told 503, sealed.
func TestTLSStreamDrain(t *testing.T) {
	t.Run("finishes", func(t *testing.T) {
		b := startTLSBed(t)
		body := s3test.RandomBytes(768<<10, 3)
		wire := b.put(t, "tls-stream/drained", body)
		c, br := b.dial(t)
		before := detachedCount(t)
		if _, err := c.Write(wire[:len(wire)-len(body)/2]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the upload in flight", 5*time.Second, func() bool { return b.e.ActiveUploads() == 1 })
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- b.e.Shutdown(ctx)
		}()
		waitFor(t, "the engine to drain", 5*time.Second, func() bool { return !b.e.Ready() })
		if _, err := c.Write(wire[len(wire)-len(body)/2:]); err != nil {
			t.Fatal(err)
		}
		if resp, rb := readResponse(t, br); resp.StatusCode != 200 {
			t.Fatalf("upload during drain: %d %s", resp.StatusCode, rb)
		}
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if got, _ := upstream.GetObject(t, b.UpBucket, "tls-stream/drained"); !bytes.Equal(got, body) {
			t.Fatal("drained upload differs")
		}
		wantDetached(t, "drained", before, 0)
	})
	t.Run("deadline", func(t *testing.T) {
		b := startTLSBed(t)
		size := inlineCap
		c, br := b.dial(t)
		before := detachedCount(t)
		if _, err := c.Write(append(b.unsignedHead(t, "tls-stream/cut", size, nil), make([]byte, size*2/3)...)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the upload in flight", 5*time.Second, func() bool { return b.e.ActiveUploads() == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_ = b.e.Shutdown(ctx)
		resp, rb := readResponse(t, br)
		wantS3Error(t, resp, rb, 503, "ServiceUnavailable")
		waitNoObject(t, b.UpBucket, "tls-stream/cut")
		wantDetached(t, "cut", before, 0)
	})
}

// Behind an https upstream a TLS client's body above 64 KiB is detached as before (the loop does
// not stream through the upstream's TLS either, as for plain clients: inline_stream.go) and stored.
func TestTLSStreamHTTPSUpstreamDetaches(t *testing.T) {
	bed := startHTTPSBed(t)
	cert, pool := selfSigned(t)
	addr := serveTLS(t, "loop", cert)
	c, br := tlsDial(t, addr, pool)
	for i, size := range []int{200 << 10, 3000} {
		key := fmt.Sprintf("tls-stream/https-up-%d", size)
		body := s3test.RandomBytes(size, int64(50+i))
		before := detachedCount(t)
		r := rawReq{Method: "PUT", Path: "/" + bed.p.Bucket + "/" + key, Body: body}
		if _, err := c.Write(r.bytes(t, addr)); err != nil {
			t.Fatal(err)
		}
		if resp, rb := readResponse(t, br); resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %d %s", key, resp.StatusCode, rb)
		}
		if got, _ := bed.srv.GetObject(t, bed.p.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("%s: upstream holds %d bytes, not the body", key, len(got))
		}
		want := 0.0
		if size > 64<<10 {
			want = 1
		}
		if d := detachedCount(t) - before; d != want {
			t.Errorf("%s: %v requests detached; want %v", key, d, want)
		}
	}
}

// An upstream that does not read keeps what the proxy holds for a streaming TLS client bounded as
// for a plain one (TestInlineStreamSlowUpstreamMemoryBounded): about the body once — decrypted and
// queued for the upstream — whatever else the client sends.
func TestTLSStreamSlowUpstreamMemoryBounded(t *testing.T) {
	up := startSlowUpstream(t)
	b := startTLSBed(t, func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = "http://" + up.ln.Addr().String() })
	before := detachedCount(t)
	checkSlowUpstreamHeap(t, "TLS", up, b.e, 16, func(i int) (net.Conn, *bufio.Reader, []byte) {
		c, br := b.dial(t)
		return c, br, b.unsignedHead(t, fmt.Sprintf("tls-stream/slow-%d", i), inlineCap, nil)
	})
	wantDetached(t, "slow upstream", before, 0)
}

// Behind an Authorizer a TLS client's body above 64 KiB waits in the loop for the decision (as a
// plain client's does), then streams; a denial is answered sealed and nothing reaches the upstream.
func TestTLSStreamAuthorizer(t *testing.T) {
	a := &recordingAuthorizer{stop: make(chan struct{})}
	t.Cleanup(func() { close(a.stop) })
	b := startTLSBed(t, func(o *engine.Options) { o.Buckets[0].Authorizer = a })
	c, br := b.dial(t)
	for i, size := range []int{200 << 10, inlineCap} {
		key := fmt.Sprintf("ok/tls-stream-%d", size)
		body := s3test.RandomBytes(size, int64(60+i))
		before := detachedCount(t)
		if _, err := c.Write(b.put(t, key, body)); err != nil {
			t.Fatal(err)
		}
		if resp, rb := readResponse(t, br); resp.StatusCode != 200 {
			t.Fatalf("allowed PUT of %d bytes: %d %s", size, resp.StatusCode, rb)
		}
		if got, _ := upstream.GetObject(t, b.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("%s: upstream holds %d bytes, not the body", key, len(got))
		}
		if in := a.last(); in.Key != key || in.Size != int64(size) {
			t.Errorf("Authorizer input = %+v", in)
		}
		wantDetached(t, key, before, 0)
	}
	before := detachedCount(t)
	wire := b.put(t, "no/tls-stream", s3test.RandomBytes(300<<10, 62))
	go func() { _, _ = c.Write(wire) }()
	resp, rb := readResponse(t, br)
	wantS3Error(t, resp, rb, 403, "AccessDenied")
	if upstream.ObjectExists(t, b.UpBucket, "no/tls-stream") {
		t.Errorf("denied object exists upstream")
	}
	wantDetached(t, "denied", before, 0)
}

// A TLS client that ends its stream (close_notify, or a bare FIN) in the middle of a small body —
// one buffered whole, not streamed — is answered 400 IncompleteBody at once, not after the stall
// timeout; one that ends it in the middle of a head is closed at once. Nothing reaches the upstream.
func TestTLSSmallBodyClientGone(t *testing.T) {
	b := startTLSBed(t, func(o *engine.Options) { o.BodyStallTimeout, o.HeadTimeout = time.Minute, time.Minute })
	for _, how := range []string{"close_notify", "fin"} {
		t.Run("body/"+how, func(t *testing.T) {
			key := "tls-small/gone-" + how
			const size = 16 << 10
			c, br := b.dial(t)
			if _, err := c.Write(append(b.unsignedHead(t, key, size, nil), s3test.RandomBytes(size/2, 1)...)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // the head and half the body read: the connection waits for the rest
			if how == "fin" {
				_ = c.NetConn().(*net.TCPConn).CloseWrite()
			} else if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second)) // well inside the minute of the stall timeout
			resp, rb := readResponse(t, br)
			wantS3Error(t, resp, rb, 400, "IncompleteBody")
			waitNoObject(t, b.UpBucket, key)
		})
	}
	t.Run("head/close_notify", func(t *testing.T) {
		c, _ := b.dial(t)
		head := b.unsignedHead(t, "tls-small/half-head", 10, nil)
		if _, err := c.Write(head[:len(head)/2]); err != nil {
			t.Fatal(err)
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 512)); err != io.EOF {
			t.Fatalf("after half a head and close_notify: read %d bytes, %v; want the connection closed (EOF)", n, err)
		}
	})
}
