package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// straceTargets are the targets whose system calls -strace counts, per phase: the plain path's
// event-loop servers and bare relay, where issue 11 compares CPU per 4 KiB request, and every proxy
// of the tls phase.
var straceTargets = map[string][]string{
	"sink": {"mizuchi-splice", "nginx", "haproxy", "splicerelay"},
	"tls":  tlsPhaseTargets[1:],
}

// syscallCount is one line of strace -c.
type syscallCount struct {
	name          string
	calls, errors int64
	seconds       float64
}

// parseStraceSummary reads the table strace -c prints (% time, seconds, usecs/call, calls,
// errors, syscall), without its total line.
func parseStraceSummary(text string) []syscallCount {
	var out []syscallCount
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[len(f)-1] == "total" || f[len(f)-1] == "syscall" {
			continue
		}
		secs, err1 := strconv.ParseFloat(f[1], 64)
		calls, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		c := syscallCount{name: f[len(f)-1], calls: calls, seconds: secs}
		if len(f) == 6 {
			c.errors, _ = strconv.ParseInt(f[4], 10, 64)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b syscallCount) int { return int(b.calls - a.calls) })
	return out
}

// straceAll runs each -strace workload once more per target of straceTargets under strace -c -f
// (every thread and process of the target) and writes the system calls per request, one file per
// target, next to the perf reports. strace slows the target down a lot: read calls per request,
// not time.
func (r *runner) straceAll(ctx context.Context, up *upstream, targets []*target, wls []workload, phase string, res *Run) {
	for _, w := range wls {
		if !r.straceWorkloads[w.name] {
			continue
		}
		for _, t := range targets {
			if !slices.Contains(straceTargets[phase], t.name) {
				continue
			}
			path, err := r.straceOne(ctx, up, t, w, phase)
			if err != nil {
				fmt.Fprintln(os.Stderr, "runner: strace:", err)
				continue
			}
			res.Perf[phase+" "+w.name+" "+t.name+" (strace)"] = path
		}
	}
}

func (r *runner) straceOne(ctx context.Context, up *upstream, t *target, w workload, phase string) (string, error) {
	pids, err := t.pids()
	if err != nil || len(pids) == 0 {
		return "", fmt.Errorf("no pid for %s", t.name)
	}
	name := strings.NewReplacer(" ", "-", "/", "-").Replace(phase + "-" + w.name + "-" + t.name)
	out := filepath.Join(r.work, name+".strace")
	args := []string{"-c", "-f", "-o", out}
	for _, p := range pids {
		args = append(args, "-p", strconv.Itoa(p))
	}
	st := exec.CommandContext(ctx, r.strace, args...)
	if err := st.Start(); err != nil {
		return "", err
	}
	time.Sleep(time.Second) // attach to every thread
	m, merr := r.measure(ctx, up, t, w)
	_ = st.Process.Signal(os.Interrupt)
	_ = st.Wait()
	if merr != nil {
		return "", merr
	}
	m.Phase = phase
	logResult(m)
	b, err := os.ReadFile(out)
	if err != nil {
		return "", err
	}
	counts := parseStraceSummary(string(b))
	var sb strings.Builder
	fmt.Fprintf(&sb, "# strace -c -f of %s (pids %v), %s, %s upstream\n# run under strace: %d requests (%.0f req/s; strace slows it down: read calls per request, not time)\n\n",
		t.name, pids, w.name, phase, m.Requests, m.RPS)
	fmt.Fprintln(&sb, "| syscall | calls | per request | errors |")
	fmt.Fprintln(&sb, "|---|---|---|---|")
	var total int64
	for _, c := range counts {
		total += c.calls
		fmt.Fprintf(&sb, "| %s | %d | %.2f | %d |\n", c.name, c.calls, float64(c.calls)/float64(max(1, m.Requests)), c.errors)
	}
	fmt.Fprintf(&sb, "| **total** | %d | %.2f | |\n", total, float64(total)/float64(max(1, m.Requests)))
	path := filepath.Join(r.perfDir, name+"-strace.md")
	return path, os.WriteFile(path, []byte(sb.String()), 0o644)
}

// profiled reports whether -perf records target t in phase: mizuchi-splice (and the baseline),
// nginx and HAProxy in the sink phase; mizuchi-uploadr, nginx and HAProxy on both TLS sides in the
// tls phase.
func profiled(phase, t string) bool {
	switch phase {
	case "sink":
		return role(t) == "mizuchi-splice" || t == "nginx" || t == "haproxy"
	case "tls":
		return slices.Contains(tlsPhaseTargets, t) && t != "direct" && !strings.HasPrefix(t, "tlsrelay-")
	}
	return false
}
