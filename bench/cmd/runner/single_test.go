package main

import (
	"strings"
	"testing"
)

// TestSingleSummary: the ratios of mode single come from the same repetition (throughput ÷
// direct's, CPU per GiB ÷ the relay's, and mizuchi-splice ÷ the baseline, back to back).
func TestSingleSummary(t *testing.T) {
	var rs []Result
	add := func(rep int, target string, mibps, cpu float64) {
		rs = append(rs, Result{Workload: singleWorkload, Target: target, Rep: rep, MiBps: mibps, CPUSeconds: cpu, BodyBytes: 1 << 30})
	}
	for rep, scale := range []float64{1, 0.5, 2} { // a noisy machine: every target slows down together
		add(rep, "direct", 2000*scale, 0)
		add(rep, "mizuchi-splice", 1900*scale, 0.43)
		add(rep, baseTarget, 1600*scale, 0.40)
		add(rep, "splicerelay", 1600*scale, 0.40)
	}
	sum := singleSummary(rs)
	for _, want := range []string{
		"| mizuchi-splice | 1900 (950–3800) | 0.430 (0.430–0.430) | 0.950 (0.950) | 1.075 (1.075) |",
		"| splicerelay | 1600 (800–3200) | 0.400 (0.400–0.400) | 0.800 (0.800) | 1.000 (1.000) |",
		"mizuchi-splice ÷ mizuchi-base-splice, paired per repetition (median, min–max): throughput 1.188 (1.188–1.188), CPU per GiB 1.075 (1.075–1.075).",
		"throughput ≥ 0.95× direct — 0.950: met; CPU per GiB ≤ 1.10× the bare relay — 1.075: met.",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	if _, _, err := parsePin("0,0"); err == nil {
		t.Errorf("parsePin(0,0) = nil error; want one (two different CPUs)")
	}
	if p, c, err := parsePin("1, 0"); err != nil || p != 1 || c != 0 {
		t.Errorf("parsePin(1, 0) = %d, %d, %v; want 1, 0, nil", p, c, err)
	}
}
