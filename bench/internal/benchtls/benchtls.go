// Package benchtls makes the one certificate every TLS endpoint of a benchmark run presents (the
// proxies' https listeners and the https sink) and the crypto/tls configurations of the Go programs
// (load generator, sink, Go relay): TLS 1.3 only, so every peer negotiates the same suite
// (TLS_AES_128_GCM_SHA256 between Go peers on hardware with AES-GCM; nginx and HAProxy are pinned to it).
package benchtls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mizuchi/uploadr/internal/testca"
)

// Suite is the TLS 1.3 cipher suite nginx and HAProxy are pinned to (OpenSSL's name); Go peers pick
// it on their own when the CPU has AES-GCM instructions.
const Suite = "TLS_AES_128_GCM_SHA256"

// Files are the PEM files Write makes.
type Files struct {
	CA       string // the CA certificate that signed Cert (trust anchor for clients)
	Cert     string // the leaf certificate (ECDSA P-256; SAN IP 127.0.0.1, ::1, DNS localhost)
	Key      string // the leaf's private key (PKCS#8)
	Combined string // Cert then Key in one file (HAProxy's crt)
}

// Write generates a CA and a leaf signed by it, both ECDSA P-256 and valid for a day, and writes
// them into dir.
func Write(dir string) (Files, error) {
	f := Files{
		CA: filepath.Join(dir, "bench-ca.pem"), Cert: filepath.Join(dir, "bench-cert.pem"),
		Key: filepath.Join(dir, "bench-key.pem"), Combined: filepath.Join(dir, "bench-combined.pem"),
	}
	ca, err := testca.New(testca.Spec{CommonName: "mizuchi bench CA", Validity: 24 * time.Hour})
	if err != nil {
		return f, err
	}
	leaf, err := ca.Issue(testca.Spec{CommonName: "localhost", Validity: 24 * time.Hour,
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}})
	if err != nil {
		return f, err
	}
	certPEM, keyPEM := leaf.CertPEM(), leaf.KeyPEM()
	for path, b := range map[string][]byte{
		f.CA:       ca.CertPEM(),
		f.Cert:     certPEM,
		f.Key:      keyPEM,
		f.Combined: append(append([]byte{}, certPEM...), keyPEM...),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return f, err
		}
	}
	return f, nil
}

// ServerConfig is the crypto/tls server configuration of the Go endpoints: the pair in certFile and
// keyFile, TLS 1.3 only, ALPN http/1.1.
func ServerConfig(certFile, keyFile string) (*tls.Config, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS13, NextProtos: []string{"http/1.1"}}, nil
}

// ClientConfig is the crypto/tls client configuration of the Go endpoints: the server's certificate
// verified against the CA in caFile for serverName (an IP address or a DNS name), TLS 1.3 only,
// sessions cached for resumption.
func ClientConfig(caFile, serverName string) (*tls.Config, error) {
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errors.New("benchtls: " + caFile + " holds no PEM certificate")
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS13,
		NextProtos: []string{"http/1.1"}, ClientSessionCache: tls.NewLRUClientSessionCache(1024)}, nil
}

// Describe names a connection's negotiated version and suite, e.g. "TLS 1.3 TLS_AES_128_GCM_SHA256".
func Describe(st tls.ConnectionState) string {
	return fmt.Sprintf("%s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
}
