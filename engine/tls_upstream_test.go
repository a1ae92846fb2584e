package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// httpsBed is a proxy in front of its own versitygw serving https itself (s3test.StartTLS).
type httpsBed struct {
	srv *s3test.Server
	p   *proxy
	e   *engine.Engine
}

func startHTTPSBed(t *testing.T, opts ...proxyOpt) *httpsBed {
	t.Helper()
	b := &httpsBed{srv: s3test.StartTLS(t)}
	n := bucketSeq.Add(1)
	b.p = &proxy{Bucket: fmt.Sprintf("client-%d", n), UpBucket: fmt.Sprintf("upstream-%d", n)}
	b.srv.CreateBucket(t, b.p.UpBucket)
	o := engine.Options{
		Address:    fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
		EventLoops: 2,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Buckets: []engine.Bucket{{
			Name: b.p.Bucket,
			Upstream: engine.Upstream{Endpoint: b.srv.Endpoint, Bucket: b.p.UpBucket, Region: b.srv.Region,
				AccessKey: b.srv.AccessKey, SecretKey: b.srv.SecretKey, RootCAs: b.srv.RootCAs},
			Credentials: map[string]string{clientAK: clientSK},
		}},
	}
	for _, f := range opts {
		f(&o)
	}
	b.e = runEngine(t, o)
	b.p.Addr = o.Address
	b.p.Endpoint = "http://" + o.Address
	return b
}

// tlsCounters reads the upstream TLS series (process-wide; engine tests run one at a time).
type tlsCounters struct{ dials, handshakes, resumed uint64 }

func readTLSCounters() tlsCounters {
	return tlsCounters{
		dials:      metrics.GetOrCreateCounter(`mizuchi_upstream_dials_total`).Get(),
		handshakes: metrics.GetOrCreateCounter(`mizuchi_upstream_tls_handshakes_total`).Get(),
		resumed:    metrics.GetOrCreateCounter(`mizuchi_upstream_tls_resumed_total`).Get(),
	}
}

func (c tlsCounters) since(base tlsCounters) tlsCounters {
	return tlsCounters{c.dials - base.dials, c.handshakes - base.handshakes, c.resumed - base.resumed}
}

// The TLS paths to an https upstream keep their connections alive across sequential requests: one
// dial for the small PUTs (a loop-owned connection, TLS driven in the event loop) and one for the
// larger ones (the goroutine path), whose handshake resumes the session the first one got; when the
// idle connections are closed the next dial resumes the TLS session too.
func TestHTTPSUpstreamKeepAliveAndResumption(t *testing.T) {
	const idle = 300 * time.Millisecond
	b := startHTTPSBed(t, func(o *engine.Options) { o.Upstream.IdleTimeout = idle })
	cl := b.p.sdkClient(t)
	put := func(key string, size int) {
		t.Helper()
		body := s3test.RandomBytes(size, 21)
		if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.p.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("PutObject %s: %v", key, err)
		}
		if got, _ := b.srv.GetObject(t, b.p.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("%s: stored body differs", key)
		}
	}
	openConns := func() int64 { open, _ := upGauges(); return open } // from a scrape: a gauge written with idle
	open0 := openConns()                                             // process-wide: other engines' connections count too
	base := readTLSCounters()
	for i := range 6 {
		put(fmt.Sprintf("seq/%d", i), []int{100, 200 << 10, 2 << 20}[i%3])
	}
	if d := readTLSCounters().since(base); d.dials != 2 || d.handshakes != 2 || d.resumed != 1 {
		t.Fatalf("6 sequential PUTs: %+v; want 2 dials (loop, goroutine path), 2 handshakes, 1 resumed (keep-alive)", d)
	}
	// The sweep closes the idle connections; the next request dials again and resumes the session.
	if n := openConns(); n != open0+2 {
		t.Fatalf("open upstream connections %d; want %d (one per path kept alive)", n, open0+2)
	}
	waitFor(t, "the idle upstream connections closed", 10*time.Second, func() bool { return openConns() == open0 })
	put("after-idle", 1000)
	if d := readTLSCounters().since(base); d.dials != 3 || d.handshakes != 3 || d.resumed != 2 {
		t.Fatalf("after the idle close: %+v; want 3 dials, 3 handshakes, 2 resumed", d)
	}
	if !strings.HasPrefix(b.srv.Endpoint, "https://") {
		t.Fatalf("upstream %s is not https", b.srv.Endpoint)
	}
}

