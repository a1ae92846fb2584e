package main

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
)

func names(ts []*target) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.name)
	}
	return strings.Join(s, " ")
}

func targetsNamed(ns ...string) []*target {
	var ts []*target
	for _, n := range ns {
		ts = append(ts, &target{name: n})
	}
	return ts
}

func TestRunOrderWithoutBaselineRotates(t *testing.T) {
	ts := targetsNamed("direct", "mizuchi-splice", "nginx")
	want := []string{"direct mizuchi-splice nginx", "mizuchi-splice nginx direct", "nginx direct mizuchi-splice", "direct mizuchi-splice nginx"}
	for rep, w := range want {
		if got := names(runOrder(ts, rep)); got != w {
			t.Errorf("rep %d: %q, want %q", rep, got, w)
		}
	}
}

func TestRunOrderBaselineBesideSpliceAlternating(t *testing.T) {
	ts := targetsNamed("direct", "mizuchi-splice", baseTarget)
	want := []string{
		"direct mizuchi-splice mizuchi-base-splice",
		"mizuchi-base-splice mizuchi-splice direct",
		"direct mizuchi-splice mizuchi-base-splice",
		"mizuchi-base-splice mizuchi-splice direct",
		"direct mizuchi-splice mizuchi-base-splice",
	}
	for rep, w := range want {
		if got := names(runOrder(ts, rep)); got != w {
			t.Errorf("rep %d: %q, want %q", rep, got, w)
		}
	}
	// With more targets the pair still moves through the rotation as one slot.
	ts = targetsNamed("direct", "mizuchi-splice", baseTarget, "mizuchi-copy", "nginx")
	if got, w := names(runOrder(ts, 3)), "nginx direct mizuchi-base-splice mizuchi-splice mizuchi-copy"; got != w {
		t.Errorf("rep 3: %q, want %q", got, w)
	}
}

func TestRunOrderBaselineAloneRotates(t *testing.T) {
	ts := targetsNamed("direct", baseTarget)
	if got, w := names(runOrder(ts, 1)), "mizuchi-base-splice direct"; got != w {
		t.Errorf("%q, want %q", got, w)
	}
}

func TestCompareWorkloads(t *testing.T) {
	w := workloads("sink", "compare", 0, true)
	var got []string
	for _, x := range w {
		got = append(got, x.name)
	}
	if g := strings.Join(got, ", "); g != "put 4KiB c16, put 1MiB c16, put 1GiB x3 c1" {
		t.Errorf("compare workloads %q", g)
	}
	if !w[2].fresh || w[0].fresh || w[2].count != 3 {
		t.Errorf("only the 1 GiB run restarts the proxies: %+v", w)
	}
	if len(workloads("versitygw", "compare", 0, true)) != 0 {
		t.Error("compare has no versitygw phase")
	}
	if role(baseTarget) != "mizuchi-splice" || role("nginx") != "nginx" {
		t.Error("role")
	}
}

func TestTLSWorkloads(t *testing.T) {
	var got []string
	for _, x := range workloads("tls", "quick", time.Second, true) {
		got = append(got, x.name)
		if x.fresh != (x.size == 1<<30) {
			t.Errorf("%s: fresh %v; only the 1 GiB runs restart the proxies", x.name, x.fresh)
		}
	}
	if g := strings.Join(got, ", "); g != "put 4KiB c16, put 1GiB c1, put 1GiB c16" {
		t.Errorf("tls quick workloads %q", g)
	}
	// The full run adds clients paced as behind a slower link (loadgen -rate), whose bodies arrive
	// more slowly than the proxy can read them.
	var paced []string
	for _, x := range workloads("tls", "full", time.Second, true) {
		if x.rate > 0 {
			paced = append(paced, x.name)
			if args := (&runner{}).loadArgs(&target{}, x, "b"); !strings.Contains(strings.Join(args, " "), "-rate 41943040") {
				t.Errorf("%s: loadgen args %q; want -rate 41943040", x.name, args)
			}
		}
	}
	if g := strings.Join(paced, ", "); g != "put 256MiB x16 c8 paced 40MiB/s" {
		t.Errorf("tls full paced workloads %q", g)
	}
	if n := len(workloads("tls", "compare", time.Second, true)); n != 0 {
		t.Errorf("compare has %d tls workloads; want none", n)
	}
}

