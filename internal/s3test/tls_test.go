package s3test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// StartTLS runs versitygw serving https with a certificate its CA file verifies; plain http and
// clients without the CA are refused; Restart keeps it https.
func TestStartTLS(t *testing.T) {
	t.Parallel()
	s := StartTLS(t)
	if !strings.HasPrefix(s.Endpoint, "https://127.0.0.1:") || s.RootCAs == nil {
		t.Fatalf("Endpoint %q, RootCAs %v; want https and a pool", s.Endpoint, s.RootCAs)
	}
	pemBytes, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("CAFile %s holds no certificate", s.CAFile)
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(s.Endpoint + "/health")
	if err != nil {
		t.Fatalf("GET /health over https with CAFile: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /health: %s", resp.Status)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(s.Endpoint + "/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /health without the CA: %s; want a certificate error", resp.Status)
	}
	if resp, err := hc.Get("http://" + s.Addr + "/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("plain http GET /health answered 200; want https only")
		}
	}
	s.CreateBucket(t, "tlsbkt")
	if _, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("tlsbkt"), Key: aws.String("k"), Body: bytes.NewReader([]byte("over tls")),
	}); err != nil {
		t.Fatalf("PutObject over https: %v", err)
	}
	s.Restart(t)
	if body, _ := s.GetObject(t, "tlsbkt", "k"); string(body) != "over tls" {
		t.Fatalf("object after Restart: %q", body)
	}
}
