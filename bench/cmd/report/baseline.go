package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// baseTarget is the runner's target for the baseline binary (runner -baseline).
const baseTarget = "mizuchi-base-splice"

// regressionBudget is issue 8's budget: the new engine may cost at most 5% more CPU than the baseline
// for 4 KiB PUTs (CPU per request, in the event loop) and the 1 GiB PUT (CPU per GiB, spliced).
const regressionBudget = 1.05

// metric is one figure compared between mizuchi-splice and the baseline.
type metric struct {
	name        string
	lowerBetter bool
	of          func(*agg) float64   // the median over repetitions
	run         func(result) float64 // one repetition
}

var (
	cpuPerReq = metric{"CPU µs/request", true, func(a *agg) float64 { return a.cpuPerReq }, func(r result) float64 {
		if r.Requests == 0 {
			return math.NaN()
		}
		return r.CPUSeconds / float64(r.Requests) * 1e6
	}}
	cpuPerGiB = metric{"CPU s/GiB", true, func(a *agg) float64 { return a.cpuPerGiB }, func(r result) float64 {
		if r.BodyBytes == 0 {
			return math.NaN()
		}
		return r.CPUSeconds / (float64(r.BodyBytes) / gib)
	}}
	reqPerS  = metric{"req/s", false, func(a *agg) float64 { return a.rps }, func(r result) float64 { return r.RPS }}
	mibPerS  = metric{"MiB/s", false, func(a *agg) float64 { return a.mibps }, func(r result) float64 { return r.MiBps }}
	peakRSS  = metric{"peak RSS MiB", true, func(a *agg) float64 { return a.peakRSS }, func(r result) float64 { return float64(r.PeakRSS) / (1 << 20) }}
	idleRSSm = metric{"RSS while idle MiB", true, func(a *agg) float64 { return a.idleRSS }, func(r result) float64 { return float64(r.IdleRSS) / (1 << 20) }}
)

// cmpRow is one figure of one workload, new against baseline.
type cmpRow struct {
	phase, workload string
	metric          metric
	new, base       float64 // medians
	reps            int     // repetitions both ran
	ratio           float64 // new / base of the medians
	lo, hi          float64 // range of the per-repetition ratios (the two ran back to back): the noise
	pairMed         float64 // median of the per-repetition ratios
	budget          bool    // the regression budget applies
}

func (c cmpRow) status() string {
	switch {
	case !c.budget:
		return ""
	case math.IsNaN(c.ratio):
		return "n/a"
	case c.ratio <= regressionBudget:
		return "met"
	}
	return "**MISSED**"
}

func (c cmpRow) label() string {
	if c.phase == "sink" {
		return c.workload
	}
	return c.phase + ": " + c.workload
}

func (c cmpRow) pairs() string {
	if math.IsNaN(c.lo) {
		return "—"
	}
	return fmt.Sprintf("%.3f–%.3f", c.lo, c.hi)
}

// noisy reports whether the per-repetition ratios spread wider than the budget on either side of 1:
// then one run cannot resolve a regression of the budget's size.
func (c cmpRow) noisy() bool {
	return !math.IsNaN(c.lo) && c.hi-c.lo > 2*(regressionBudget-1)
}

// hasBaseline reports whether the run measured the baseline target.
func (r *report) hasBaseline() bool {
	for _, x := range r.rf.Results {
		if x.Target == baseTarget {
			return true
		}
	}
	return false
}