// noObjectOn asserts that srv holds no object under bucket/key, now and a moment later (it may
// still be finishing a request the proxy abandoned).
func noObjectOn(t *testing.T, srv *s3test.Server, bucket, key string) {
	t.Helper()
	for range 5 {
		if srv.ObjectExists(t, bucket, key) {
			t.Fatalf("upstream stored %s/%s; want no object", bucket, key)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Single PUTs through the proxy to versitygw serving https: inline-sized, medium and large bodies
// (the two larger take the copy path: splice cannot pass through TLS), with the SDK's default
// checksums; the bytes counted as copied, none spliced.
func TestHTTPSUpstreamPut(t *testing.T) {
	b := startHTTPSBed(t)
	cl := b.p.sdkClient(t)
	copied0 := metrics.GetOrCreateCounter(`mizuchi_transfer_bytes_total{mode="copy"}`).Get()
	spliced0 := metrics.GetOrCreateCounter(`mizuchi_transfer_bytes_total{mode="splice"}`).Get()
	for _, tc := range []struct {
		name string
		size int
	}{{"small", 1000}, {"medium", 3 << 20}, {"large", 48 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			body := s3test.RandomBytes(tc.size, 31)
			key := "put/" + tc.name
			if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.p.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
				t.Fatalf("PutObject %d bytes: %v", tc.size, err)
			}
			if got, _ := b.srv.GetObject(t, b.p.UpBucket, key); !bytes.Equal(got, body) {
				t.Fatalf("stored body differs (%d bytes, want %d)", len(got), len(body))
			}
		})
	}
	if d := metrics.GetOrCreateCounter(`mizuchi_transfer_bytes_total{mode="splice"}`).Get() - spliced0; d != 0 {
		t.Errorf("%d bytes spliced to an https upstream; want 0", d)
	}
	if d := metrics.GetOrCreateCounter(`mizuchi_transfer_bytes_total{mode="copy"}`).Get() - copied0; d < 48<<20 {
		t.Errorf("%d bytes copied; want at least the large body's", d)
	}
}

// Multipart through the proxy to https versitygw: Create, UploadPart, ListParts, Complete; and
// Create, UploadPart, Abort — nothing left over.
func TestHTTPSUpstreamMultipart(t *testing.T) {
	b := startHTTPSBed(t)
	cl := b.p.sdkClient(t)
	ctx := context.Background()
	bucket, key := aws.String(b.p.Bucket), aws.String("mp/whole")
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: key})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	parts := [][]byte{s3test.RandomBytes(5<<20, 41), s3test.RandomBytes(1<<20+7, 42)}
	var done []types.CompletedPart
	for i, part := range parts {
		n := aws.Int32(int32(i + 1))
		up, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: key, UploadId: cr.UploadId, PartNumber: n, Body: bytes.NewReader(part)})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{PartNumber: n, ETag: up.ETag})
	}
	lp, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: bucket, Key: key, UploadId: cr.UploadId})
	if err != nil || len(lp.Parts) != 2 || aws.ToInt64(lp.Parts[0].Size) != 5<<20 || aws.ToInt64(lp.Parts[1].Size) != 1<<20+7 {
		t.Fatalf("ListParts = %v, %v; want the two parts", lp, err)
	}
	if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: key, UploadId: cr.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	if got, _ := b.srv.GetObject(t, b.p.UpBucket, "mp/whole"); !bytes.Equal(got, append(append([]byte(nil), parts[0]...), parts[1]...)) {
		t.Fatalf("stored object differs (%d bytes)", len(got))
	}

	key2 := aws.String("mp/aborted")
	cr2, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: key2})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	if _, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: bucket, Key: key2, UploadId: cr2.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(parts[0])}); err != nil {
		t.Fatalf("UploadPart: %v", err)
	}
	if _, err := cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: key2, UploadId: cr2.UploadId}); err != nil {
		t.Fatalf("AbortMultipartUpload: %v", err)
	}
	if ups := b.srv.ListMultipartUploads(t, b.p.UpBucket); len(ups) != 0 {
		t.Errorf("%d multipart uploads left on the upstream; want 0", len(ups))
	}
	noObjectOn(t, b.srv, b.p.UpBucket, "mp/aborted")
}

