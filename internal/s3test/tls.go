package s3test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/freeport"
	"github.com/mizuchi/uploadr/internal/testca"
)

// StartTLS is Start with versitygw serving https itself (`--cert FILE --key FILE`): a certificate
// for 127.0.0.1 and localhost, signed by a CA made for this server alone. Endpoint is then
// "https://127.0.0.1:PORT"; RootCAs (and the PEM file CAFile) trust the certificate, and Client,
// the health check and Restart use it. Any failure fails the test; StartTLS never skips.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	pki := filepath.Join(t.TempDir(), "pki")
	tf, err := makeTLSFiles(pki)
	if err != nil {
		t.Fatalf("s3test: StartTLS: %v", err)
	}
	s, err := startWith(dir, freeport.Pick, tf)
	if err != nil {
		t.Fatalf("s3test: StartTLS: %v", err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			if out := tail(s.output.Bytes(), 4096); len(out) > 0 {
				t.Logf("s3test: versitygw (https) on %s said:\n%s", s.Addr, out)
			}
		}
	})
	return s
}

// tlsFiles are the files of an https versitygw: its certificate and key, and the CA that signed it.
type tlsFiles struct {
	cert, key, ca string
	pool          *x509.CertPool
}

// makeTLSFiles makes a CA and a server certificate for 127.0.0.1 and localhost (ECDSA P-256, valid
// for a day) and writes ca.pem, cert.pem and key.pem under dir.
func makeTLSFiles(dir string) (*tlsFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := testca.New(testca.Spec{CommonName: "s3test CA", Validity: 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue(testca.Spec{CommonName: "127.0.0.1", Validity: 23 * time.Hour,
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	if err != nil {
		return nil, err
	}
	tf := &tlsFiles{
		cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"), ca: filepath.Join(dir, "ca.pem"),
		pool: ca.Pool(),
	}
	for _, f := range []struct {
		path string
		pem  []byte
	}{{tf.ca, ca.CertPEM()}, {tf.cert, leaf.CertPEM()}, {tf.key, leaf.KeyPEM()}} {
		if err := os.WriteFile(f.path, f.pem, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return tf, nil
}

// args are versitygw's command-line arguments for s (Start, StartTLS, Restart).
func (s *Server) args() []string {
	a := []string{"--port", s.Addr, "--health", "/health", "--keep-alive", "--quiet"}
	if s.tls != nil {
		a = append(a, "--cert", s.tls.cert, "--key", s.tls.key)
	}
	return append(a, "posix", s.DataDir)
}

// transport is an HTTP transport that trusts the server's certificate (https) or a plain one.
func (s *Server) transport(keepAlive bool) *http.Transport {
	tr := &http.Transport{DisableKeepAlives: !keepAlive}
	if s.RootCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return tr
}