// baseline compares mizuchi-splice with the baseline on every workload both ran.
func (r *report) baseline() []cmpRow {
	byRep := map[[4]string]result{}
	for _, x := range r.rf.Results {
		byRep[[4]string{x.Phase, x.Workload, x.Target, fmt.Sprint(x.Rep)}] = x
	}
	var out []cmpRow
	for _, phase := range []string{"sink", "versitygw"} {
		for _, kind := range []string{"load", "wrk", "idle"} {
			for _, w := range r.workloads(phase, kind) {
				n, b := r.get(phase, w, "mizuchi-splice"), r.get(phase, w, baseTarget)
				if n == nil || b == nil {
					continue
				}
				var ms []metric
				switch {
				case kind == "idle":
					ms = []metric{idleRSSm, peakRSS}
				case n.size < 1<<20:
					ms = []metric{cpuPerReq, reqPerS, peakRSS}
				default:
					ms = []metric{cpuPerGiB, mibPerS, peakRSS}
				}
				for _, m := range ms {
					c := cmpRow{phase: phase, workload: w, metric: m, new: m.of(n), base: m.of(b), reps: min(n.n, b.n),
						ratio: math.NaN()}
					var pairs []float64
					if c.base > 0 && !math.IsNaN(c.new) {
						c.ratio = c.new / c.base
					}
					for _, x := range r.rf.Results {
						if x.Phase != phase || x.Workload != w || x.Target != "mizuchi-splice" {
							continue
						}
						y, ok := byRep[[4]string{phase, w, baseTarget, fmt.Sprint(x.Rep)}]
						if !ok {
							continue
						}
						if fx, fy := m.run(x), m.run(y); fy > 0 && !math.IsNaN(fx) {
							pairs = append(pairs, fx/fy)
						}
					}
					c.pairMed, c.lo, c.hi = median(pairs), math.NaN(), math.NaN()
					if len(pairs) > 0 {
						c.lo, c.hi = slices.Min(pairs), slices.Max(pairs)
					}
					c.budget = phase == "sink" && ((m.name == cpuPerReq.name && n.size == 4<<10) || (m.name == cpuPerGiB.name && n.size == 1<<30))
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// baselineSummary is one sentence on the budgeted rows.
func baselineSummary(rows []cmpRow) string {
	var met, missed, unknown []string
	for _, c := range rows {
		if !c.budget {
			continue
		}
		s := fmt.Sprintf("%s %s %.3f× (per repetition %s, median %.3f×)", c.label(), c.metric.name, c.ratio, c.pairs(), c.pairMed)
		switch c.status() {
		case "met":
			met = append(met, s)
		case "n/a":
			unknown = append(unknown, c.label()+" "+c.metric.name)
		default:
			missed = append(missed, s)
		}
	}
	noise := ""
	for _, c := range rows {
		if c.budget && c.noisy() {
			noise = fmt.Sprintf(". Noise: the per-repetition ratios spread wider than ±%.0f%%, so this run cannot resolve a regression of that size — repeat with more -reps on a quieter machine", (regressionBudget-1)*100)
		}
	}
	switch {
	case len(met)+len(missed)+len(unknown) == 0:
		return "no workload the budget covers (4 KiB or 1 GiB PUTs against the sink) ran against both"
	case len(missed) > 0:
		return fmt.Sprintf("REGRESSION beyond the %.0f%% budget: %s", (regressionBudget-1)*100, strings.Join(missed, "; ")) + noise
	case len(unknown) > 0:
		return "no figure for " + strings.Join(unknown, ", ")
	}
	return fmt.Sprintf("within the %.0f%% budget: %s", (regressionBudget-1)*100, strings.Join(met, "; ")) + noise
}

func (r *report) printBaseline(w io.Writer, rows []cmpRow) {
	m := r.rf.Meta
	fmt.Fprintf(w, "Against the baseline %s (mizuchi-splice at %s ÷ mizuchi-base-splice; medians of %s repetitions, run back to back):\n", m["baseline_rev"], m["rev"], m["reps"])
	for _, c := range rows {
		st := c.status()
		if st == "" {
			st = "-"
		}
		fmt.Fprintf(w, "  %-10s %-22s %-19s %10s / %-10s = %6.3f×  (per repetition %s, median %.3f×)\n", strings.Trim(st, "*"), c.label(), c.metric.name,
			fmtNum(c.new), fmtNum(c.base), c.ratio, c.pairs(), c.pairMed)
	}
	fmt.Fprintf(w, "  verdict: %s\n", baselineSummary(rows))
}

func (r *report) markdownBaseline(w io.Writer, rows []cmpRow) {
	m := r.rf.Meta
	fmt.Fprintf(w, "## Against the baseline %s\n\n", m["baseline_rev"])
	access := "the access log off"
	if m["mizuchi_access_log"] == "default" {
		access = "the access log at its default (the baseline does not take `log.access`)"
	}
	fmt.Fprintf(w, "mizuchi-splice (revision `%s`) against mizuchi-base-splice (revision `%s`, built from `git archive`), same\n", m["rev"], m["baseline_rev"])
	fmt.Fprintf(w, "configuration and flags (%s), built with %s and %s. The two ran back to back in each of the\n", access, orUnknown(m["mizuchi_go"]), orUnknown(m["baseline_go"]))
	fmt.Fprintf(w, "%s repetitions, their order swapped each time. **new ÷ baseline** divides the medians over the repetitions:\n", m["reps"])
	fmt.Fprintln(w, "below 1 is better for CPU and RSS, above 1 for throughput; the verdict reads it. **per repetition** is the range")
	fmt.Fprintln(w, "and the median of the same ratio taken within each repetition (the two back to back) — the range is the noise of")
	fmt.Fprintln(w, "the machine: when it is wider than the budget, one run cannot resolve a regression of the budget's size. The")
	fmt.Fprintln(w, "budget is issue 8's: at most 5% more CPU per request for 4 KiB PUTs and per GiB for the 1 GiB PUT, against the sink.")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Verdict: %s.\n\n", baselineSummary(rows))
	fmt.Fprintln(w, "| workload | figure | new | baseline | new ÷ baseline | per repetition: range | median | reps | budget ≤ 1.05× |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, c := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.3f× | %s | %.3f× | %d | %s |\n", c.label(), c.metric.name, fmtNum(c.new), fmtNum(c.base), c.ratio, c.pairs(), c.pairMed, c.reps, c.status())
	}
	fmt.Fprintln(w)
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown Go"
	}
	return s
}
