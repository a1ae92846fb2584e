package main

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

var targetNotes = map[string]string{
	"direct":              "no proxy: the load generator talks to the upstream",
	"mizuchi-splice":      "bin/mizuchi-uploadr, zero copy on (splice, 1 MiB pipes), SigV4 verified and re-signed",
	baseTarget:            "mizuchi-uploadr built at the baseline revision `%s` (git archive), same configuration and flags as mizuchi-splice, run back to back with it",
	"mizuchi-copy":        "bin/mizuchi-uploadr -zero-copy=false (user-space copy path), SigV4 verified and re-signed",
	"nginx":               "Debian's nginx, plain reverse proxy: proxy_request_buffering off, HTTP/1.1 upstream keep-alive, worker_processes auto",
	"splicerelay":         "bench/cmd/splicerelay: two sockets, one 1 MiB pipe, splice(2), no HTTP — the physical floor",
	"splicerelay-threads": "bench/cmd/splicerelay -threads: the bare relay with filling and draining overlapped — a reader and a writer thread per connection over the one pipe, waiting in poll(2) instead of Go's poller",
	"goproxy":             "bench/cmd/goproxy: net/http + httputil.ReverseProxy (goroutine per connection), re-signs with s3sig",
	"haproxy":             "Debian's HAProxy: mode http, option splice-auto, http-reuse always, tune.pipesize 1 MiB, nbthread one per CPU, keep-alive both sides, no log",

	"mizuchi-tls-client":           "tls phase: mizuchi-uploadr's https listener (server.tls, min_version 1.3) in front of the plain sink; bodies take the copy path",
	"mizuchi-base-tls-client":      "tls phase: the baseline revision's mizuchi-uploadr (as mizuchi-base-splice) configured as mizuchi-tls-client",
	"mizuchi-base-tls-upstream":    "tls phase: the baseline revision's mizuchi-uploadr (as mizuchi-base-splice) configured as mizuchi-tls-upstream",
	"mizuchi-tls-client-goroutine": "tls phase: mizuchi-tls-client with server.tls.driver goroutine (one goroutine per connection, the older driver) instead of the event loops",
	"nginx-tls-client":             "tls phase: nginx as above with `listen … ssl` (TLS 1.3, ssl_conf_command Ciphersuites pinned) in front of the plain sink",
	"haproxy-tls-client":           "tls phase: HAProxy as above with `bind … ssl crt` (TLS 1.3, ciphersuites pinned) in front of the plain sink",
	"tlsrelay-client":              "tls phase: bench/cmd/tlsrelay, crypto/tls server + io.Copy to the plain sink, no HTTP (the floor of a Go TLS relay)",
	"mizuchi-tls-upstream":         "tls phase: mizuchi-uploadr (plain listener) with an https endpoint (s3.ca_file = the run's CA); bodies take the copy path",
	"nginx-tls-upstream":           "tls phase: nginx as above with `proxy_pass https://` (keep-alive pool, proxy_ssl_session_reuse, certificate verified, TLS 1.3 pinned)",
	"haproxy-tls-upstream":         "tls phase: HAProxy as above with `server … ssl verify required ca-file` (connections reused, TLS 1.3 pinned)",
	"tlsrelay-upstream":            "tls phase: bench/cmd/tlsrelay, plain listener, crypto/tls client to the https sink + io.Copy, no HTTP",
}

// phaseTitles are the section titles of the phases.
var phaseTitles = map[string]string{
	"sink":      "Upstream: sink",
	"tls":       "TLS phase (sink over https and http; each proxy with TLS on one side)",
	"versitygw": "Upstream: versitygw",
}

// markdown writes the results file: the header, the ratios against the baseline, the verdicts of
// issues 5 and 11, what was measured, one section per phase, the micro-benchmarks and the profiles.
func (r *report) markdown(w io.Writer, vs, v11 []verdict, base []cmpRow, png, cmdline string) {
	r.markdownHeader(w, png, cmdline)
	if r.hasBaseline() {
		r.markdownBaseline(w, base)
	}
	if len(vs) > 0 {
		fmt.Fprintln(w, "## Targets of issue 5")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "mizuchi-uploadr with splice, against the sink (so the figures are the proxy's own cost), medians.")
		fmt.Fprintln(w)
		verdictTable(w, vs)
	}
	if len(v11) > 0 {
		r.markdownIssue11(w, v11)
	}
	r.markdownMeasured(w)
	for _, phase := range []string{"sink", "tls", "versitygw"} {
		r.markdownPhase(w, phase)
	}
	r.markdownMicros(w)
	r.markdownProfiles(w)
}

