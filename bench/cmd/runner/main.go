// Command runner runs the end-to-end benchmarks of issue 5 on loopback and writes the raw
// measurements as JSON (bench/cmd/report turns them into bench/results/<date>.md and a chart).
//
// It starts an upstream (the bench sink, then versitygw on /dev/shm), every target in front of it
// (direct, mizuchi-uploadr with splice and with the copy path, nginx, the bare splice relay,
// httputil.ReverseProxy) and runs each workload against every target in turn — interleaved, the
// target order rotated on each repetition — measuring the target's CPU seconds (utime + stime of
// /proc/<pid>/stat) and peak RSS (VmHWM, reset before each run) around each run. Normally started by
// scripts/bench.sh.
//
// With -baseline <binary> one more target, mizuchi-base-splice, runs that mizuchi-uploadr binary (an
// older revision) with the same configuration and flags as mizuchi-splice. The two share one slot of
// the rotation: they always run back to back, so both see the same moment of a noisy machine, and they
// swap places on every repetition (mizuchi-splice first on even ones), so neither always runs first.
// HAProxy (-haproxy) runs beside nginx in every workload. The tls phase (after the sink phase, not in
// compare mode) puts every proxy behind or in front of TLS: see tls.go. -phases selects phases.
//
// Mode compare is the quick matrix cut down to what a regression check needs: 4 KiB, 1 MiB and 1 GiB
// PUTs against the sink, targets direct, mizuchi-splice and mizuchi-base-splice, 5 repetitions.
package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
	"github.com/mizuchi/uploadr/bench/internal/loadgen"
	"github.com/mizuchi/uploadr/bench/internal/procstat"
	"github.com/mizuchi/uploadr/bench/internal/runfile"
)

// Result and Run are the JSON the runner writes (bench/internal/runfile).
type (
	Result = runfile.Result
	Run    = runfile.File
)

type workload struct {
	name     string
	kind     string // load, wrk, idle
	size     int64
	conns    int
	count    int64 // load: requests in total instead of a duration
	duration time.Duration
	hold     time.Duration // idle
	targets  map[string]bool
	// signedChunks sends signed aws-chunked bodies (what minio-go sends over http): the proxy
	// decodes and verifies every chunk (copy path + SHA-256 per byte), next to the splice path.
	signedChunks bool
	// rate paces each connection's bodies (loadgen -rate, bytes per second; 0: unpaced).
	rate int64
	// fresh restarts each proxy before the run: its memory figures must not carry what earlier
	// workloads left in the heap (Go and nginx keep freed memory for a while).
	fresh bool
}

type runner struct {
	bin, mizuchi, versitygw, nginx, wrk, wrkScript, work string
	baseline                                             string            // mizuchi-uploadr binary of the baseline revision (empty: no baseline target)
	mizuchiFlags                                         string            // -mizuchi-flags: added to the measured binary's targets
	peerThreads                                          int               // -peer-threads: HAProxy's nbthread and nginx's worker_processes (0: one per CPU)
	haproxy                                              string            // haproxy binary (empty: no HAProxy targets)
	tls                                                  benchtls.Files    // the run's certificate (tls phase; see tlsFiles)
	targets                                              map[string]bool   // the targets to start; nil: all
	accessLog                                            map[string]string // binary -> how it ran: "off" or "default" (see mizuchiConfig)
	procs                                                []*proc
	perf                                                 string
	perfWorkloads                                        map[string]bool
	strace                                               string          // strace binary (-strace)
	straceWorkloads                                      map[string]bool // workloads whose system calls -strace counts
	perfDir                                              string
}

func main() { os.Exit(run()) }

// options are the flags that configure the run rather than the runner's processes.
type options struct {
	mode, out, only, targets, perfList, straceList, phases, baseRev, rev string
	dur                                                                  time.Duration
	reps                                                                 int
}

