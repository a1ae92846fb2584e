// Command loadgen sends SigV4-signed PutObject requests over N keep-alive connections and prints
// one JSON object with requests/s, MiB/s and latency percentiles (see bench/internal/loadgen).
//
//	loadgen -addr 127.0.0.1:8080 -bucket bench -size 1MiB -c 16 -d 10s -access-key AK -secret-key SK
//	loadgen ... -n 1000                 # a number of requests instead of a duration
//	loadgen ... -idle 10000 -hold 10s   # open idle keep-alive connections; prints READY <n> when open
//	loadgen ... -mkbucket               # create the bucket (CreateBucket), then exit
//	loadgen ... -tls-ca ca.pem          # https: TLS 1.3, the server verified against ca.pem
//	loadgen ... -rate 40MiB             # pace each connection's bodies, as a client behind a slower link
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
	"github.com/mizuchi/uploadr/bench/internal/loadgen"
)

func main() { os.Exit(run()) }

func run() int {
	var (
		cfg      loadgen.Config
		size     = flag.String("size", "1MiB", "object size (4KiB, 1MiB, 64MiB, 1GiB or bytes)")
		unsigned = flag.Bool("unsigned", false, "send no Authorization header (buckets with auth: none)")
		chunks   = flag.Bool("signed-chunks", false, "send bodies as signed aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 64 KiB chunks), as minio-go does")
		idle     = flag.Int("idle", 0, "open this many idle keep-alive connections instead of a load run")
		hold     = flag.Duration("hold", 10*time.Second, "with -idle: how long to keep the connections idle")
		mkbucket = flag.Bool("mkbucket", false, "create the bucket with a signed CreateBucket and exit")
		tlsCA    = flag.String("tls-ca", "", "speak https (TLS 1.3), verifying the server against this PEM CA")
		tlsName  = flag.String("tls-server-name", "", "with -tls-ca: the name to verify (default: -addr's host)")
		rate     = flag.String("rate", "0", "pace each connection's bodies to this many bytes per second (e.g. 40MiB), as a client behind a slower link; 0: unpaced")
	)
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "server host:port")
	flag.StringVar(&cfg.Host, "host", "", "Host header (default: -addr)")
	flag.StringVar(&cfg.Bucket, "bucket", "bench", "bucket")
	flag.StringVar(&cfg.KeyPrefix, "key-prefix", "lg/", "object key prefix; keys are <prefix><connection>")
	flag.IntVar(&cfg.Conns, "c", 1, "connections (one request in flight each)")
	flag.DurationVar(&cfg.Duration, "d", 0, "duration of the run (in-flight requests are cut off at the end)")
	flag.Int64Var(&cfg.Count, "n", 0, "number of requests (when -d is 0)")
	flag.StringVar(&cfg.Creds.AccessKey, "access-key", os.Getenv("AWS_ACCESS_KEY_ID"), "access key (default $AWS_ACCESS_KEY_ID)")
	flag.StringVar(&cfg.Creds.SecretKey, "secret-key", os.Getenv("AWS_SECRET_ACCESS_KEY"), "secret key (default $AWS_SECRET_ACCESS_KEY)")
	flag.StringVar(&cfg.Region, "region", "us-east-1", "region of the signature's scope")
	flag.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "per-request timeout in -n mode")
	flag.Parse()
	n, err := loadgen.ParseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg.Size, cfg.Sign, cfg.SignedChunks = n, !*unsigned, *chunks
	if cfg.Rate, err = loadgen.ParseSize(*rate); err != nil {
		fmt.Fprintln(os.Stderr, "-rate:", err)
		return 2
	}
	if *tlsCA != "" {
		name := *tlsName
		if name == "" {
			if name, _, err = net.SplitHostPort(cfg.Addr); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
		}
		if cfg.TLS, err = benchtls.ClientConfig(*tlsCA, name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	enc := json.NewEncoder(os.Stdout)
	switch {
	case *mkbucket:
		if err := loadgen.MakeBucket(cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case *idle > 0:
		cfg.Conns = *idle
		r, err := loadgen.Idle(ctx, cfg, *hold, func(n int64) { fmt.Printf("READY %d\n", n) })
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		enc.Encode(r)
	default:
		r, err := loadgen.Run(ctx, cfg)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		enc.Encode(r)
		if r.Errors > 0 {
			fmt.Fprintf(os.Stderr, "loadgen: %d errors, first: %s\n", r.Errors, r.FirstError)
		}
	}
	return 0
}