// markdownHeader writes the title, the revisions, the machine and how to reproduce the run.
func (r *report) markdownHeader(w io.Writer, png, cmdline string) {
	m := r.rf.Meta
	fmt.Fprintf(w, "# Benchmark results %s (%s run)\n\n", strings.SplitN(m["date"], "T", 2)[0], m["mode"])
	fmt.Fprintf(w, "mizuchi-uploadr revision `%s`", m["rev"])
	if m["mizuchi_flags"] != "" {
		fmt.Fprintf(w, " run with `%s`", m["mizuchi_flags"])
	}
	if r.hasBaseline() {
		fmt.Fprintf(w, ", baseline revision `%s`", m["baseline_rev"])
	}
	fmt.Fprint(w, ". ")
	if m["peer_threads"] != "" {
		fmt.Fprintf(w, "HAProxy and nginx ran with %s thread(s) each (-peer-threads). ", m["peer_threads"])
	}
	nginx := ""
	if m["nginx"] != "" {
		nginx = ", nginx " + m["nginx"]
	}
	if m["haproxy"] != "" {
		nginx += ", HAProxy " + m["haproxy"]
	}
	fmt.Fprintf(w, "Machine: %s CPUs (%s), Linux %s, %s%s. Loopback only; every figure is the median of %s\n", m["cpus"], m["cpu_model"], m["kernel"], m["go"], nginx, m["reps"])
	fmt.Fprintf(w, "interleaved repetitions (each workload runs against every target in turn, the order rotated per repetition) of\n")
	fmt.Fprintf(w, "%s per load run. The machine is shared and noisy: read the ratios, not the absolute figures.\n\n", m["duration"])
	fmt.Fprintf(w, "Reproduce: `%s` (or `make bench` for the quick subset). Raw JSON and the logs of each process are in\n`bench/results/tmp/` after a run (git-ignored).\n\n", cmdline)
	if m["rerun"] != "" {
		fmt.Fprintf(w, "Re-run after a fix to the harness and merged into this file: %s.\n\n", m["rerun"])
	}
	if png != "" {
		fmt.Fprintf(w, "![chart](%s)\n\n", png)
	}
}

// verdictTable writes one row per verdict.
func verdictTable(w io.Writer, vs []verdict) {
	fmt.Fprintln(w, "| target | workload | measured | goal | verdict | figures |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, v := range vs {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", v.goal, v.workload, v.valueString(), v.limitString(), v.status(), v.detail)
	}
	fmt.Fprintln(w)
}

// markdownIssue11 writes the by-path table, the TLS suites negotiated and the verdicts of issue 11.
func (r *report) markdownIssue11(w io.Writer, v11 []verdict) {
	fmt.Fprintln(w, "## By path, and the targets of issue 11 (HAProxy and TLS)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Medians against the sink. The plain rows are the sink phase (mizuchi-uploadr splices; the relay is the bare")
	fmt.Fprintln(w, "splice relay); the TLS rows are the tls phase, where every proxy copies in user space (the relay is crypto/tls")
	fmt.Fprintln(w, "+ io.Copy). CPU is the proxy's own (all its processes); peak RSS is VmHWM of a freshly started proxy.")
	fmt.Fprintln(w)
	r.pathTable(w)
	if r.rf.Meta["tls_upstream_suites"] != "" || len(r.workloads("tls", "")) > 0 {
		fmt.Fprintf(w, "TLS negotiated: load → proxy %s; proxy → sink %s (every peer pinned to TLS 1.3; one ECDSA P-256 certificate made for the run).\n\n",
			orDash(r.clientSuites()), orDash(r.rf.Meta["tls_upstream_suites"]))
	}
	verdictTable(w, v11)
}

