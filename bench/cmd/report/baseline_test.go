package main

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
)

// compareRun is a compare run of 4 KiB and 1 GiB PUTs, one repetition per element of the slices:
// the CPU seconds of mizuchi-splice and of the baseline for 10,000 4 KiB PUTs and for one 1 GiB PUT.
func compareRun(newCPU4k, baseCPU4k, newCPU1g, baseCPU1g []float64) runFile {
	rf := runFile{Meta: map[string]string{"mode": "compare", "reps": strconv.Itoa(len(newCPU4k)), "rev": "new1", "baseline_rev": "old1", "date": "2026-11-27T00:00:00Z"}}
	for rep := range newCPU4k {
		for _, t := range []string{"direct", "mizuchi-splice", baseTarget} {
			small := result{Phase: "sink", Workload: "put 4KiB c16", Kind: "load", Target: t, Rep: rep, Size: 4 << 10, Conns: 16,
				Requests: 10000, BodyBytes: 10000 * 4 << 10, RPS: 5000, PeakRSS: 20 << 20}
			big := result{Phase: "sink", Workload: "put 1GiB c1", Kind: "load", Target: t, Rep: rep, Size: 1 << 30, Conns: 1,
				Requests: 1, BodyBytes: 1 << 30, MiBps: 2000, PeakRSS: 30 << 20}
			switch t {
			case "mizuchi-splice":
				small.CPUSeconds, big.CPUSeconds = newCPU4k[rep], newCPU1g[rep]
			case baseTarget:
				small.CPUSeconds, big.CPUSeconds = baseCPU4k[rep], baseCPU1g[rep]
			}
			rf.Results = append(rf.Results, small, big)
		}
	}
	return rf
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestBaselineRatiosAndBudget(t *testing.T) {
	// 4 KiB: per repetition 0.9, 1, 1.1, 1, 1 (30 µs/request against 30): median 1, interval 0.9–1.1.
	// 1 GiB: per repetition 1.1, 1.133, 1.065, 1.1, 1.1: median 1.1, interval above the budget.
	rep := newReport(compareRun(
		[]float64{0.27, 0.30, 0.33, 0.30, 0.30}, []float64{0.30, 0.30, 0.30, 0.30, 0.30},
		[]float64{0.33, 0.34, 0.33, 0.33, 0.33}, []float64{0.30, 0.30, 0.31, 0.30, 0.30}), nil)
	if !rep.hasBaseline() {
		t.Fatal("no baseline seen")
	}
	rows := rep.baseline()
	find := func(w, m string) cmpRow {
		for _, c := range rows {
			if c.workload == w && c.metric.name == m {
				return c
			}
		}
		t.Fatalf("no row %s %s in %+v", w, m, rows)
		return cmpRow{}
	}
	c := find("put 4KiB c16", "CPU µs/request")
	if !near(c.new, 30) || !near(c.ratio, 1) || !near(c.pairMed, 1) || !c.budget || c.status() != "met" || c.reps != 5 {
		t.Errorf("4 KiB row %+v", c)
	}
	if !near(c.ciLo, 0.9) || !near(c.ciHi, 1.1) || c.resolved() || c.verdict() != "met, within noise" {
		t.Errorf("4 KiB interval %v–%v resolved %v verdict %q, want 0.9–1.1, within noise", c.ciLo, c.ciHi, c.resolved(), c.verdict())
	}
	c = find("put 1GiB c1", "CPU s/GiB")
	if !near(c.pairMed, 1.1) || !near(c.ratio, 1.1) || c.verdict() != "**MISSED**" || !c.resolved() {
		t.Errorf("1 GiB row %+v", c)
	}
	if c := find("put 1GiB c1", "MiB/s"); c.budget || !near(c.ratio, 1) {
		t.Errorf("throughput row %+v", c)
	}
	if c := find("put 4KiB c16", "peak RSS MiB"); c.budget || !near(c.ratio, 1) {
		t.Errorf("RSS row %+v", c)
	}
	s := baselineSummary(rows)
	if !strings.HasPrefix(s, "REGRESSION beyond the 5% budget: put 1GiB c1") || !strings.Contains(s, "NOT RESOLVED") || !strings.Contains(s, "put 4KiB c16") {
		t.Errorf("summary %q", s)
	}

	var md bytes.Buffer
	rep.markdown(&md, nil, nil, rows, "", "scripts/bench.sh compare")
	for _, want := range []string{"## Against the baseline old1",
		"| put 1GiB c1 | CPU s/GiB | 0.330 | 0.300 | 1.100× | 1.100× | 1.065–1.133 | 1.065–1.133 (94%) | **MISSED** |",
		"| put 4KiB c16 | CPU µs/request | 30.00 | 30.00 | 1.000× | 1.000× | 0.900–1.100 | 0.900–1.100 (94%) | met, within noise |",
		"mizuchi-base-splice | mizuchi-uploadr built at the baseline revision `old1`"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	for _, absent := range []string{"Targets of issue 5", "![chart]", "| nginx |", "nginx ."} {
		if strings.Contains(md.String(), absent) {
			t.Errorf("markdown of a compare run has %q", absent)
		}
	}
}

func TestBaselineWithinBudgetNeedsRepetitions(t *testing.T) {
	same := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = 0.30
		}
		return v
	}
	rep := newReport(compareRun(same(3), same(3), same(3), same(3)), nil)
	if s := baselineSummary(rep.baseline()); !strings.HasPrefix(s, "NOT RESOLVED") || !strings.Contains(s, "fewer than 5") {
		t.Errorf("3 repetitions resolve nothing: %q", s)
	}
	rep = newReport(compareRun(same(5), same(5), same(5), same(5)), nil)
	if s := baselineSummary(rep.baseline()); !strings.HasPrefix(s, "Within the 5% budget") {
		t.Errorf("summary %q", s)
	}
}

