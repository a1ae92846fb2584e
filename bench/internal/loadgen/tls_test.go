package loadgen

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
	"github.com/mizuchi/uploadr/bench/internal/sink"
)

func TestRunTLS(t *testing.T) {
	files, err := benchtls.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srvConf, err := benchtls.ServerConfig(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	cliConf, err := benchtls.ClientConfig(files.CA, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{4 << 10, InlineMax + 1, 3 << 20} {
		s, err := sink.New()
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go s.ServeTLS(ln, srvConf)
		r, err := Run(context.Background(), Config{Addr: ln.Addr().String(), Bucket: "b", Size: size, Conns: 2, Count: 6, Sign: true, Creds: creds, TLS: cliConf})
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests != 6 || r.Errors != 0 || r.BodyBytes != 6*size {
			t.Errorf("size %d: got %+v; want 6 requests, 0 errors, %d bytes", size, r, 6*size)
		}
		if got := s.Stats.BodyBytes.Load(); got != 6*size {
			t.Errorf("size %d: sink received %d; want %d", size, got, 6*size)
		}
		if !strings.HasPrefix(r.TLS, "TLS 1.3 ") || len(s.TLSSuites()) != 1 || s.TLSSuites()[0] != r.TLS {
			t.Errorf("size %d: loadgen negotiated %q, sink %q; want the same TLS 1.3 suite", size, r.TLS, s.TLSSuites())
		}
	}
}
