package main

// Mode single (issue 11, item 4): one 1 GiB PUT at a time, the proxy pinned to one core and the
// sender (loadgen) and the sink to another, so that the proxy's own speed decides. Each repetition
// runs, in rotated order, a fresh process of each target on one upload: direct (loadgen -> sink),
// mizuchi-splice, the bare splice relay and, with -baseline, mizuchi-base-splice (run back to back
// with mizuchi-splice as in compare). The summary gives each target's throughput ÷ direct's and CPU
// per GiB ÷ the bare relay's, as the median of the per-repetition ratios and as the ratio of the
// medians, and is written to -single-md when set.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	singlePin = flag.String("pin", "0,1", "mode single: CPU of the proxy, then CPU of the sender and the sink")
	singleMD  = flag.String("single-md", "", "mode single: write the summary (Markdown) here too")
)

const (
	singleReps     = 9
	singleWorkload = "put 1GiB single pinned"
	singleTargets  = "direct,mizuchi-splice,splicerelay"
)

// single runs mode single and writes its summary; the results go to res like the other modes'.
func (r *runner) single(ctx context.Context, reps int, res *Run) error {
	proxyCPU, clientCPU, err := parsePin(*singlePin)
	if err != nil {
		return err
	}
	if r.targets == nil {
		r.targets = set(singleTargets)
		if r.baseline != "" {
			r.targets[baseTarget] = true
		}
	}
	res.Meta["pin"] = fmt.Sprintf("proxy cpu %d, sender and sink cpu %d", proxyCPU, clientCPU)
	var up *upstream
	if err := onCPU(clientCPU, func() (err error) { up, err = r.startSink(false); return err }); err != nil {
		return err
	}
	defer r.stopAll()
	var targets []*target
	if err := onCPU(proxyCPU, func() (err error) { targets, err = r.startTargets(ctx, up); return err }); err != nil {
		return err
	}
	for _, t := range targets {
		if t.main != nil {
			res.Meta["cpus_allowed "+t.name] = cpusAllowed(t.main.cmd.Process.Pid)
		}
	}
	res.Meta["cpus_allowed sink"] = cpusAllowed(up.proc.cmd.Process.Pid)
	w := workload{name: singleWorkload, kind: "load", size: 1 << 30, conns: 1, count: 1, fresh: true}
	for rep := range reps {
		for _, t := range runOrder(targets, rep) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := onCPU(proxyCPU, func() error { return r.restart(t) }); err != nil {
				return err
			}
			var m Result
			err := onCPU(clientCPU, func() (err error) { m, err = r.measure(ctx, up, t, w); return err })
			if err != nil {
				return fmt.Errorf("single %s: %w", t.name, err)
			}
			if m.Errors > 0 {
				return fmt.Errorf("single %s: %d errors (%s)", t.name, m.Errors, m.FirstError)
			}
			m.Phase, m.Rep = "sink", rep
			res.Results = append(res.Results, m)
			logResult(m)
			time.Sleep(200 * time.Millisecond)
		}
	}
	sum := singleSummary(res.Results)
	fmt.Fprint(os.Stderr, sum)
	res.Meta["single_summary"] = sum
	if *singleMD != "" {
		return os.WriteFile(*singleMD, []byte(sum), 0o644)
	}
	return nil
}

func parsePin(s string) (proxy, client int, err error) {
	a, b, ok := strings.Cut(s, ",")
	if ok {
		proxy, err = strconv.Atoi(strings.TrimSpace(a))
		if err == nil {
			client, err = strconv.Atoi(strings.TrimSpace(b))
		}
	}
	if !ok || err != nil || proxy == client || proxy < 0 || client < 0 {
		return 0, 0, fmt.Errorf("-pin %q: want two different CPUs, e.g. 0,1", s)
	}
	return proxy, client, nil
}