func run() int {
	var r runner
	o, code := r.parseFlags()
	if code != 0 {
		return code
	}
	if o.targets != "" {
		r.targets = set(o.targets)
	}
	if err := r.prepare(o); err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		return 1
	}
	o.setDefaults()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer r.stopAll()

	res := r.newRun(o)
	if o.mode == "single" {
		if err := r.single(ctx, o.reps, &res); err != nil {
			fmt.Fprintln(os.Stderr, "runner:", err)
			r.writeOut(o.out, &res)
			return 1
		}
		return exitWrite(r.writeOut(o.out, &res))
	}
	if err := r.runPhases(ctx, o, &res); err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		r.writeOut(o.out, &res)
		return 1
	}
	if err := r.writeOut(o.out, &res); err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		return 1
	}
	return 0
}

// parseFlags parses the command line into r (the processes and where they write) and the options,
// and checks it. It returns the exit code of a bad command line, or 0.
func (r *runner) parseFlags() (*options, int) {
	o := &options{}
	flag.StringVar(&o.mode, "mode", "quick", "quick (a subset, ~6 min), full, compare (4 KiB, 1 MiB and 1 GiB PUTs; direct, mizuchi-splice, mizuchi-base-splice; needs -baseline), or single (one 1 GiB PUT, proxy pinned: single.go)")
	flag.StringVar(&o.out, "out", "", "write the JSON results here (default: stdout)")
	flag.DurationVar(&o.dur, "duration", 0, "duration of each load run (default: quick 2s, full 4s)")
	flag.IntVar(&o.reps, "reps", 0, "repetitions of the whole interleaved matrix (default: quick 1, full 3, compare 5)")
	flag.StringVar(&o.only, "only", "", "comma-separated workload names to run (debugging)")
	flag.StringVar(&o.targets, "targets", "", "comma-separated targets to run (default: all; compare: direct,mizuchi-splice,mizuchi-base-splice)")
	flag.StringVar(&o.perfList, "perf", "", "comma-separated workload names: record a perf profile of mizuchi-splice, nginx and haproxy (sink phase) and of the mizuchi, nginx and haproxy tls-phase targets on each (needs perf)")
	flag.StringVar(&o.straceList, "strace", "", "comma-separated workload names: count the system calls per request of mizuchi-splice, nginx, haproxy and the splice relay (sink phase) and of every tls-phase proxy on each (strace -c -f)")
	flag.StringVar(&o.phases, "phases", "", "comma-separated phases to run: sink, tls, versitygw (default: all that apply; compare: sink)")
	flag.StringVar(&r.bin, "bin", "", "directory holding the sink, loadgen, splicerelay and goproxy binaries")
	flag.StringVar(&r.mizuchi, "mizuchi", "bin/mizuchi-uploadr", "mizuchi-uploadr binary")
	flag.StringVar(&r.mizuchiFlags, "mizuchi-flags", "", "space-separated flags added to the measured mizuchi-uploadr's command line (not the baseline's), e.g. \"-read-batch 64KiB\": to measure a setting against the baseline; recorded in the results")
	flag.IntVar(&r.peerThreads, "peer-threads", 0, "HAProxy's threads (nbthread) and nginx's worker processes (worker_processes); 0: one per CPU. To compare like for like with the measured binary run with \"-event-loops N\" in -mizuchi-flags; recorded in the results")
	flag.StringVar(&r.baseline, "baseline", "", "mizuchi-uploadr binary of a baseline revision: adds the target mizuchi-base-splice, run like mizuchi-splice")
	flag.StringVar(&o.baseRev, "baseline-rev", "", "the baseline's revision, recorded in the results")
	flag.StringVar(&r.versitygw, "versitygw", "", "versitygw binary (empty: no end-to-end phase)")
	flag.StringVar(&r.nginx, "nginx", "", "nginx binary (empty: no nginx target)")
	flag.StringVar(&r.haproxy, "haproxy", "", "haproxy binary (empty: no HAProxy target)")
	flag.StringVar(&r.wrk, "wrk", "", "wrk binary (empty: no wrk workloads)")
	flag.StringVar(&r.wrkScript, "wrk-script", "scripts/wrk-put.lua", "wrk Lua script")
	flag.StringVar(&r.work, "work", "", "scratch directory (logs, configs); default a new temp dir")
	flag.StringVar(&r.perfDir, "perf-dir", "", "where perf reports go (default: -work)")
	flag.StringVar(&o.rev, "rev", "", "the mizuchi-uploadr revision measured, recorded in the results")
	flag.Parse()
	if r.bin == "" {
		fmt.Fprintln(os.Stderr, "runner: -bin is required")
		return nil, 2
	}
	return o, o.checkMode(r.baseline)
}

