// Command sink is the benchmarks' fast S3 upstream (see package bench/internal/sink): it accepts any
// SigV4-signed upload request, discards the body and answers like S3.
//
//	sink -listen 127.0.0.1:7071
package main

import (
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/mizuchi/uploadr/bench/internal/sink"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7071", "listen address")
	flag.Parse()
	s, err := sink.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sink:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "sink: listening on", ln.Addr())
	err = s.Serve(ln) // returns only when the listener fails
	fmt.Fprintln(os.Stderr, "sink:", err)
	os.Exit(1)
}
