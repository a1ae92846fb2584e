package engine_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
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
	"github.com/mizuchi/uploadr/internal/testca"
)

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca, err := testca.New(testca.Spec{CommonName: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.TLSCertificate()
	cert.Leaf = ca.Cert
	return cert, ca.Pool()
}

// Serve on a TLS listener: the bodies take the copy path (a *tls.Conn cannot be spliced or
// peeked) and every kind of exchange completes — inline, streamed, auto-chunked — with the SDK's
// default checksums (aws-chunked with a Content-Length over https) up to the auto-chunk threshold
// and with RequestChecksumCalculationWhenRequired above it; a refusal is the S3 XML error.
// Both drivers: Serve (a goroutine per connection) and ServeTLS (the event loops; bodies above
// InlineBodyMax detach through the tls.Conn).
func TestServeTLSListener(t *testing.T) {
	for _, driver := range []string{"goroutine", "loop"} {
		t.Run(driver, func(t *testing.T) { testServeTLS(t, driver) })
	}
}

// serveTLS serves https on a new loopback listener with the given driver and returns its address.
// tlsConnListener serves its connections as engine.TLSConn, as the server's https listener does
// for the goroutine driver.
type tlsConnListener struct {
	net.Listener
	cfg *tls.Config
}

func (l tlsConnListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return engine.NewTLSConn(c, l.cfg), nil
}

func serveTLS(t *testing.T, driver string, cert tls.Certificate) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := lastEngine
	done := make(chan error, 1)
	if driver == "loop" {
		go func() { done <- e.ServeTLS(l, cfg, 5*time.Second) }()
	} else {
		go func() { done <- e.Serve(tlsConnListener{l, cfg}) }()
	}
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

func testServeTLS(t *testing.T, driver string) {
	g := startProxy(t, withAutoChunk("", 6<<20, 5<<20, 2))
	cert, pool := selfSigned(t)
	addr := serveTLS(t, driver, cert)
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	})
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithHTTPClient(hc),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(clientAK, clientSK, "")),
		config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "https://" + addr
	cl := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(endpoint); o.UsePathStyle = true })
	whenRequired := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	// Above the auto-chunk threshold the default checksums send an unsigned aws-chunked body as one
	// chunk of the whole body: the auto-chunker streams unsigned chunks of any size into parts.
	big := s3test.RandomBytes(7<<20, 9)
	if _, err = cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(g.Bucket), Key: aws.String("tls/big-default"),
		Body: bytes.NewReader(big)}); err != nil {
		t.Fatalf("7 MiB with default checksums over TLS: %v", err)
	}
	if got, _ := upstream.GetObject(t, g.UpBucket, "tls/big-default"); !bytes.Equal(got, big) {
		t.Fatalf("7 MiB with default checksums: upstream has %d bytes", len(got))
	}
	for i, size := range []int{0, 3000, 64<<10 + 1, 1 << 20, 7 << 20} {
		key := fmt.Sprintf("tls/obj-%d", size)
		body := s3test.RandomBytes(size, int64(i))
		cl := cl
		if size > 6<<20 {
			cl = whenRequired
		}
		if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(g.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("PutObject %d bytes over TLS: %v", size, err)
		}
		if got, _ := upstream.GetObject(t, g.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("size %d: upstream has %d bytes", size, len(got))
		}
	}
	bad := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.Credentials = credentials.NewStaticCredentialsProvider(clientAK, "wrong", "")
	})
	_, err = bad.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(g.Bucket), Key: aws.String("tls/bad"),
		Body: strings.NewReader("x")})
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret over TLS: %v", err)
	}
}
