package engine_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
	"github.com/mizuchi/uploadr/internal/testca"
)

// startTLSFront terminates TLS on a loopback port and forwards each connection to the real S3
// server: an https upstream for the proxy. It returns the endpoint and the CA pool that trusts it.
func startTLSFront(t *testing.T, backend string) (string, *x509.CertPool) {
	t.Helper()
	ca, err := testca.New(testca.Spec{CommonName: "127.0.0.1", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pool := ca.Pool()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c); b.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	return "https://" + l.Addr().String(), pool
}

// An https upstream works through the copy path (splice cannot pass through TLS).
func TestHTTPSUpstream(t *testing.T) {
	ep, pool := startTLSFront(t, upstream.Addr)
	p := startProxy(t, func(o *engine.Options) {
		o.Buckets[0].Upstream.Endpoint = ep
		o.Buckets[0].Upstream.RootCAs = pool
	})
	cl := p.sdkClient(t)
	for _, size := range []int{10, 3 << 20} {
		body := s3test.RandomBytes(size, 12)
		key := "tls/" + strings.Repeat("x", size%7+1)
		if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("PutObject %d via https upstream: %v", size, err)
		}
		got, _ := upstream.GetObject(t, p.UpBucket, key)
		if !bytes.Equal(got, body) {
			t.Fatalf("%d: body differs", size)
		}
	}
	// Without the CA the proxy refuses to talk to the upstream: 503.
	p2 := startProxy(t, func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = ep })
	r := rawReq{Method: "PUT", Path: "/" + p2.Bucket + "/k", Body: []byte("x")}
	resp, b := p2.do(t, r.bytes(t, p2.Addr))
	wantS3Error(t, resp, b, 503, "ServiceUnavailable")
}
