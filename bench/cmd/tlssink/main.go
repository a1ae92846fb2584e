// Command tlssink is the benchmarks' sink (package bench/internal/sink) behind TLS: an https S3
// upstream that accepts any SigV4-signed upload and discards the body. It makes a self-signed
// certificate for 127.0.0.1 at start and writes it as PEM to -ca-out, for the proxy to trust
// (e.g. SSL_CERT_FILE, or a bucket's s3.ca_file).
//
//	tlssink -listen 127.0.0.1:7443 -ca-out /tmp/tlssink-ca.pem
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/sink"
	"github.com/mizuchi/uploadr/internal/testca"
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
	cert, err := testca.New(testca.Spec{CommonName: "127.0.0.1", Validity: 7 * 24 * time.Hour,
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(caOut, cert.CertPEM(), 0o644); err != nil {
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
	conf := &tls.Config{Certificates: []tls.Certificate{cert.TLSCertificate()}, MinVersion: tls.VersionTLS12}
	return s.Serve(tls.NewListener(ln, conf)) // returns only when the listener fails
}
