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
	// 4 KiB: medians 0.30 vs 0.30 s per 10,000 requests (30 µs/request): ratio 1; per repetition 0.9–1.1.
	// 1 GiB: medians 0.33 vs 0.30 s/GiB: 1.10×, over the budget.
	rep := newReport(compareRun([3]float64{0.27, 0.30, 0.33}, [3]float64{0.30, 0.30, 0.30}, [3]float64{0.33, 0.34, 0.32}, [3]float64{0.30, 0.30, 0.31}), nil)
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
	if math.Abs(c.new-30) > 1e-9 || math.Abs(c.ratio-1) > 1e-9 || !c.budget || c.status() != "met" || c.reps != 3 {
		t.Errorf("4 KiB row %+v", c)
	}
	if math.Abs(c.lo-0.9) > 1e-9 || math.Abs(c.hi-1.1) > 1e-9 || math.Abs(c.pairMed-1) > 1e-9 || !c.noisy() {
		t.Errorf("4 KiB per-repetition range %v–%v median %v, want 0.9–1.1, 1, noisy", c.lo, c.hi, c.pairMed)
	}
	c = find("put 1GiB c1", "CPU s/GiB")
	if math.Abs(c.ratio-1.1) > 1e-9 || c.status() != "**MISSED**" {
		t.Errorf("1 GiB row %+v", c)
	}
	if c := find("put 1GiB c1", "MiB/s"); c.budget || math.Abs(c.ratio-1) > 1e-9 {
		t.Errorf("throughput row %+v", c)
	}
	if c := find("put 4KiB c16", "peak RSS MiB"); c.budget || math.Abs(c.ratio-1) > 1e-9 {
		t.Errorf("RSS row %+v", c)
	}
	if s := baselineSummary(rows); !strings.Contains(s, "REGRESSION") || !strings.Contains(s, "put 1GiB c1") || !strings.Contains(s, "Noise") {
		t.Errorf("summary %q", s)
	}

	var md bytes.Buffer
	rep.markdown(&md, nil, rows, "", "scripts/bench.sh compare")
	for _, want := range []string{"## Against the baseline old1", "| put 1GiB c1 | CPU s/GiB | 0.330 | 0.300 | 1.100× | 1.032–1.133 | 1.100× | 3 | **MISSED** |", "mizuchi-base-splice | mizuchi-uploadr built at the baseline revision `old1`"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	for _, absent := range []string{"Targets of issue 5", "![chart]", "| nginx |"} {
		if strings.Contains(md.String(), absent) {
			t.Errorf("markdown of a compare run has %q", absent)
		}
	}
}

func TestBaselineWithinBudget(t *testing.T) {
	rep := newReport(compareRun([3]float64{0.31, 0.30, 0.30}, [3]float64{0.30, 0.30, 0.30}, [3]float64{0.30, 0.31, 0.30}, [3]float64{0.30, 0.30, 0.30}), nil)
	if s := baselineSummary(rep.baseline()); !strings.HasPrefix(s, "within the 5% budget") || strings.Contains(s, "Noise") {
		t.Errorf("summary %q", s)
	}
}
