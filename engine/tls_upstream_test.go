package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

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

// The TLS path to an https upstream keeps its connection alive across sequential requests (one dial,
// one handshake), and when the idle connection is closed the next dial resumes the TLS session.
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
	base := readTLSCounters()
	for i := range 6 {
		put(fmt.Sprintf("seq/%d", i), []int{100, 200 << 10, 2 << 20}[i%3])
	}
	if d := readTLSCounters().since(base); d.dials != 1 || d.handshakes != 1 || d.resumed != 0 {
		t.Fatalf("6 sequential PUTs: %+v; want 1 dial, 1 full handshake, 0 resumed (keep-alive)", d)
	}
	// The sweep closes the idle connection; the next request dials again and resumes the session.
	waitFor(t, "the idle upstream connection closed", 10*time.Second, func() bool {
		return metrics.GetOrCreateCounter(`mizuchi_upstream_idle_connections`).Get() == 0 &&
			metrics.GetOrCreateCounter(`mizuchi_upstream_open_connections`).Get() == 0
	})
	put("after-idle", 1000)
	if d := readTLSCounters().since(base); d.dials != 2 || d.handshakes != 2 || d.resumed != 1 {
		t.Fatalf("after the idle close: %+v; want 2 dials, 2 handshakes, 1 resumed", d)
	}
	if !strings.HasPrefix(b.srv.Endpoint, "https://") {
		t.Fatalf("upstream %s is not https", b.srv.Endpoint)
	}
}
