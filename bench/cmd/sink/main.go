// Command sink is the benchmarks' fast S3 upstream (see package bench/internal/sink): it accepts any
// SigV4-signed upload request, discards the body and answers like S3. With -tls-listen it also
// serves https (the TLS benchmarks' upstream), with the certificate and key given.
//
//	sink -listen 127.0.0.1:7071
//	sink -listen 127.0.0.1:7071 -tls-listen 127.0.0.1:7443 -tls-cert cert.pem -tls-key key.pem
package main

import (
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
	"github.com/mizuchi/uploadr/bench/internal/sink"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7071", "listen address")
	tlsListen := flag.String("tls-listen", "", "https listen address (empty: none)")
	cert := flag.String("tls-cert", "", "PEM certificate for -tls-listen")
	key := flag.String("tls-key", "", "PEM key for -tls-listen")
	flag.Parse()
	s, err := sink.New()
	if err != nil {
		fail(err)
	}
	s.Log = os.Stderr
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(err)
	}
	fmt.Fprintln(os.Stderr, "sink: listening on", ln.Addr())
	errc := make(chan error, 2)
	go func() { errc <- s.Serve(ln) }()
	if *tlsListen != "" {
		conf, err := benchtls.ServerConfig(*cert, *key)
		if err != nil {
			fail(err)
		}
		tln, err := net.Listen("tcp", *tlsListen)
		if err != nil {
			fail(err)
		}
		fmt.Fprintln(os.Stderr, "sink: listening on", tln.Addr(), "(https)")
		go func() { errc <- s.ServeTLS(tln, conf) }()
	}
	fail(<-errc) // Serve returns only when a listener fails
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sink:", err)
	os.Exit(1)
}
