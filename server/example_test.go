package server_test

import (
	"flag"
	"fmt"

	"github.com/mizuchi/uploadr/server"
)

// A config-less start: one bucket from flags, credentials from the environment (here a map).
func ExampleFlags_Config() {
	fs := flag.NewFlagSet("mizuchi-uploadr", flag.ContinueOnError)
	flags := server.RegisterFlags(fs)
	_ = fs.Parse([]string{"-bucket", "uploads", "-upstream", "http://10.0.0.5:7070", "-upstream-bucket", "real",
		"-part-size", "16MiB", "-upstream-max-conns", "256"})
	env := map[string]string{
		server.EnvUpstreamAccessKey: "upstream-key", server.EnvUpstreamSecretKey: "upstream-secret",
		server.EnvClientAccessKey: "client-key", server.EnvClientSecretKey: "client-secret",
	}
	cfg, err := flags.Config(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		fmt.Println(err)
		return
	}
	b := cfg.Buckets[0]
	fmt.Println(b.Name, "->", b.S3.Endpoint+"/"+b.S3.Bucket, b.S3.Region)
	fmt.Println("part size", b.Upload.PartSize, "max conns", cfg.Upstream.MaxConns, "drain", cfg.Server.DrainTimeout)
	// Output:
	// uploads -> http://10.0.0.5:7070/real us-east-1
	// part size 16777216 max conns 256 drain 30s
}
