package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
	"github.com/mizuchi/uploadr/bench/internal/loadgen"
)

// The TLS phase (issue 11): one sink serving both http and https (one certificate for the whole
// run, benchtls), and every proxy twice — with TLS on the client side (the load speaks https to the
// proxy, the proxy plain http to the sink) and with TLS on the upstream side (the load speaks plain
// http, the proxy https to the sink) — all interleaved in the same repetitions. Splice cannot pass
// through TLS, so every proxy copies in user space here; mizuchi-uploadr's splice path is the sink
// phase's mizuchi-splice.

// tlsSides says where a target speaks TLS.
type tlsSides struct {
	client   bool // the load speaks https to the target
	upstream bool // the target speaks https to the sink
	// goroutine: mizuchi-uploadr serves its https clients with server.tls.driver goroutine (one
	// goroutine per connection) instead of the event loops.
	goroutine bool
}

// tlsPhaseTargets are the TLS phase's targets in report order; direct is the load speaking https
// straight to the sink.
var tlsPhaseTargets = []string{
	"direct",
	"mizuchi-tls-client", baseTLSClient, "mizuchi-tls-client-goroutine", "nginx-tls-client", "haproxy-tls-client", "tlsrelay-client",
	"mizuchi-tls-upstream", baseTLSUpstream, "nginx-tls-upstream", "haproxy-tls-upstream", "tlsrelay-upstream",
}

// The baseline binary's targets in the tls phase (with -baseline): configured as mizuchi-tls-client
// and mizuchi-tls-upstream.
const (
	baseTLSClient   = "mizuchi-base-tls-client"
	baseTLSUpstream = "mizuchi-base-tls-upstream"
)

// tlsFiles writes the run's certificate, key and CA into the work dir once.
func (r *runner) tlsFiles() (benchtls.Files, error) {
	if r.tls.CA != "" {
		return r.tls, nil
	}
	f, err := benchtls.Write(r.work)
	if err != nil {
		return f, fmt.Errorf("writing the TLS certificate: %w", err)
	}
	r.tls = f
	return f, nil
}

// startTLSTargets starts the TLS phase's selected targets in front of up (a sink with https).
func (r *runner) startTLSTargets(ctx context.Context, up *upstream) ([]*target, error) {
	if _, err := r.tlsFiles(); err != nil {
		return nil, err
	}
	starts := map[string]func() (*target, error){
		"mizuchi-tls-client": func() (*target, error) {
			return r.startMizuchi("mizuchi-tls-client", r.mizuchi, true, up, tlsSides{client: true})
		},
		"mizuchi-tls-client-goroutine": func() (*target, error) {
			return r.startMizuchi("mizuchi-tls-client-goroutine", r.mizuchi, true, up, tlsSides{client: true, goroutine: true})
		},
		"mizuchi-tls-upstream": func() (*target, error) {
			return r.startMizuchi("mizuchi-tls-upstream", r.mizuchi, true, up, tlsSides{upstream: true})
		},
		"tlsrelay-client":   func() (*target, error) { return r.startTLSRelay("tlsrelay-client", up, tlsSides{client: true}) },
		"tlsrelay-upstream": func() (*target, error) { return r.startTLSRelay("tlsrelay-upstream", up, tlsSides{upstream: true}) },
	}
	if r.baseline != "" {
		starts[baseTLSClient] = func() (*target, error) {
			return r.startMizuchi(baseTLSClient, r.baseline, true, up, tlsSides{client: true})
		}
		starts[baseTLSUpstream] = func() (*target, error) {
			return r.startMizuchi(baseTLSUpstream, r.baseline, true, up, tlsSides{upstream: true})
		}
	}
	if r.nginx != "" {
		starts["nginx-tls-client"] = func() (*target, error) { return r.startNginx("nginx-tls-client", up, tlsSides{client: true}) }
		starts["nginx-tls-upstream"] = func() (*target, error) { return r.startNginx("nginx-tls-upstream", up, tlsSides{upstream: true}) }
	}
	if r.haproxy != "" {
		starts["haproxy-tls-client"] = func() (*target, error) { return r.startHAProxy("haproxy-tls-client", up, tlsSides{client: true}) }
		starts["haproxy-tls-upstream"] = func() (*target, error) { return r.startHAProxy("haproxy-tls-upstream", up, tlsSides{upstream: true}) }
	}
	var ts []*target
	for _, name := range tlsPhaseTargets {
		if !r.want(name) {
			continue
		}
		if name == "direct" {
			ts = append(ts, &target{name: "direct", addr: up.tlsAddr, bucket: "bench", openBucket: "bench", tls: true})
			continue
		}
		start := starts[name]
		if start == nil {
			continue // nginx or HAProxy not given
		}
		t, err := start()
		if err != nil {
			return nil, err
		}
		t.start = start
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("no target selected in the tls phase")
	}
	return ts, ctx.Err()
}

// startTLSRelay starts bench/cmd/tlsrelay: crypto/tls on the given side, io.Copy, no HTTP.
func (r *runner) startTLSRelay(name string, up *upstream, tls tlsSides) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-listen", addr}
	if tls.client {
		args = append(args, "-upstream", up.addr, "-tls-cert", r.tls.Cert, "-tls-key", r.tls.Key)
	}
	if tls.upstream {
		args = append(args, "-upstream", up.tlsAddr, "-upstream-ca", r.tls.CA)
	}
	p, err := r.start(name+"-"+up.name, nil, filepath.Join(r.bin, "tlsrelay"), args...)
	if err != nil {
		return nil, err
	}
	return &target{name: name, addr: addr, bucket: "bench", openBucket: "bench", main: p, tls: tls.client}, waitReady(p, addr)
}

// tlsWorkloads are the TLS phase's workloads: 4 KiB PUTs on 16 keep-alive connections (req/s and
// CPU per request), one 1 GiB stream (CPU per GiB), 16 concurrent 1 GiB streams (peak RSS, CPU per
// GiB); full adds 1 MiB PUTs on 16 connections and 4 KiB PUTs on one. Every 1 GiB run starts fresh
// processes, so that peak RSS is that run's. Not in compare mode.
func tlsWorkloads(mode string, d time.Duration) []workload {
	if mode == "compare" {
		return nil
	}
	load := func(size int64, c int) workload {
		return workload{name: fmt.Sprintf("put %s c%d", loadgen.FormatSize(size), c), kind: "load", size: size, conns: c, duration: d, fresh: size >= 1<<30}
	}
	w := []workload{load(4<<10, 16), load(1<<30, 1), load(1<<30, 16)}
	if mode == "full" {
		w = append(w, load(4<<10, 1), load(1<<20, 16))
		// Clients behind a slower link (40 MiB/s each, 8 at once): their bodies arrive more slowly
		// than a proxy can read them, so how often it is woken per GiB shows (read batching).
		w = append(w, workload{name: "put 256MiB x16 c8 paced 40MiB/s", kind: "load", size: 256 << 20, conns: 8, count: 16, rate: 40 << 20})
	}
	return w
}

// negotiatedSuites lists the TLS versions and suites the sink logged (the proxies' upstream side),
// comma-separated.
func negotiatedSuites(sinkLog string) string {
	b, err := os.ReadFile(sinkLog)
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if _, d, ok := strings.Cut(l, "TLS connection negotiated "); ok && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return strings.Join(out, ", ")
}
