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
	name string
	of   func(*agg) float64   // the median over repetitions
	run  func(result) float64 // one repetition
}

var (
	cpuPerReq = metric{"CPU µs/request", func(a *agg) float64 { return a.cpuPerReq }, func(r result) float64 {
		if r.Requests == 0 {
			return math.NaN()
		}
		return r.CPUSeconds / float64(r.Requests) * 1e6
	}}
	cpuPerGiB = metric{"CPU s/GiB", func(a *agg) float64 { return a.cpuPerGiB }, func(r result) float64 {
		if r.BodyBytes == 0 {
			return math.NaN()
		}
		return r.CPUSeconds / (float64(r.BodyBytes) / gib)
	}}
	reqPerS  = metric{"req/s", func(a *agg) float64 { return a.rps }, func(r result) float64 { return r.RPS }}
	mibPerS  = metric{"MiB/s", func(a *agg) float64 { return a.mibps }, func(r result) float64 { return r.MiBps }}
	peakRSS  = metric{"peak RSS MiB", func(a *agg) float64 { return a.peakRSS }, func(r result) float64 { return float64(r.PeakRSS) / (1 << 20) }}
	idleRSSm = metric{"RSS while idle MiB", func(a *agg) float64 { return a.idleRSS }, func(r result) float64 { return float64(r.IdleRSS) / (1 << 20) }}
)

// cmpRow is one figure of one workload, new against baseline.
//
// Two estimates: ratio divides the medians of each target over the repetitions; pairMed is the median
// of the ratios taken within each repetition, where the two ran back to back. The verdict reads
// pairMed (a load burst that hits both runs of a repetition cancels out of it), with a distribution-free
// confidence interval of that median from the order statistics: when the interval holds 1.05 the run
// did not resolve a change of the budget's size.
type cmpRow struct {
	phase, workload string
	metric          metric
	new, base       float64 // medians over the repetitions
	reps            int     // repetitions both ran
	ratio           float64 // new / base of the medians
	pairs           []float64
	pairMed         float64 // median of the per-repetition ratios
	ciLo, ciHi      float64 // confidence interval of pairMed
	ciLevel         float64 // its coverage (0.94 for 5 repetitions, ≥ 0.95 from 6)
	budget          bool    // the regression budget applies
}

// medianCI returns the confidence interval of the median of sorted x from its order statistics,
// [x(k), x(n+1-k)] with the largest k whose two-sided level is at least 95% (k = 1 below 6 values),
// and that level.
func medianCI(x []float64) (lo, hi, level float64) {
	n := len(x)
	if n == 0 {
		return math.NaN(), math.NaN(), 0
	}
	// tail[j] = P(Binomial(n, 1/2) <= j)
	tail := make([]float64, n+1)
	p, c := math.Pow(0.5, float64(n)), 1.0
	for j := 0; j <= n; j++ {
		if j > 0 {
			c = c * float64(n-j+1) / float64(j)
			tail[j] = tail[j-1]
		}
		tail[j] += c * p
	}
	k := 1
	for k+1 <= (n+1)/2 && 1-2*tail[k] >= 0.95 {
		k++
	}
	return x[k-1], x[n-k], 1 - 2*tail[k-1]
}

func (c cmpRow) status() string {
	switch {
	case !c.budget:
		return ""
	case math.IsNaN(c.pairMed):
		return "n/a"
	case c.pairMed <= regressionBudget:
		return "met"
	}
	return "**MISSED**"
}

// minLevel is the lowest interval level a verdict stands on: 5 repetitions give 94%, 4 only 88%.
const minLevel = 0.9

// resolved reports whether the confidence interval lies on one side of the budget.
func (c cmpRow) resolved() bool {
	return c.ciLevel >= minLevel && (c.ciHi <= regressionBudget || c.ciLo > regressionBudget)
}

func (c cmpRow) verdict() string {
	s := c.status()
	if s == "met" || s == "**MISSED**" {
		switch {
		case c.ciLevel < minLevel:
			return fmt.Sprintf("%s, too few repetitions (%d)", s, c.reps)
		case !c.resolved():
			return s + ", within noise"
		}
	}
	return s
}

func (c cmpRow) label() string {
	if c.phase == "sink" {
		return c.workload
	}
	return c.phase + ": " + c.workload
}

func (c cmpRow) rangeString() string {
	if len(c.pairs) == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f–%.3f", c.pairs[0], c.pairs[len(c.pairs)-1])
}