// markdownMeasured describes the targets that ran, the upstreams, the load and the proxy's configuration.
func (r *report) markdownMeasured(w io.Writer) {
	m := r.rf.Meta
	fmt.Fprintln(w, "## What was measured")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | what it is |")
	fmt.Fprintln(w, "|---|---|")
	ran := map[string]bool{}
	for _, x := range r.rf.Results {
		ran[x.Target] = true
	}
	for _, t := range targetOrder {
		if !ran[t] {
			continue
		}
		note := targetNotes[t]
		if t == baseTarget {
			note = fmt.Sprintf(note, m["baseline_rev"])
		}
		if n := m["peer_threads"]; n != "" {
			note = strings.NewReplacer("nbthread one per CPU", "nbthread "+n, "worker_processes auto", "worker_processes "+n).Replace(note)
		}
		fmt.Fprintf(w, "| %s | %s |\n", t, note)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Upstreams: `sink` is bench/cmd/sink (checks that a SigV4 Authorization header is present, splices the body")
	fmt.Fprintln(w, "into /dev/null, answers like S3), to measure the proxies' own cost; `versitygw` is versitygw v1.8.0 with its")
	fmt.Fprintln(w, "data on /dev/shm, the end-to-end picture (it costs about a core per 350 MiB/s, so it is the bottleneck there).")
	fmt.Fprintln(w, "Load: bench/cmd/loadgen (SigV4-signed PUTs with s3sig, UNSIGNED-PAYLOAD, keep-alive, bodies > 64 KiB sent with")
	fmt.Fprintln(w, "sendfile from /dev/shm; in a duration run the requests still in flight at the end are cut off and their bytes")
	fmt.Fprintln(w, "counted) and wrk with scripts/wrk-put.lua against buckets configured `auth: none`. CPU is utime+stime of")
	fmt.Fprintln(w, "/proc/<pid>/stat of the target's processes (nginx: master + workers) read before and after each run; peak RSS is")
	fmt.Fprintln(w, "VmHWM, reset through /proc/<pid>/clear_refs before each run (nginx: sum over its processes). The proxy's")
	switch m["mizuchi_access_log"] {
	case "off":
		fmt.Fprintln(w, "configuration for the run: defaults except `upstream.max_idle: 1024`, `idle_timeout: 300s` and `log.access: false`.")
	case "default":
		fmt.Fprintln(w, "configuration for the run: defaults except `upstream.max_idle: 1024` and `idle_timeout: 300s`; the access log at its")
		fmt.Fprintln(w, "default, since a binary of the run does not take `log.access`.")
	default: // runs from before the runner recorded it
		fmt.Fprintln(w, "configuration for the run: defaults except `upstream.max_idle: 1024` and `idle_timeout: 300s`.")
	}
	fmt.Fprintln(w)
}

// markdownPhase writes the section of one phase (nothing if it ran no workload): load and wrk
// tables first, then the idle ones.
func (r *report) markdownPhase(w io.Writer, phase string) {
	if len(r.workloads(phase, "")) == 0 {
		return
	}
	fmt.Fprintf(w, "## %s\n\n", phaseTitles[phase])
	for _, kind := range []string{"load", "wrk"} {
		for _, wl := range r.workloads(phase, kind) {
			r.loadTable(w, phase, wl)
		}
	}
	for _, wl := range r.workloads(phase, "idle") {
		r.idleTable(w, phase, wl)
	}
}

// markdownMicros writes the Go micro-benchmarks, if any were read.
func (r *report) markdownMicros(w io.Writer) {
	if len(r.micros) == 0 {
		return
	}
	fmt.Fprintln(w, "## Go micro-benchmarks")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| package | benchmark | ns/op | MB/s | B/op | allocs/op |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, m := range r.micros {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", m.pkg, m.name, fmtNum(m.nsOp), fmtNum(m.mbS), fmtNum(m.bytesOp), fmtNum(m.allocsOp))
	}
	fmt.Fprintln(w)
}

// markdownProfiles links the perf profiles of the run, sorted by name, if any were recorded.
func (r *report) markdownProfiles(w io.Writer) {
	if len(r.rf.Perf) == 0 {
		return
	}
	fmt.Fprintln(w, "## Profiles")
	fmt.Fprintln(w)
	keys := make([]string, 0, len(r.rf.Perf))
	for k := range r.rf.Perf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "- %s: [%s](%s)\n", k, filepath.Base(r.rf.Perf[k]), filepath.Join(filepath.Base(filepath.Dir(r.rf.Perf[k])), filepath.Base(r.rf.Perf[k])))
	}
	fmt.Fprintln(w)
}

func (r *report) loadTable(w io.Writer, phase, wl string) {
	fmt.Fprintf(w, "### %s\n\n", wl)
	fmt.Fprintln(w, "| target | req/s | MiB/s | p50 ms | p90 ms | p99 ms | CPU s/GiB | CPU µs/req | peak RSS MiB | upstream CPU s/GiB | spread | errors |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, t := range r.targets(phase, wl) {
		a := r.get(phase, wl, t)
		rss := fmtNum(a.peakRSS)
		if t == "direct" {
			rss = "—"
		}
		errs := fmt.Sprint(a.errors)
		if a.errors > 0 && a.firstError != "" {
			errs += " (" + shorten(a.firstError, 60) + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", t, fmtNum(a.rps), fmtNum(a.mibps),
			fmtNum(a.p50), fmtNum(a.p90), fmtNum(a.p99), fmtNum(a.cpuPerGiB), fmtNum(a.cpuPerReq), rss, fmtNum(a.upCPUPerGiB), a.spread, errs)
	}
	fmt.Fprintln(w)
}

func (r *report) idleTable(w io.Writer, phase, wl string) {
	fmt.Fprintf(w, "### %s keep-alive connections, idle (one 4 KiB PUT each, then held)\n\n", strings.TrimPrefix(wl, "idle "))
	fmt.Fprintln(w, "| target | RSS while idle MiB | peak RSS MiB | opened | alive after the hold | CPU µs per connection |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, t := range r.targets(phase, wl) {
		a := r.get(phase, wl, t)
		perConn := math.NaN()
		if a.requests > 0 {
			perConn = a.cpuPerReq
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s |\n", t, fmtNum(a.idleRSS), fmtNum(a.peakRSS), a.opened, a.alive, fmtNum(perConn))
	}
	fmt.Fprintln(w)
}

func shorten(s string, n int) string {
	s = strings.ReplaceAll(s, "|", "/")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// clientSuites lists the TLS versions and suites the load negotiated with the TLS targets.
func (r *report) clientSuites() string {
	var out []string
	for _, x := range r.rf.Results {
		if x.TLS != "" && !slices.Contains(out, x.TLS) {
			out = append(out, x.TLS)
		}
	}
	return strings.Join(out, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
