// Command tlssink is the benchmarks' sink (package bench/internal/sink) behind TLS: an https S3
// upstream that accepts any SigV4-signed upload and discards the body. It makes a self-signed
// certificate for 127.0.0.1 at start and writes it as PEM to -ca-out, for the proxy to trust
// (e.g. SSL_CERT_FILE, or a bucket's s3.ca_file).
//
//	tlssink -listen 127.0.0.1:7443 -ca-out /tmp/tlssink-ca.pem
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/sink"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7443", "listen address")
	caOut := flag.String("ca-out", "tlssink-ca.pem", "where to write the certificate (PEM) clients must trust")
	flag.Parse()
	err := run(*listen, *caOut) // returns only when it cannot start or the listener fails
	fmt.Fprintln(os.Stderr, "tlssink:", err)
	os.Exit(1)
}

func run(listen, caOut string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(caOut, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	s, err := sink.New()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "tlssink: listening on", ln.Addr())
	conf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	return s.Serve(tls.NewListener(ln, conf)) // returns only when the listener fails
}