func (c cmpRow) ciString() string {
	if len(c.pairs) == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f–%.3f (%.0f%%)", c.ciLo, c.ciHi, 100*c.ciLevel)
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
	type key struct {
		phase, workload string
		rep             int
	}
	base := map[key]result{}
	for _, x := range r.rf.Results {
		if x.Target == baseTarget {
			base[key{x.Phase, x.Workload, x.Rep}] = x
		}
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
					c := cmpRow{phase: phase, workload: w, metric: m, new: m.of(n), base: m.of(b), ratio: math.NaN()}
					if c.base > 0 && !math.IsNaN(c.new) {
						c.ratio = c.new / c.base
					}
					for _, x := range r.rf.Results {
						if x.Phase != phase || x.Workload != w || x.Target != "mizuchi-splice" {
							continue
						}
						y, ok := base[key{phase, w, x.Rep}]
						if !ok {
							continue
						}
						if fx, fy := m.run(x), m.run(y); fy > 0 && !math.IsNaN(fx) {
							c.pairs = append(c.pairs, fx/fy)
						}
					}
					slices.Sort(c.pairs)
					c.reps = len(c.pairs)
					c.pairMed = median(c.pairs)
					c.ciLo, c.ciHi, c.ciLevel = medianCI(c.pairs)
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
	var met, missed, open, unknown []string
	budget := fmt.Sprintf("%.0f%%", (regressionBudget-1)*100)
	for _, c := range rows {
		if !c.budget {
			continue
		}
		s := fmt.Sprintf("%s %s %.3f× (interval %s)", c.label(), c.metric.name, c.pairMed, c.ciString())
		switch {
		case c.status() == "n/a":
			unknown = append(unknown, c.label()+" "+c.metric.name)
		case !c.resolved():
			open = append(open, s)
		case c.status() == "met":
			met = append(met, s)
		default:
			missed = append(missed, s)
		}
	}
	var parts []string
	if len(missed) > 0 {
		parts = append(parts, "REGRESSION beyond the "+budget+" budget: "+strings.Join(missed, "; "))
	}
	if len(open) > 0 {
		parts = append(parts, "NOT RESOLVED (the interval holds "+fmt.Sprintf("%.2f", regressionBudget)+", or fewer than 5 repetitions: "+
			"the noise is larger than the budget; more -reps or a quieter machine): "+strings.Join(open, "; "))
	}
	if len(unknown) > 0 {
		parts = append(parts, "no figure for "+strings.Join(unknown, ", "))
	}
	if len(met) > 0 {
		parts = append(parts, "Within the "+budget+" budget: "+strings.Join(met, "; "))
	}
	if len(parts) == 0 {
		return "no workload the budget covers (4 KiB or 1 GiB PUTs against the sink) ran against both"
	}
	return strings.Join(parts, ". ")
}

func (r *report) printBaseline(w io.Writer, rows []cmpRow) {
	m := r.rf.Meta
	fmt.Fprintf(w, "Against the baseline %s (mizuchi-splice at %s ÷ mizuchi-base-splice, %s repetitions, the two back to back in each):\n", m["baseline_rev"], m["rev"], m["reps"])
	fmt.Fprintf(w, "  %-22s %-19s %10s %10s %8s  %-8s %-13s %-22s %s\n", "workload", "figure", "new", "baseline", "ratio", "paired", "range", "interval", "budget")
	for _, c := range rows {
		fmt.Fprintf(w, "  %-22s %-19s %10s %10s %7.3f×  %6.3f×  %-13s %-22s %s\n", c.label(), c.metric.name,
			fmtNum(c.new), fmtNum(c.base), c.ratio, c.pairMed, c.rangeString(), c.ciString(), strings.ReplaceAll(c.verdict(), "*", ""))
	}
	fmt.Fprintln(w, "  (new, baseline: medians; ratio: of the medians; paired: median of the per-repetition ratios, which the")
	fmt.Fprintln(w, "  budget reads; range and interval: of the per-repetition ratios, the interval for their median)")
	fmt.Fprintf(w, "  verdict: %s\n", baselineSummary(rows))
}

func (r *report) markdownBaseline(w io.Writer, rows []cmpRow) {
	m := r.rf.Meta
	fmt.Fprintf(w, "## Against the baseline %s\n\n", m["baseline_rev"])
	access := "the access log off"
	if a, b := m["mizuchi_access_log"], m["baseline_access_log"]; a != b {
		access = fmt.Sprintf("except the access log: %s for the new binary, %s for the baseline, which does not take `log.access`", accessWord(a), accessWord(b))
	} else if a == "default" {
		access = "the access log at its default: neither takes `log.access`"
	}
	fmt.Fprintf(w, "mizuchi-splice (revision `%s`) against mizuchi-base-splice (revision `%s`, built from `git archive`): same\n", m["rev"], m["baseline_rev"])
	fmt.Fprintf(w, "configuration and flags (%s), built with %s and %s. The two ran back to back in each of the\n", access, orUnknown(m["mizuchi_go"]), orUnknown(m["baseline_go"]))
	fmt.Fprintf(w, "%s repetitions, their order swapped each time. Below 1 is better for CPU and RSS, above 1 for throughput.\n", m["reps"])
	fmt.Fprintln(w, "**new** and **baseline** are medians over the repetitions and **ratio** divides them; **paired** is the median of")
	fmt.Fprintln(w, "the ratios taken within each repetition (a burst of load from elsewhere hits both runs of a pair and cancels), with")
	fmt.Fprintln(w, "their **range** and a distribution-free **interval** for that median (order statistics; its level in parentheses).")
	fmt.Fprintln(w, "The budget is issue 8's: at most 5% more CPU per request for 4 KiB PUTs and per GiB for 1 GiB PUTs, against the")
	fmt.Fprintln(w, "sink; it reads **paired**, and says \"within noise\" when the interval holds 1.05 — then the run did not resolve a")
	fmt.Fprintln(w, "change of that size, and only more repetitions or a quieter machine will (below 5 repetitions there is no interval")
	fmt.Fprintln(w, "worth the name: \"too few repetitions\").")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Verdict: %s.\n\n", baselineSummary(rows))
	fmt.Fprintln(w, "| workload | figure | new | baseline | ratio | paired | range | interval | budget ≤ 1.05× |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, c := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.3f× | %.3f× | %s | %s | %s |\n", c.label(), c.metric.name, fmtNum(c.new), fmtNum(c.base),
			c.ratio, c.pairMed, c.rangeString(), c.ciString(), c.verdict())
	}
	fmt.Fprintln(w)
}

func accessWord(v string) string {
	switch v {
	case "off":
		return "off"
	case "default":
		return "at its default"
	}
	return "unrecorded"
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown Go"
	}
	return s
}