// checkMode checks -mode and applies its own defaults (single: reps; compare: targets). It
// returns the exit code of a bad command line, or 0.
func (o *options) checkMode(baseline string) int {
	switch o.mode {
	case "quick", "full":
	case "single": // one 1 GiB PUT, the proxy on its own core (single.go)
		if o.reps == 0 {
			o.reps = singleReps
		}
	case "compare":
		if baseline == "" {
			fmt.Fprintln(os.Stderr, "runner: -mode compare needs -baseline")
			return 2
		}
		if o.targets == "" {
			o.targets = "direct,mizuchi-splice," + baseTarget
		}
	default:
		fmt.Fprintf(os.Stderr, "runner: unknown -mode %q\n", o.mode)
		return 2
	}
	return 0
}

// setDefaults fills in the duration and repetitions the flags left at zero.
func (o *options) setDefaults() {
	full := o.mode == "full"
	if o.reps == 0 && o.mode == "compare" {
		o.reps = 5
	}
	if o.dur == 0 {
		o.dur = 2 * time.Second
		if full {
			o.dur = 4 * time.Second
		}
	}
	if o.reps == 0 {
		o.reps = 1
		if full {
			o.reps = 3
		}
	}
}

// prepare makes the scratch directory, makes every path handed to a process absolute and finds
// perf and strace if the run asks for them (without them it warns and goes on).
func (r *runner) prepare(o *options) error {
	if r.work == "" {
		d, err := os.MkdirTemp("", "mizuchi-bench-")
		if err != nil {
			return err
		}
		r.work = d
	}
	// nginx resolves -c against its -p prefix: every path handed to a process is absolute.
	for _, p := range []*string{&r.work, &r.perfDir, &r.wrkScript} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	if err := os.MkdirAll(r.work, 0o755); err != nil {
		return err
	}
	if r.perfDir == "" {
		r.perfDir = r.work
	}
	if o.perfList != "" {
		if p, err := exec.LookPath("perf"); err == nil {
			r.perf = p
			r.perfWorkloads = set(o.perfList)
		} else {
			fmt.Fprintln(os.Stderr, "runner: perf not found; no profiles")
		}
	}
	if o.straceList != "" {
		if p, err := exec.LookPath("strace"); err == nil {
			r.strace = p
			r.straceWorkloads = set(o.straceList)
		} else {
			fmt.Fprintln(os.Stderr, "runner: strace not found; no system call counts")
		}
	}
	return nil
}

// newRun starts the results with the run's metadata: mode, machine, versions and revisions.
func (r *runner) newRun(o *options) Run {
	res := Run{Meta: map[string]string{
		"mode": o.mode, "date": time.Now().UTC().Format(time.RFC3339), "duration": o.dur.String(),
		"reps": strconv.Itoa(o.reps), "cpus": strconv.Itoa(runtime.NumCPU()), "go": runtime.Version(),
		"kernel": kernel(), "cpu_model": cpuModel(), "nginx": r.nginxVersion(), "haproxy": r.haproxyVersion(), "work": r.work,
		"rev": o.rev, "mizuchi_go": goVersionOf(r.mizuchi), "mizuchi_flags": r.mizuchiFlags,
	}, Perf: map[string]string{}}
	if r.peerThreads > 0 {
		res.Meta["peer_threads"] = strconv.Itoa(r.peerThreads)
	}
	if r.baseline != "" {
		res.Meta["baseline_rev"] = o.baseRev
		res.Meta["baseline_go"] = goVersionOf(r.baseline)
		if res.Meta["baseline_go"] != res.Meta["mizuchi_go"] {
			fmt.Fprintf(os.Stderr, "runner: warning: the baseline was built with %s, the measured binary with %s\n", res.Meta["baseline_go"], res.Meta["mizuchi_go"])
		}
	}
	return res
}

