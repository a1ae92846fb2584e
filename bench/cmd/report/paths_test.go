package main

import (
	"bytes"
	"strings"
	"testing"
)

// pathRun is one repetition of the workloads the issue 11 targets read: CPU seconds per target for
// 10,000 4 KiB PUTs and for 1 GiB moved, peak RSS (MiB) of the 16-stream 1 GiB run, and req/s.
func pathRun() runFile {
	rf := runFile{Meta: map[string]string{"mode": "quick", "reps": "1", "rev": "r", "date": "2026-12-01T00:00:00Z"}}
	add := func(phase, target string, cpu4k, rps, cpu1g, cpu1g16 float64, rss16 int64) {
		rf.Results = append(rf.Results,
			result{Phase: phase, Workload: "put 4KiB c16", Kind: "load", Target: target, Size: 4 << 10, Conns: 16,
				Requests: 10000, BodyBytes: 10000 * 4 << 10, RPS: rps, CPUSeconds: cpu4k},
			result{Phase: phase, Workload: "put 1GiB c1", Kind: "load", Target: target, Size: 1 << 30, Conns: 1,
				Requests: 1, BodyBytes: 1 << 30, CPUSeconds: cpu1g},
			result{Phase: phase, Workload: "put 1GiB c16", Kind: "load", Target: target, Size: 1 << 30, Conns: 16,
				BodyBytes: 4 << 30, CPUSeconds: 4 * cpu1g16, PeakRSS: rss16 << 20})
	}
	add("sink", "mizuchi-splice", 0.22, 30000, 0.3, 0.3, 20)
	add("sink", "nginx", 0.20, 31000, 1.5, 1.4, 50)
	add("sink", "haproxy", 0.20, 32000, 0.7, 0.7, 25)
	add("sink", "splicerelay", 0.21, 33000, 0.3, 0.3, 10)
	add("tls", "mizuchi-tls-client", 0.40, 16000, 1.0, 1.0, 200)
	add("tls", "nginx-tls-client", 0.30, 21000, 2.0, 2.0, 60)
	add("tls", "haproxy-tls-client", 0.30, 21000, 1.5, 1.5, 30)
	add("tls", "tlsrelay-client", 0.25, 22000, 0.9, 0.9, 12)
	add("tls", "mizuchi-tls-upstream", 0.60, 9000, 1.6, 1.6, 100)
	add("tls", "nginx-tls-upstream", 0.33, 15000, 2.0, 2.0, 60)
	return rf
}

func TestIssue11Verdicts(t *testing.T) {
	vs := newReport(pathRun(), nil).issue11Verdicts()
	got := map[string]string{}
	for _, v := range vs {
		got[v.goal+" | "+v.workload] = v.status() + " " + v.valueString()
	}
	for key, want := range map[string]string{
		"4 KiB plain CPU/request ÷ HAProxy's (SigV4 verified and re-signed) | put 4KiB c16": "**MISSED** 1.10×",
		"TLS client side: CPU/GiB ÷ nginx's | put 1GiB c1":                                  "met 0.50×",
		"TLS upstream side: CPU/GiB ÷ nginx's | put 1GiB c1":                                "**MISSED** 0.80×",
		"TLS client side: peak RSS, 16 concurrent 1 GiB uploads | put 1GiB c16":             "**MISSED** 200.0 MiB",
		"TLS upstream side: peak RSS, 16 concurrent 1 GiB uploads | put 1GiB c16":           "met 100.0 MiB",
		"TLS client side: 4 KiB req/s ÷ nginx's (keep-alive) | put 4KiB c16":                "**MISSED** 0.76×",
		"TLS upstream side: CPU/GiB ÷ HAProxy's | put 1GiB c1":                              "n/a —",
	} {
		if got[key] != want {
			t.Errorf("%s: %q; want %q", key, got[key], want)
		}
	}
	var md bytes.Buffer
	rep := newReport(pathRun(), nil)
	rep.pathTable(&md)
	for _, want := range []string{"| splice (plain http both sides) | mizuchi-uploadr | 0.300 | 0.300 | 20.00 |",
		"| TLS client side (https in, http out) | HAProxy | 1.50 | 1.50 | 30.00 |", "| TLS upstream side (http in, https out) | HAProxy | — |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("path table lacks %q:\n%s", want, md.String())
		}
	}
}
