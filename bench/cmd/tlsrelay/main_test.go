package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
	"github.com/mizuchi/uploadr/bench/internal/loadgen"
	"github.com/mizuchi/uploadr/bench/internal/sink"
	"github.com/mizuchi/uploadr/s3sig"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// TestRelayBothWays runs loadgen through the relay in its two modes: https in front of the plain
// sink (client side TLS), and plain in front of the https sink (upstream side TLS).
func TestRelayBothWays(t *testing.T) {
	files, err := benchtls.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srvConf, _ := benchtls.ServerConfig(files.Cert, files.Key)
	cliConf, err := benchtls.ClientConfig(files.CA, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{"client", "upstream"} {
		s, err := sink.New()
		if err != nil {
			t.Fatal(err)
		}
		up := listen(t)
		r := relay{upstream: up.Addr().String()}
		var load loadgen.Config
		if side == "client" {
			go s.Serve(up)
			r.serverTLS = srvConf
			load.TLS = cliConf
		} else {
			go s.ServeTLS(up, srvConf)
			r.upstreamTLS = cliConf
		}
		front := listen(t)
		go r.serve(front)
		load.Addr, load.Bucket, load.Size, load.Conns, load.Count = front.Addr().String(), "b", 1<<20, 2, 8
		load.Sign, load.Creds = true, s3sig.Credentials{AccessKey: "AK", SecretKey: "SK"}
		res, err := loadgen.Run(context.Background(), load)
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests != 8 || res.Errors != 0 || s.Stats.BodyBytes.Load() != 8<<20 {
			t.Errorf("%s side: %+v, sink got %d bytes; want 8 requests of 1 MiB", side, res, s.Stats.BodyBytes.Load())
		}
		tlsSeen := res.TLS
		if side == "upstream" {
			tlsSeen = strings.Join(s.TLSSuites(), ",")
		}
		if !strings.HasPrefix(tlsSeen, "TLS 1.3 ") {
			t.Errorf("%s side: negotiated %q; want TLS 1.3", side, tlsSeen)
		}
	}
}