func TestMedianCI(t *testing.T) {
	x := make([]float64, 15)
	for i := range x {
		x[i] = float64(i + 1)
	}
	for _, tc := range []struct {
		n          int
		lo, hi     float64
		minL, maxL float64
	}{
		{1, 1, 1, 0, 0}, {5, 1, 5, 0.93, 0.94}, {6, 1, 6, 0.96, 0.97}, {9, 2, 8, 0.96, 0.97}, {15, 4, 12, 0.96, 0.97},
	} {
		lo, hi, l := medianCI(x[:tc.n])
		if lo != tc.lo || hi != tc.hi || l < tc.minL || l > tc.maxL {
			t.Errorf("n=%d: [%v, %v] at %.4f, want [%v, %v] at %v–%v", tc.n, lo, hi, l, tc.lo, tc.hi, tc.minL, tc.maxL)
		}
	}
}

// A run measured with -mizuchi-flags says so next to the revision.
func TestHeaderNamesMizuchiFlags(t *testing.T) {
	same := []float64{0.30, 0.30, 0.30, 0.30, 0.30}
	for _, flags := range []string{"", "-read-batch 64KiB"} {
		rf := compareRun(same, same, same, same)
		rf.Meta["mizuchi_flags"] = flags
		rep := newReport(rf, nil)
		var md bytes.Buffer
		rep.markdown(&md, nil, nil, rep.baseline(), "", "scripts/bench.sh compare")
		has := strings.Contains(md.String(), "mizuchi-uploadr revision `new1` run with `-read-batch 64KiB`, baseline revision `old1`")
		if has != (flags != "") {
			t.Errorf("flags %q: header names them %v:\n%s", flags, has, md.String()[:300])
		}
	}
}

// A run with -peer-threads says how many threads HAProxy and nginx ran, in the header and in what was
// measured; a run without it keeps the default notes (nbthread one per CPU, worker_processes auto).
func TestPeerThreadsNamed(t *testing.T) {
	same := []float64{0.30, 0.30, 0.30}
	for _, threads := range []string{"", "1"} {
		rf := compareRun(same, same, same, same)
		for _, x := range rf.Results[:2] {
			for _, peer := range []string{"nginx", "haproxy"} {
				x.Target = peer
				rf.Results = append(rf.Results, x)
			}
		}
		if threads != "" {
			rf.Meta["peer_threads"] = threads
		}
		rep := newReport(rf, nil)
		var md bytes.Buffer
		rep.markdown(&md, nil, nil, rep.baseline(), "", "scripts/bench.sh full")
		out := md.String()
		want := []string{"nbthread one per CPU", "worker_processes auto"}
		if threads != "" {
			want = []string{"HAProxy and nginx ran with 1 thread(s) each (-peer-threads)", "nbthread 1,", "worker_processes 1 |"}
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("peer_threads %q: results lack %q:\n%s", threads, w, out)
			}
		}
	}
}
