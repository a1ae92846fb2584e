// Command tlsrelay is the TLS benchmarks' bare Go relay: what crypto/tls plus io.Copy costs with no
// HTTP at all. Each client connection gets one upstream connection; bytes move with io.Copy in both
// directions (one goroutine each), through crypto/tls on the side that speaks TLS. Two modes:
//
//	tlsrelay -listen 127.0.0.1:7443 -upstream 127.0.0.1:7071 -tls-cert cert.pem -tls-key key.pem   # https in front of a plain upstream
//	tlsrelay -listen 127.0.0.1:7072 -upstream 127.0.0.1:7443 -upstream-ca ca.pem                    # plain in front of an https upstream
//
// Both sides TLS is allowed too. TLS is 1.3 only (bench/internal/benchtls), as for every TLS peer
// of the benchmarks.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7443", "listen address")
	upstream := flag.String("upstream", "127.0.0.1:7071", "upstream host:port")
	cert := flag.String("tls-cert", "", "serve TLS with this PEM certificate (with -tls-key)")
	key := flag.String("tls-key", "", "PEM key of -tls-cert")
	ca := flag.String("upstream-ca", "", "dial the upstream with TLS, verifying it against this PEM CA")
	flag.Parse()
	r := relay{upstream: *upstream}
	var err error
	if *cert != "" {
		if r.serverTLS, err = benchtls.ServerConfig(*cert, *key); err != nil {
			fail(err)
		}
	}
	if *ca != "" {
		host, _, err := net.SplitHostPort(*upstream)
		if err != nil {
			fail(err)
		}
		if r.upstreamTLS, err = benchtls.ClientConfig(*ca, host); err != nil {
			fail(err)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "tlsrelay: listening on %s (tls %v), upstream %s (tls %v)\n", ln.Addr(), r.serverTLS != nil, r.upstream, r.upstreamTLS != nil)
	fail(r.serve(ln))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tlsrelay:", err)
	os.Exit(1)
}

// relay is the relay's configuration: a nil TLS config means plain TCP on that side.
type relay struct {
	upstream    string
	serverTLS   *tls.Config // client side
	upstreamTLS *tls.Config // upstream side
}

// serve accepts connections on ln until it fails, relaying each in its own goroutines.
func (r relay) serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go r.relay(c)
	}
}

// closeWriter is a connection that can send its end of stream (TCP FIN, TLS close_notify + FIN).
type closeWriter interface{ CloseWrite() error }

func (r relay) relay(c net.Conn) {
	defer c.Close()
	if r.serverTLS != nil {
		c = tls.Server(c, r.serverTLS) // the handshake runs on the first Read
	}
	u, err := net.Dial("tcp", r.upstream)
	if err != nil {
		return
	}
	if r.upstreamTLS != nil {
		u = tls.Client(u, r.upstreamTLS)
	}
	defer u.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(c, u)
		if cw, ok := c.(closeWriter); ok {
			cw.CloseWrite()
		}
	}()
	if _, err := io.Copy(u, c); err != nil {
		c.Close()
		u.Close()
	} else if cw, ok := u.(closeWriter); ok {
		cw.CloseWrite()
	}
	<-done
}
