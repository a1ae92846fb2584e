package sink

import (
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
)

func TestServeTLS(t *testing.T) {
	files, err := benchtls.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srvConf, err := benchtls.ServerConfig(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go s.ServeTLS(ln, srvConf)

	cliConf, err := benchtls.ClientConfig(files.CA, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cliConf}}
	for range 3 { // keep-alive: one connection, three requests
		req, _ := http.NewRequest("PUT", "https://"+ln.Addr().String()+"/b/k", strings.NewReader(strings.Repeat("x", 100000)))
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=a/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
			t.Fatalf("status %d, TLS %+v; want 200 over TLS 1.3", resp.StatusCode, resp.TLS)
		}
	}
	if got := s.Stats.BodyBytes.Load(); got != 300000 {
		t.Errorf("sink received %d body bytes; want 300000", got)
	}
	if got := s.TLSSuites(); len(got) != 1 || !strings.HasPrefix(got[0], "TLS 1.3 ") {
		t.Errorf("TLSSuites() = %q; want one TLS 1.3 suite", got)
	}
}
