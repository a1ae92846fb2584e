package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
)

// haproxyConf is HAProxy as a plain HTTP reverse proxy, configured as it is run for speed: mode http,
// bodies spliced when the kernel can (option splice-auto, 1 MiB pipes), idle upstream connections
// shared between clients (http-reuse always), keep-alive on both sides, one thread per CPU as nginx
// gets one worker per CPU (-peer-threads sets both), no log. maxconn is high enough for the 10,000
// idle connections; when RLIMIT_NOFILE cannot be raised to what HAProxy wants for it (2×maxconn and
// pipes; these machines cap it at 20,000), no strict-limits lets it start with the limit it has, as
// nginx does with worker_rlimit_nofile. %[1]s: the frontend's bind line, %[2]s: the server line,
// %[3]s: the TLS defaults of the global section, %[4]d: the threads.
const haproxyConf = `global
  nbthread %[4]d
  maxconn 40000
  no strict-limits
  tune.pipesize 1048576
%[3]s
defaults
  mode http
  option splice-auto
  http-reuse always
  maxconn 40000
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s
  timeout http-request 30s

frontend bench
  %[1]s
  default_backend up

backend up
  %[2]s
`

// haproxyTLSGlobal pins HAProxy's TLS to what every other TLS peer of the run speaks: TLS 1.3 only,
// benchtls.Suite.
const haproxyTLSGlobal = `  ssl-default-bind-ciphersuites %[1]s
  ssl-default-bind-options ssl-min-ver TLSv1.3
  ssl-default-server-ciphersuites %[1]s
  ssl-default-server-options ssl-min-ver TLSv1.3
`

// haproxyConfig is the configuration text of an HAProxy target listening on addr in front of up.
// With tls.client it terminates TLS with the run's certificate (bind … ssl crt); with tls.upstream it
// dials the sink's https address (server … ssl), verifying it against the run's CA for localhost.
// threads is its nbthread.
func haproxyConfig(addr string, up *upstream, tls tlsSides, files benchtls.Files, threads int) string {
	bind := "bind " + addr
	if tls.client {
		bind += " ssl crt " + files.Combined + " alpn http/1.1"
	}
	server := "server sink " + up.addr
	if tls.upstream {
		server = "server sink " + up.tlsAddr + " ssl verify required ca-file " + files.CA + " verifyhost localhost"
	}
	global := ""
	if tls.client || tls.upstream {
		global = fmt.Sprintf(haproxyTLSGlobal, benchtls.Suite)
	}
	return fmt.Sprintf(haproxyConf, bind, server, global, threads)
}

// startHAProxy starts an HAProxy target from a configuration in its own temp dir, in the foreground
// (haproxy -db), one process with r.peerThreadCount() threads; r.stop ends it by pid (SIGTERM, then
// SIGKILL after the deadline).
func (r *runner) startHAProxy(name string, up *upstream, tls tlsSides) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(r.work, name+"-"+up.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(haproxyConfig(addr, up, tls, r.tls, r.peerThreadCount())), 0o644); err != nil {
		return nil, err
	}
	if out, err := exec.Command(r.haproxy, "-c", "-f", conf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s refuses %s: %v: %s", r.haproxy, conf, err, strings.TrimSpace(string(out)))
	}
	p, err := r.start(name+"-"+up.name, nil, r.haproxy, "-db", "-f", conf)
	if err != nil {
		return nil, err
	}
	if err := waitReady(p, addr); err != nil {
		return nil, err
	}
	return &target{name: name, addr: addr, bucket: "bench", openBucket: "bench", main: p, tls: tls.client}, nil
}

// peerThreadCount is HAProxy's nbthread and the number of nginx's workers: -peer-threads, or one per CPU.
func (r *runner) peerThreadCount() int {
	if r.peerThreads > 0 {
		return r.peerThreads
	}
	return runtime.NumCPU()
}

// nginxWorkers is nginx's worker_processes: -peer-threads, or auto (one per CPU).
func (r *runner) nginxWorkers() string {
	if r.peerThreads > 0 {
		return strconv.Itoa(r.peerThreads)
	}
	return "auto"
}

func (r *runner) haproxyVersion() string {
	if r.haproxy == "" {
		return ""
	}
	out, _ := exec.Command(r.haproxy, "-v").CombinedOutput()
	first, _, _ := strings.Cut(string(out), "\n")
	v, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(first), "HAProxy version "), " ")
	return v
}