func TestHAProxyConfig(t *testing.T) {
	up := &upstream{addr: "127.0.0.1:1001", tlsAddr: "127.0.0.1:1002"}
	files := benchtls.Files{CA: "/w/ca.pem", Combined: "/w/both.pem"}
	plain := haproxyConfig("127.0.0.1:2000", up, tlsSides{}, files, 2)
	for _, want := range []string{"mode http", "option splice-auto", "http-reuse always", "tune.pipesize 1048576", "nbthread 2",
		"bind 127.0.0.1:2000\n", "server sink 127.0.0.1:1001\n"} {
		if !strings.Contains(plain, want) {
			t.Errorf("plain configuration lacks %q:\n%s", want, plain)
		}
	}
	if strings.Contains(plain, "ssl") {
		t.Errorf("plain configuration mentions ssl:\n%s", plain)
	}
	client := haproxyConfig("127.0.0.1:2000", up, tlsSides{client: true}, files, 2)
	for _, want := range []string{"bind 127.0.0.1:2000 ssl crt /w/both.pem", "server sink 127.0.0.1:1001\n", "ssl-min-ver TLSv1.3", benchtls.Suite} {
		if !strings.Contains(client, want) {
			t.Errorf("tls-client configuration lacks %q:\n%s", want, client)
		}
	}
	upTLS := haproxyConfig("127.0.0.1:2000", up, tlsSides{upstream: true}, files, 2)
	for _, want := range []string{"bind 127.0.0.1:2000\n", "server sink 127.0.0.1:1002 ssl verify required ca-file /w/ca.pem"} {
		if !strings.Contains(upTLS, want) {
			t.Errorf("tls-upstream configuration lacks %q:\n%s", want, upTLS)
		}
	}
}

// -peer-threads sets HAProxy's threads and nginx's workers; without it HAProxy gets one thread per CPU
// and nginx worker_processes auto (also one per CPU).
func TestPeerThreads(t *testing.T) {
	up := &upstream{addr: "127.0.0.1:1001"}
	if c := haproxyConfig("127.0.0.1:2000", up, tlsSides{}, benchtls.Files{}, 1); !strings.Contains(c, "  nbthread 1\n") {
		t.Errorf("haproxyConfig(…, 1) lacks nbthread 1:\n%s", c)
	}
	r := &runner{}
	if got, want := r.peerThreadCount(), runtime.NumCPU(); got != want {
		t.Errorf("peerThreadCount() without -peer-threads = %d; want one per CPU, %d", got, want)
	}
	if got := r.nginxWorkers(); got != "auto" {
		t.Errorf("nginxWorkers() without -peer-threads = %q; want auto", got)
	}
	r.peerThreads = 1
	if got := r.peerThreadCount(); got != 1 {
		t.Errorf("peerThreadCount() with -peer-threads 1 = %d", got)
	}
	if got := r.nginxWorkers(); got != "1" {
		t.Errorf("nginxWorkers() with -peer-threads 1 = %q", got)
	}
}

// -mizuchi-flags reach the measured binary's targets only: the baseline is the reference (and may
// not know a new flag).
func TestExtraFlags(t *testing.T) {
	r := &runner{mizuchi: "bin/mizuchi-uploadr", baseline: "/tmp/base/mizuchi-uploadr", mizuchiFlags: " -read-batch 64KiB  -pipe-pool 8 "}
	if got := strings.Join(r.extraFlags(r.mizuchi), "|"); got != "-read-batch|64KiB|-pipe-pool|8" {
		t.Errorf("measured binary's extra flags: %q", got)
	}
	if got := r.extraFlags(r.baseline); got != nil {
		t.Errorf("baseline's extra flags: %q; want none", got)
	}
	r.mizuchiFlags = ""
	if got := r.extraFlags(r.mizuchi); len(got) != 0 {
		t.Errorf("no -mizuchi-flags: got %q", got)
	}
}
