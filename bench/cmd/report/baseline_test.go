package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// compareRun is a compare run: 4 KiB and 1 GiB PUTs, three repetitions, the baseline ~3% and ~10%
// cheaper per request in turn.
func compareRun(newCPU4k, baseCPU4k, newCPU1g, baseCPU1g [3]float64) runFile {
	rf := runFile{Meta: map[string]string{"mode": "compare", "reps": "3", "rev": "new1", "baseline_rev": "old1", "date": "2026-11-27T00:00:00Z"}}
	for rep := range 3 {
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

func TestBaselineRatiosAndBudget(t *testing.T) {
	// 4 KiB: medians 0.30 vs 0.30 s per 10,000 requests (30 µs/request): ratio 1; per repetition 0.9, 1, 1.1.
	// 1 GiB: 0.33, 0.34, 0.33 against 0.30, 0.30, 0.31 s/GiB: per repetition 1.065–1.133, median 1.1.
	rep := newReport(compareRun([3]float64{0.27, 0.30, 0.33}, [3]float64{0.30, 0.30, 0.30}, [3]float64{0.33, 0.34, 0.33}, [3]float64{0.30, 0.30, 0.31}), nil)
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
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	c := find("put 4KiB c16", "CPU µs/request")
	if !near(c.new, 30) || !near(c.ratio, 1) || !near(c.pairMed, 1) || !c.budget || c.status() != "met" || c.reps != 3 {
		t.Errorf("4 KiB row %+v", c)
	}
	if !near(c.ciLo, 0.9) || !near(c.ciHi, 1.1) || c.resolved() || c.verdict() != "met, within noise" {
		t.Errorf("4 KiB interval %v–%v resolved %v verdict %q, want 0.9–1.1, unresolved", c.ciLo, c.ciHi, c.resolved(), c.verdict())
	}
	c = find("put 1GiB c1", "CPU s/GiB")
	if !near(c.pairMed, 1.1) || !near(c.ratio, 1.1) || c.status() != "**MISSED**" || !c.resolved() {
		t.Errorf("1 GiB row %+v", c)
	}
	if c := find("put 1GiB c1", "MiB/s"); c.budget || !near(c.ratio, 1) {
		t.Errorf("throughput row %+v", c)
	}
	if c := find("put 4KiB c16", "peak RSS MiB"); c.budget || !near(c.ratio, 1) {
		t.Errorf("RSS row %+v", c)
	}
	s := baselineSummary(rows)
	if !strings.Contains(s, "REGRESSION beyond the 5% budget: put 1GiB c1") || !strings.Contains(s, "NOT RESOLVED") {
		t.Errorf("summary %q", s)
	}

	var md bytes.Buffer
	rep.markdown(&md, nil, rows, "", "scripts/bench.sh compare")
	for _, want := range []string{"## Against the baseline old1",
		"| put 1GiB c1 | CPU s/GiB | 0.330 | 0.300 | 1.100× | 1.100× | 1.065–1.133 | 1.065–1.133 (75%) | **MISSED** |",
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

func TestBaselineWithinBudget(t *testing.T) {
	rep := newReport(compareRun([3]float64{0.30, 0.30, 0.30}, [3]float64{0.30, 0.30, 0.30}, [3]float64{0.30, 0.30, 0.30}, [3]float64{0.30, 0.30, 0.30}), nil)
	if s := baselineSummary(rep.baseline()); !strings.HasPrefix(s, "within the 5% budget") {
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
		{5, 1, 5, 0.93, 0.94}, {6, 1, 6, 0.96, 0.97}, {9, 2, 8, 0.96, 0.97}, {15, 4, 12, 0.96, 0.97},
	} {
		lo, hi, l := medianCI(x[:tc.n])
		if lo != tc.lo || hi != tc.hi || l < tc.minL || l > tc.maxL {
			t.Errorf("n=%d: [%v, %v] at %.4f, want [%v, %v] at %v–%v", tc.n, lo, hi, l, tc.lo, tc.hi, tc.minL, tc.maxL)
		}
	}
}