// A PutObject above the bucket's multipart threshold is auto-chunked into parts sent over TLS.
func TestHTTPSUpstreamAutoChunk(t *testing.T) {
	b := startHTTPSBed(t, withAutoChunk("", 6<<20, 5<<20, 2))
	cl := b.p.sdkClient(t)
	body := s3test.RandomBytes(13<<20+5, 51)
	if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.p.Bucket), Key: aws.String("auto/big"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	got, head := b.srv.GetObject(t, b.p.UpBucket, "auto/big")
	if !bytes.Equal(got, body) {
		t.Fatalf("stored body differs (%d bytes)", len(got))
	}
	if etag := aws.ToString(head.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-3") {
		t.Errorf("ETag %s; want a 3-part multipart ETag", etag)
	}
	if ups := b.srv.ListMultipartUploads(t, b.p.UpBucket); len(ups) != 0 {
		t.Errorf("%d multipart uploads left on the upstream; want 0", len(ups))
	}
}

// The https upstream goes away mid-body (versitygw stopped): the client gets an S3 error, and once
// it is back no object and no multipart upload remain — for a single PUT and for an auto-chunked
// one (whose abort the retrier finishes after the restart).
func TestHTTPSUpstreamDiesMidBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		auto bool
	}{{"single", false}, {"autochunk", true}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := []proxyOpt{func(o *engine.Options) {
				o.Upstream.AbortRetryFor, o.Upstream.AbortRetryBackoff = time.Minute, 50*time.Millisecond
			}}
			if tc.auto {
				opts = append(opts, withAutoChunk("", 6<<20, 5<<20, 1))
			}
			b := startHTTPSBed(t, opts...)
			const size = 24 << 20
			key := "dies/" + tc.name
			r := rawReq{Method: "PUT", Path: "/" + b.p.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD",
				Header: http.Header{"Content-Length": {fmt.Sprint(size)}}}
			c := dial(t, b.p.Addr)
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			body := s3test.RandomBytes(size, 61)
			if _, err := c.Write(append(r.bytes(t, b.p.Addr), body[:8<<20]...)); err != nil {
				t.Fatal(err)
			}
			if tc.auto {
				waitFor(t, "the upload created upstream", 10*time.Second, func() bool { return len(b.srv.ListMultipartUploads(t, b.p.UpBucket)) == 1 })
			} else {
				waitFor(t, "the upload in flight", 10*time.Second, func() bool { return b.e.ActiveUploads() == 1 })
			}
			b.srv.Stop()
			answer := make(chan *http.Response, 1)
			var answerBody []byte
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					answer <- nil
					return
				}
				answerBody, _ = io.ReadAll(resp.Body)
				answer <- resp
			}()
			_, _ = c.Write(body[8<<20:]) // the proxy may stop reading once the upstream failed
			resp := <-answer
			if resp == nil || (resp.StatusCode != 502 && resp.StatusCode != 503) {
				t.Fatalf("answer %v; want 502 or 503", resp)
			}
			wantS3Error(t, resp, answerBody, resp.StatusCode, map[int]string{502: "BadGateway", 503: "ServiceUnavailable"}[resp.StatusCode])
			b.srv.Restart(t)
			waitFor(t, "no multipart upload left", 15*time.Second, func() bool { return len(b.srv.ListMultipartUploads(t, b.p.UpBucket)) == 0 })
			noObjectOn(t, b.srv, b.p.UpBucket, key)
			if keys := b.srv.ListKeys(t, b.p.UpBucket); len(keys) != 0 {
				t.Errorf("objects stored: %v", keys)
			}
		})
	}
}

// The client vanishes mid-body (FIN or RST): the proxy resets its TLS connection to versitygw, which
// stores nothing.
func TestHTTPSUpstreamClientGoneMidBody(t *testing.T) {
	b := startHTTPSBed(t)
	for _, rst := range []bool{false, true} {
		t.Run(fmt.Sprint("rst=", rst), func(t *testing.T) {
			key := fmt.Sprint("gone/rst-", rst)
			r := rawReq{Method: "PUT", Path: "/" + b.p.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD",
				Header: http.Header{"Content-Length": {fmt.Sprint(10 << 20)}}}
			c := dial(t, b.p.Addr)
			if _, err := c.Write(append(r.bytes(t, b.p.Addr), s3test.RandomBytes(2<<20, 71)...)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the upload in flight", 5*time.Second, func() bool { return b.e.ActiveUploads() == 1 })
			if rst {
				_ = c.(*net.TCPConn).SetLinger(0)
			}
			c.Close()
			waitFor(t, "the upload to end", 5*time.Second, func() bool { return b.e.ActiveUploads() == 0 })
			noObjectOn(t, b.srv, b.p.UpBucket, key)
		})
	}
	// The proxy still works afterwards.
	body := s3test.RandomBytes(1<<20, 72)
	if _, err := b.p.sdkClient(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.p.Bucket), Key: aws.String("after"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject after the failures: %v", err)
	}
}