func cpusAllowed(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// singleRow is one target's figures over the repetitions.
type singleRow struct {
	target             string
	mibps, cpuGiB      []float64
	thrRatio, cpuRatio []float64 // per repetition: ÷ direct's throughput, ÷ the relay's CPU per GiB
}

// singleSummary computes the ratios of mode single from its results (Markdown).
func singleSummary(results []Result) string {
	byRep := map[int]map[string]Result{}
	var order []string
	for _, m := range results {
		if m.Workload != singleWorkload {
			continue
		}
		if byRep[m.Rep] == nil {
			byRep[m.Rep] = map[string]Result{}
		}
		byRep[m.Rep][m.Target] = m
		if !slices.Contains(order, m.Target) {
			order = append(order, m.Target)
		}
	}
	slices.SortStableFunc(order, func(a, b string) int { return targetRank(a) - targetRank(b) })
	rows := map[string]*singleRow{}
	for _, t := range order {
		rows[t] = &singleRow{target: t}
	}
	for _, rep := range byRep {
		direct, hasDirect := rep["direct"]
		relay, hasRelay := rep["splicerelay"]
		for t, m := range rep {
			row := rows[t]
			row.mibps = append(row.mibps, m.MiBps)
			cpu := cpuPerGiB(m)
			if cpu > 0 {
				row.cpuGiB = append(row.cpuGiB, cpu)
			}
			if hasDirect && direct.MiBps > 0 {
				row.thrRatio = append(row.thrRatio, m.MiBps/direct.MiBps)
			}
			if rc := cpuPerGiB(relay); hasRelay && rc > 0 && cpu > 0 {
				row.cpuRatio = append(row.cpuRatio, cpu/rc)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n## One 1 GiB PUT, proxy pinned to its own core (%d repetitions)\n\n", len(byRep))
	b.WriteString("| target | MiB/s median (min–max) | CPU s/GiB median (min–max) | throughput ÷ direct: median of per-rep ratios (ratio of medians) | CPU/GiB ÷ bare relay: median of per-rep ratios (ratio of medians) |\n")
	b.WriteString("|---|---|---|---|---|\n")
	direct, relay := rows["direct"], rows["splicerelay"]
	for _, t := range order {
		row := rows[t]
		thr, cpu := "—", "—"
		if direct != nil && len(row.thrRatio) > 0 {
			thr = fmt.Sprintf("%.3f (%.3f)", median(row.thrRatio), median(row.mibps)/median(direct.mibps))
		}
		if relay != nil && len(row.cpuRatio) > 0 {
			cpu = fmt.Sprintf("%.3f (%.3f)", median(row.cpuRatio), median(row.cpuGiB)/median(relay.cpuGiB))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", t, spread(row.mibps, "%.0f"), spread(row.cpuGiB, "%.3f"), thr, cpu)
	}
	var thrBase, cpuBase []float64 // mizuchi-splice ÷ the baseline, per repetition (back to back)
	for _, rep := range byRep {
		cur, okC := rep["mizuchi-splice"]
		base, okB := rep[baseTarget]
		if okC && okB && base.MiBps > 0 && cpuPerGiB(base) > 0 {
			thrBase = append(thrBase, cur.MiBps/base.MiBps)
			cpuBase = append(cpuBase, cpuPerGiB(cur)/cpuPerGiB(base))
		}
	}
	if len(thrBase) > 0 {
		fmt.Fprintf(&b, "\nmizuchi-splice ÷ %s, paired per repetition (median, min–max): throughput %s, CPU per GiB %s.\n",
			baseTarget, spread(thrBase, "%.3f"), spread(cpuBase, "%.3f"))
	}
	if row := rows["mizuchi-splice"]; row != nil && len(row.thrRatio) > 0 && len(row.cpuRatio) > 0 {
		thr, cpu := median(row.thrRatio), median(row.cpuRatio)
		fmt.Fprintf(&b, "\nTargets (issue 11 item 4): throughput ≥ 0.95× direct — %.3f: %s; CPU per GiB ≤ 1.10× the bare relay — %.3f: %s.\n",
			thr, verdictWord(thr >= 0.95), cpu, verdictWord(cpu <= 1.10))
	}
	return b.String()
}

func verdictWord(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func targetRank(t string) int {
	switch t {
	case "direct":
		return 0
	case "mizuchi-splice":
		return 1
	case baseTarget:
		return 2
	case "splicerelay":
		return 3
	case threadsRelay:
		return 4
	}
	return 5
}

func cpuPerGiB(m Result) float64 {
	if m.BodyBytes == 0 {
		return 0
	}
	return m.CPUSeconds / (float64(m.BodyBytes) / (1 << 30))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(xs []float64, f string) string {
	if len(xs) == 0 {
		return "—"
	}
	return fmt.Sprintf(f+" ("+f+"–"+f+")", median(xs), slices.Min(xs), slices.Max(xs))
}

// exitWrite is run's exit code after writing the results.
func exitWrite(err error) int {
	if err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		return 1
	}
	return 0
}