// runPhases runs the workloads of each phase selected (-phases, -only) in turn; versitygw only
// with a versitygw binary.
func (r *runner) runPhases(ctx context.Context, o *options, res *Run) error {
	var phaseSet map[string]bool
	if o.phases != "" {
		phaseSet = set(o.phases)
	}
	for _, phase := range []string{"sink", "tls", "versitygw"} {
		if phase == "versitygw" && r.versitygw == "" || phaseSet != nil && !phaseSet[phase] {
			continue
		}
		wls := workloads(phase, o.mode, o.dur, r.wrk != "")
		if o.only != "" {
			keep := set(o.only)
			var sel []workload
			for _, w := range wls {
				if keep[w.name] {
					sel = append(sel, w)
				}
			}
			wls = sel
		}
		if len(wls) == 0 {
			continue
		}
		if err := r.phase(ctx, phase, wls, o.reps, res); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) writeOut(path string, res *Run) error {
	if v := r.accessLog[r.mizuchi]; v != "" {
		res.Meta["mizuchi_access_log"] = v
	}
	if v := r.accessLog[r.baseline]; v != "" && r.baseline != "" {
		res.Meta["baseline_access_log"] = v
	}
	b, err := json.MarshalIndent(res, "", " ")
	if err != nil {
		return err
	}
	if path == "" {
		_, err = os.Stdout.Write(append(b, '\n'))
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func set(list string) map[string]bool {
	m := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			m[s] = true
		}
	}
	return m
}

// workloads lists what runs against each upstream. Names are what -only and -perf take.
func workloads(phase, mode string, d time.Duration, wrk bool) []workload {
	full := mode == "full"
	load := func(size int64, c int) workload {
		return workload{name: fmt.Sprintf("put %s c%d", loadgen.FormatSize(size), c), kind: "load", size: size, conns: c, duration: d}
	}
	if phase == "tls" {
		return tlsWorkloads(mode, d)
	}
	var w []workload
	if mode == "compare" {
		// The figures a regression check of the engine reads: CPU per request in the loop (4 KiB),
		// CPU per GiB streamed in the loop or detached (1 MiB) and spliced (1 GiB, fresh processes).
		// The 1 GiB PUTs are counted, not timed: a 2 s run holds one or two of them, and the one cut
		// off at the end would be half the bytes, with its teardown possibly after the CPU reading.
		if phase != "sink" {
			return nil
		}
		w = append(w, load(4<<10, 16), load(1<<20, 16),
			workload{name: "put 1GiB x3 c1", kind: "load", size: 1 << 30, conns: 1, count: 3, fresh: true})
		return w
	}
	if phase == "versitygw" {
		// End to end: versitygw costs about a core per 350 MiB/s, so a small set.
		w = append(w, load(4<<10, 16), load(1<<20, 16), load(64<<20, 1), load(1<<30, 1))
		return w
	}

	sizes := []int64{4 << 10, 1 << 20, 64 << 20, 1 << 30}
	concs := []int{1, 16, 256}
	if !full {
		w = append(w, load(4<<10, 16), load(1<<20, 16), load(64<<20, 16), load(1<<30, 1))
		if phase == "sink" {
			// The splice path's peak RSS at 16 concurrent 1 GiB streams, beside the tls phase's.
			w = append(w, load(1<<30, 16))
			// CPU per GiB of the signed-chunk path next to the splice path's (put 1GiB c1).
			w = append(w, signedChunks(workload{name: "put 1GiB x3 c1 signed-chunks", kind: "load", size: 1 << 30, conns: 1, count: 3}))
		}
	} else {
		for _, s := range sizes {
			for _, c := range concs {
				w = append(w, load(s, c))
			}
		}
	}
	// The relay is left out of the idle workload: it holds two descriptors per connection, more than
	// the 20,000 RLIMIT_NOFILE of these machines allows, and its idle cost is not a figure of the issue.
	proxies := map[string]bool{"mizuchi-splice": true, "nginx": true, "haproxy": true, "goproxy": true}
	many := workload{name: "put 8MiB x1000 c1000", kind: "load", size: 8 << 20, conns: 1000, count: 1000}
	idle := workload{name: "idle 10000", kind: "idle", size: 4 << 10, conns: 10000, hold: 5 * time.Second, targets: proxies}
	if full {
		w = append(w, many)
		idle.hold = 10 * time.Second
	} else {
		many.targets = map[string]bool{"mizuchi-splice": true, "nginx": true, "haproxy": true}
		w = append(w, many)
	}
	w = append(w, idle)
	if wrk {
		for _, s := range []int64{4 << 10, 1 << 20} {
			if !full && s != 4<<10 {
				continue
			}
			w = append(w, workload{name: fmt.Sprintf("wrk %s c16", loadgen.FormatSize(s)), kind: "wrk", size: s, conns: 16, duration: d})
		}
	}
	for i := range w {
		w[i].fresh = w[i].kind == "idle" || w[i].count > 0 || w[i].size == 1<<30
	}
	return w
}

// signedChunks makes w a signed aws-chunked workload. Only mizuchi-uploadr verifies the chunks; the
// other proxies would pass the framing through: they are left out. (Not in the compare mode: a
// baseline revision before signed-chunk support answers 501.)
func signedChunks(w workload) workload {
	w.signedChunks = true
	w.targets = map[string]bool{"direct": true, "mizuchi-splice": true, "mizuchi-copy": true}
	return w
}

func (r *runner) phase(ctx context.Context, phase string, wls []workload, reps int, res *Run) error {
	var up *upstream
	var err error
	switch phase {
	case "sink", "tls":
		up, err = r.startSink(phase == "tls")
	default:
		up, err = r.startVersitygw()
	}
	if up != nil && up.data != "" {
		defer os.RemoveAll(up.data)
	}
	if err != nil {
		return err
	}
	defer r.stopAll()
	var targets []*target
	if phase == "tls" {
		defer func() { res.Meta["tls_upstream_suites"] = negotiatedSuites(up.proc.log) }()
		targets, err = r.startTLSTargets(ctx, up)
	} else {
		targets, err = r.startTargets(ctx, up)
	}
	if err != nil {
		return err
	}
	for rep := range reps {
		for _, w := range wls {
			for _, t := range runOrder(targets, rep) {
				if w.targets != nil && !w.targets[role(t.name)] || w.signedChunks && t.name == baseTarget {
					continue
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if w.fresh {
					if err := r.restart(t); err != nil {
						return err
					}
				}
				m, err := r.measure(ctx, up, t, w)
				if err != nil {
					return fmt.Errorf("%s %s %s: %w", phase, w.name, t.name, err)
				}
				m.Phase, m.Rep = phase, rep
				res.Results = append(res.Results, m)
				logResult(m)
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	if r.strace != "" && phase != "versitygw" {
		r.straceAll(ctx, up, targets, wls, phase, res)
	}
	if r.perf != "" && phase != "versitygw" {
		for _, w := range wls {
			if !r.perfWorkloads[w.name] {
				continue
			}
			for _, t := range targets {
				if !profiled(phase, t.name) {
					continue
				}
				path, err := r.profile(ctx, up, t, w, phase)
				if err != nil {
					fmt.Fprintln(os.Stderr, "runner: perf:", err)
					continue
				}
				res.Perf[phase+" "+w.name+" "+t.name] = path
			}
		}
	}
	return nil
}

// baseTarget is the name of the baseline binary's target.
const baseTarget = "mizuchi-base-splice"

// role is the target whose place t takes in a workload's target list: the baseline runs wherever
// mizuchi-splice does.
func role(t string) string {
	if t == baseTarget {
		return "mizuchi-splice"
	}
	return t
}

// runOrder is the order of the targets in repetition rep: rotated by rep, and the baseline right
// after mizuchi-splice on even repetitions, right before it on odd ones (one slot of the rotation).
func runOrder(targets []*target, rep int) []*target {
	var base, splice *target
	var others []*target
	for _, t := range targets {
		switch t.name {
		case baseTarget:
			base = t
			continue
		case "mizuchi-splice":
			splice = t
		}
		others = append(others, t)
	}
	if base != nil && splice == nil {
		others, base = append(others, base), nil
	}
	out := make([]*target, 0, len(targets))
	for i := range others {
		t := others[(i+rep)%len(others)]
		if t == splice && base != nil && rep%2 == 1 {
			out = append(out, base)
		}
		out = append(out, t)
		if t == splice && base != nil && rep%2 == 0 {
			out = append(out, base)
		}
	}
	return out
}

func logResult(m Result) {
	cpu := ""
	if m.BodyBytes > 0 && m.CPUSeconds > 0 {
		cpu = fmt.Sprintf(" cpu %.3f s/GiB %.1f µs/req", m.CPUSeconds/(float64(m.BodyBytes)/(1<<30)), m.CPUSeconds/float64(max(1, m.Requests))*1e6)
	}
	extra := ""
	if m.Kind == "idle" {
		extra = fmt.Sprintf(" opened %d alive %d idle-rss %.1f MiB", m.Opened, m.Alive, float64(m.IdleRSS)/(1<<20))
	}
	if m.Errors > 0 {
		extra += fmt.Sprintf(" ERRORS %d (%s)", m.Errors, m.FirstError)
	}
	fmt.Fprintf(os.Stderr, "%-9s %-22s %-20s rep %d: %8.0f req/s %8.1f MiB/s p50 %.2f p99 %.2f ms%s peak-rss %.1f MiB%s\n",
		m.Phase, m.Workload, m.Target, m.Rep, m.RPS, m.MiBps, m.P50, m.P99, cpu, float64(m.PeakRSS)/(1<<20), extra)
}

// measure runs w against t once, reading the target's /proc around it.
func (r *runner) measure(ctx context.Context, up *upstream, t *target, w workload) (Result, error) {
	m := Result{Workload: w.name, Kind: w.kind, Target: t.name, Size: w.size, Conns: w.conns}
	pids, err := t.pids()
	if err != nil {
		return m, err
	}
	upPids := []int{up.proc.cmd.Process.Pid}
	if len(pids) > 0 {
		if err := procstat.ResetPeak(pids...); err != nil && !errors.Is(err, procstat.ErrUnsupported) {
			fmt.Fprintln(os.Stderr, "runner: reset peak RSS:", err)
		}
	}
	before, err := procstat.Read(pids...)
	if err != nil {
		return m, err
	}
	upBefore, err := procstat.Read(upPids...)
	if err != nil {
		return m, err
	}
	switch w.kind {
	case "load":
		err = r.runLoad(ctx, t, w, &m)
	case "wrk":
		err = r.runWrk(ctx, t, w, &m)
	case "idle":
		err = r.runIdle(ctx, t, w, pids, &m)
	}
	if err != nil {
		return m, err
	}
	after, err := procstat.Read(pids...)
	if err != nil {
		return m, fmt.Errorf("reading the target after the run (did it die?): %w", err)
	}
	upAfter, err := procstat.Read(upPids...)
	if err != nil {
		return m, err
	}
	m.CPUSeconds = after.Sub(before).CPUSeconds
	m.PeakRSS = after.PeakRSS
	m.SinkCPUSeconds = upAfter.Sub(upBefore).CPUSeconds
	return m, nil
}

func (r *runner) loadArgs(t *target, w workload, bucket string) []string {
	args := []string{"-addr", t.addr, "-bucket", bucket, "-key-prefix", "lg-" + t.name + "/",
		"-size", strconv.FormatInt(w.size, 10), "-c", strconv.Itoa(w.conns),
		"-access-key", accessKey, "-secret-key", secretKey, "-region", region}
	if w.signedChunks {
		args = append(args, "-signed-chunks")
	}
	if w.rate > 0 {
		args = append(args, "-rate", strconv.FormatInt(w.rate, 10))
	}
	if t.tls {
		args = append(args, "-tls-ca", r.tls.CA)
	}
	if w.count > 0 {
		args = append(args, "-n", strconv.FormatInt(w.count, 10))
	} else if w.kind == "load" {
		args = append(args, "-d", w.duration.String())
	}
	return args
}

func (r *runner) runLoad(ctx context.Context, t *target, w workload, m *Result) error {
	cmd := exec.CommandContext(ctx, filepath.Join(r.bin, "loadgen"), r.loadArgs(t, w, t.bucket)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	var lr loadgen.Result
	if err := json.Unmarshal(out, &lr); err != nil {
		return fmt.Errorf("loadgen output %q: %w", out, err)
	}
	m.Requests, m.Errors, m.Aborted, m.BodyBytes = lr.Requests, lr.Errors, lr.Aborted, lr.BodyBytes
	m.Seconds, m.RPS, m.MiBps = lr.Seconds, lr.RPS, lr.MiBps
	m.P50, m.P90, m.P99, m.Max, m.FirstError, m.TLS = lr.P50, lr.P90, lr.P99, lr.Max, lr.FirstError, lr.TLS
	return nil
}

// runIdle opens the idle connections; once all are open it waits a second and reads the target's
// RSS while they sit idle.
func (r *runner) runIdle(ctx context.Context, t *target, w workload, pids []int, m *Result) error {
	args := append(r.loadArgs(t, w, t.bucket)[:0:0], r.loadArgs(t, w, t.bucket)...)
	args = append(args, "-idle", strconv.Itoa(w.conns), "-hold", w.hold.String())
	cmd := exec.CommandContext(ctx, filepath.Join(r.bin, "loadgen"), args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(stdout)
	var last string
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "READY ") {
			time.Sleep(time.Second)
			if u, err := procstat.Read(pids...); err == nil {
				m.IdleRSS = u.RSS
			}
			continue
		}
		last = line
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("loadgen -idle: %w", err)
	}
	var ir loadgen.IdleResult
	if err := json.Unmarshal([]byte(last), &ir); err != nil {
		return fmt.Errorf("loadgen -idle output %q: %w", last, err)
	}
	m.Opened, m.Alive, m.FirstError = ir.Opened, ir.Alive, ir.FirstError
	m.Requests = ir.Opened + ir.Alive
	m.Errors = 2*int64(w.conns) - m.Requests
	m.BodyBytes = m.Requests * w.size
	return nil
}

// wrkJSON is the line scripts/wrk-put.lua's done() prints.
type wrkJSON struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Non2xx   int64   `json:"non2xx"`
	Seconds  float64 `json:"seconds"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
}

func (r *runner) runWrk(ctx context.Context, t *target, w workload, m *Result) error {
	threads := min(2, w.conns)
	url := fmt.Sprintf("http://%s/%s/wrk-%s", t.addr, t.openBucket, t.name)
	cmd := exec.CommandContext(ctx, r.wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(w.conns),
		"-d", strconv.Itoa(max(1, int(w.duration.Seconds())))+"s", "-s", r.wrkScript, url)
	cmd.Env = append(os.Environ(), "WRK_SIZE="+strconv.FormatInt(w.size, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("wrk: %w: %s", err, out)
	}
	var j wrkJSON
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "WRK_JSON "); ok {
			if err := json.Unmarshal([]byte(rest), &j); err != nil {
				return fmt.Errorf("wrk output %q: %w", rest, err)
			}
			found = true
		}
	}
	if !found {
		return fmt.Errorf("wrk printed no WRK_JSON line: %s", out)
	}
	m.Requests = j.Requests - j.Non2xx
	m.Errors = j.Errors + j.Non2xx
	if m.Errors > 0 {
		m.FirstError = fmt.Sprintf("wrk: %d socket errors, %d non-2xx", j.Errors, j.Non2xx)
	}
	m.BodyBytes = m.Requests * w.size
	m.Seconds = j.Seconds
	m.RPS = float64(m.Requests) / j.Seconds
	m.MiBps = float64(m.BodyBytes) / (1 << 20) / j.Seconds
	m.P50, m.P90, m.P99, m.Max = j.P50, j.P90, j.P99, j.Max
	return nil
}

// profile records perf (call graphs, 999 Hz) of t's main process during one more run of w and
// writes `perf report` (no children, top symbols) as text next to the results.
func (r *runner) profile(ctx context.Context, up *upstream, t *target, w workload, phase string) (string, error) {
	pids, err := t.pids()
	if err != nil || len(pids) == 0 {
		return "", fmt.Errorf("no pid for %s", t.name)
	}
	name := strings.NewReplacer(" ", "-", "/", "-").Replace(phase + "-" + w.name + "-" + t.name)
	data := filepath.Join(r.work, name+".perf.data")
	strs := make([]string, len(pids))
	for i, p := range pids {
		strs[i] = strconv.Itoa(p)
	}
	rec := exec.CommandContext(ctx, r.perf, "record", "-F", "999", "-g", "-o", data, "-p", strings.Join(strs, ","))
	rec.Stdout, rec.Stderr = nil, nil
	if err := rec.Start(); err != nil {
		return "", err
	}
	time.Sleep(500 * time.Millisecond)
	m, merr := r.measure(ctx, up, t, w)
	_ = rec.Process.Signal(os.Interrupt)
	_ = rec.Wait()
	if merr != nil {
		return "", merr
	}
	m.Phase = phase
	logResult(m)
	rep, err := exec.CommandContext(ctx, r.perf, "report", "-i", data, "--stdio", "--no-children", "--percent-limit", "1.5",
		"--sort", "sym", "-g", "none").Output()
	if err != nil {
		return "", fmt.Errorf("perf report: %w", err)
	}
	ch, err := exec.CommandContext(ctx, r.perf, "report", "-i", data, "--stdio", "--children", "--percent-limit", "4",
		"--sort", "sym", "-g", "none").Output()
	if err != nil {
		return "", fmt.Errorf("perf report --children: %w", err)
	}
	path := filepath.Join(r.perfDir, name+".txt")
	text := fmt.Sprintf("# perf profile of %s (pids %v), %s, %s upstream\n# run: %.0f req/s, %.1f MiB/s, CPU %.3f s over %.1f s\n\n## self time (--no-children)\n%s\n## inclusive time (--children)\n%s",
		t.name, pids, w.name, phase, m.RPS, m.MiBps, m.CPUSeconds, m.Seconds, stripComments(rep), stripComments(ch))
	return path, os.WriteFile(path, []byte(text), 0o644)
}

func stripComments(b []byte) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		out = append(out, strings.TrimRight(l, " "))
	}
	return strings.Join(out, "\n") + "\n"
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return runtime.GOOS
	}
	return strings.TrimSpace(string(b))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// goVersionOf is the Go version a binary was built with, from its build info.
func goVersionOf(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	return bi.GoVersion
}

func (r *runner) nginxVersion() string {
	if r.nginx == "" {
		return ""
	}
	out, _ := exec.Command(r.nginx, "-v").CombinedOutput()
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: "))
}
