// Command report turns the runner's JSON (and the Go micro-benchmarks' output) into
// bench/results/<date>.md with a PNG chart, and prints the ratios issue 5 names with their verdicts.
// When the run measured a baseline binary (runner -baseline), it also prints and writes the ratios
// new ÷ baseline of every workload both ran, with the verdict of issue 8's 5% regression budget; a
// compare run (runner -mode compare) gets only that.
//
//	report -in results.json -micro micro.txt -md bench/results/2026-11-26.md -png bench/results/2026-11-26.png
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mizuchi/uploadr/bench/internal/runfile"
)

// result and runFile are the runner's JSON (bench/internal/runfile).
type (
	result  = runfile.Result
	runFile = runfile.File
)

// agg is the median over repetitions of one (phase, workload, target).
type agg struct {
	phase, workload, kind, target string
	size                          int64
	conns, n                      int
	rps, mibps, p50, p90, p99     float64
	cpuPerGiB, cpuPerReq          float64 // NaN for direct
	upCPUPerGiB                   float64
	peakRSS, idleRSS              float64
	errors, requests              int64
	opened, alive                 int64
	firstError                    string
	spread                        string // min–max of the key figure
}

var targetOrder = []string{"direct", "mizuchi-splice", baseTarget, "mizuchi-copy", "nginx", "haproxy", "splicerelay", "goproxy",
	"mizuchi-tls-client", "mizuchi-base-tls-client", "mizuchi-tls-client-goroutine", "nginx-tls-client", "haproxy-tls-client", "tlsrelay-client",
	"mizuchi-tls-upstream", "mizuchi-base-tls-upstream", "nginx-tls-upstream", "haproxy-tls-upstream", "tlsrelay-upstream"}

const gib = 1 << 30

func median(v []float64) float64 {
	var x []float64
	for _, f := range v {
		if !math.IsNaN(f) {
			x = append(x, f)
		}
	}
	if len(x) == 0 {
		return math.NaN()
	}
	slices.Sort(x)
	if len(x)%2 == 1 {
		return x[len(x)/2]
	}
	return (x[len(x)/2-1] + x[len(x)/2]) / 2
}

func aggregate(rs []result) map[[3]string]*agg {
	groups := map[[3]string][]result{}
	for _, r := range rs {
		k := [3]string{r.Phase, r.Workload, r.Target}
		groups[k] = append(groups[k], r)
	}
	out := map[[3]string]*agg{}
	for k, g := range groups {
		a := &agg{phase: k[0], workload: k[1], target: k[2], kind: g[0].Kind, size: g[0].Size, conns: g[0].Conns, n: len(g)}
		col := func(f func(r result) float64) float64 {
			v := make([]float64, len(g))
			for i, r := range g {
				v[i] = f(r)
			}
			return median(v)
		}
		lat := func(f func(r result) float64) func(r result) float64 {
			return func(r result) float64 {
				if r.Requests == 0 {
					return math.NaN()
				}
				return f(r)
			}
		}
		a.rps = col(func(r result) float64 { return r.RPS })
		a.mibps = col(func(r result) float64 { return r.MiBps })
		a.p50 = col(lat(func(r result) float64 { return r.P50 }))
		a.p90 = col(lat(func(r result) float64 { return r.P90 }))
		a.p99 = col(lat(func(r result) float64 { return r.P99 }))
		cpuGiB := func(r result) float64 {
			if r.Target == "direct" || r.BodyBytes == 0 {
				return math.NaN()
			}
			return r.CPUSeconds / (float64(r.BodyBytes) / gib)
		}
		a.cpuPerGiB = col(cpuGiB)
		a.cpuPerReq = col(func(r result) float64 {
			if r.Target == "direct" || r.Requests == 0 {
				return math.NaN()
			}
			return r.CPUSeconds / float64(r.Requests) * 1e6
		})
		a.upCPUPerGiB = col(func(r result) float64 {
			if r.BodyBytes == 0 {
				return math.NaN()
			}
			return r.SinkCPUSeconds / (float64(r.BodyBytes) / gib)
		})
		a.peakRSS = col(func(r result) float64 { return float64(r.PeakRSS) / (1 << 20) })
		a.idleRSS = col(func(r result) float64 { return float64(r.IdleRSS) / (1 << 20) })
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, r := range g {
			a.errors += r.Errors
			a.requests += r.Requests
			a.opened = max(a.opened, r.Opened)
			if a.alive == 0 || r.Alive < a.alive {
				a.alive = r.Alive
			}
			if a.firstError == "" {
				a.firstError = r.FirstError
			}
			v := r.RPS
			if a.size >= 64<<20 {
				v = cpuGiB(r)
				if r.Target == "direct" {
					v = r.MiBps
				}
			}
			if !math.IsNaN(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		if len(g) > 1 && lo <= hi {
			a.spread = fmt.Sprintf("%s–%s", fmtNum(lo), fmtNum(hi))
		}
		out[k] = a
	}
	return out
}

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// micro is one Go micro-benchmark line.
type micro struct {
	name                string
	nsOp, mbS           float64
	bytesOp, allocsOp   float64
	pkg                 string
	hasBytes, hasAllocs bool
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+)\s+\d+\s+([\d.]+) ns/op(?:\s+([\d.]+) MB/s)?(?:\s+([\d.]+) B/op)?(?:\s+([\d.]+) allocs/op)?`)

func readMicro(path string) ([]micro, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []micro
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if p, ok := strings.CutPrefix(l, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/mizuchi/uploadr/")
		}
		m := benchLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		b := micro{name: m[1], pkg: pkg}
		b.nsOp, _ = strconv.ParseFloat(m[2], 64)
		b.mbS, _ = strconv.ParseFloat(m[3], 64)
		if m[4] != "" {
			b.bytesOp, _ = strconv.ParseFloat(m[4], 64)
			b.hasBytes = true
		}
		if m[5] != "" {
			b.allocsOp, _ = strconv.ParseFloat(m[5], 64)
			b.hasAllocs = true
		}
		out = append(out, b)
	}
	return out, sc.Err()
}

// readRuns reads runner files; the first gives the metadata, and each later one replaces the
// results of the (phase, workload) pairs it holds and adds its profiles.
func readRuns(paths []string) (runFile, error) {
	var rf runFile
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return rf, err
		}
		var next runFile
		if err := json.Unmarshal(b, &next); err != nil {
			return rf, fmt.Errorf("%s: %w", p, err)
		}
		if i == 0 {
			rf = next
			if rf.Perf == nil {
				rf.Perf = map[string]string{}
			}
			continue
		}
		redone := map[[2]string]bool{}
		for _, r := range next.Results {
			redone[[2]string{r.Phase, r.Workload}] = true
		}
		kept := rf.Results[:0]
		for _, r := range rf.Results {
			if !redone[[2]string{r.Phase, r.Workload}] {
				kept = append(kept, r)
			}
		}
		rf.Results = append(kept, next.Results...)
		for k, v := range next.Perf {
			rf.Perf[k] = v
		}
		var names []string
		for k := range redone {
			names = append(names, k[0]+" "+k[1])
		}
		slices.Sort(names)
		rf.Meta["rerun"] = strings.TrimPrefix(rf.Meta["rerun"]+"; ", "; ") + fmt.Sprintf("%s (rev %s, %s)", strings.Join(names, ", "), next.Meta["rev"], next.Meta["date"])
	}
	return rf, nil
}

func main() { os.Exit(run()) }

func run() int {
	in := flag.String("in", "", "runner JSON; several, comma-separated: a later file's results replace the earlier\n"+
		"files' results of the same phase and workload (a re-run of some workloads)")
	microPath := flag.String("micro", "", "output of go test -bench -benchmem (optional)")
	mdPath := flag.String("md", "", "Markdown file to write")
	pngPath := flag.String("png", "", "PNG chart to write")
	cmdline := flag.String("cmd", "scripts/bench.sh full", "the command that produced the run, quoted in the file")
	flag.Parse()
	rf, err := readRuns(strings.Split(*in, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		return 1
	}
	var micros []micro
	if *microPath != "" {
		if micros, err = readMicro(*microPath); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			return 1
		}
	}
	rep := newReport(rf, micros)
	var verdicts, v11 []verdict
	if rf.Meta["mode"] != "compare" {
		verdicts = rep.verdicts()
		printVerdicts(os.Stdout, verdicts)
		if rep.hasPaths() {
			v11 = rep.issue11Verdicts()
			printIssue11(os.Stdout, v11)
		}
	}
	var base []cmpRow
	if rep.hasBaseline() {
		base = rep.baseline()
		rep.printBaseline(os.Stdout, base)
	}
	if *pngPath != "" {
		if err := writeChart(*pngPath, "Mizuchi Uploadr benchmarks "+rf.Meta["date"]+" ("+rf.Meta["mode"]+", "+rf.Meta["cpus"]+" CPUs, loopback, medians)", rep.panels()); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			return 1
		}
	}
	if *mdPath != "" {
		f, err := os.Create(*mdPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			return 1
		}
		png := ""
		if *pngPath != "" {
			png = filepath.Base(*pngPath)
		}
		rep.markdown(f, verdicts, v11, base, png, *cmdline)
		if err := f.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			return 1
		}
	}
	return 0
}

type report struct {
	rf     runFile
	aggs   map[[3]string]*agg
	micros []micro
}

func newReport(rf runFile, micros []micro) *report {
	return &report{rf: rf, aggs: aggregate(rf.Results), micros: micros}
}

func (r *report) get(phase, workload, target string) *agg {
	return r.aggs[[3]string{phase, workload, target}]
}

// workloads returns the workload names of a phase and kind in the order they ran.
func (r *report) workloads(phase, kind string) []string {
	var out []string
	for _, x := range r.rf.Results {
		if x.Phase == phase && (kind == "" || x.Kind == kind) && !slices.Contains(out, x.Workload) {
			out = append(out, x.Workload)
		}
	}
	return out
}

func (r *report) targets(phase, workload string) []string {
	var out []string
	for _, t := range targetOrder {
		if r.get(phase, workload, t) != nil {
			out = append(out, t)
		}
	}
	return out
}

// verdict is one line of the targets table.
type verdict struct {
	goal, workload string
	value          float64
	limit          float64
	unit           string
	op             string // "<=", ">=", "<", "=="
	met, known     bool
	info           bool // a ratio for context, not a target
	detail         string
}

func check(v float64, op string, limit float64) bool {
	switch op {
	case "<=":
		return v <= limit
	case ">=":
		return v >= limit
	case "<":
		return v < limit
	}
	return v == limit
}

func (r *report) ratio(phase, w, a, b string, f func(*agg) float64) (float64, string, bool) {
	x, y := r.get(phase, w, a), r.get(phase, w, b)
	if x == nil || y == nil {
		return math.NaN(), "", false
	}
	fx, fy := f(x), f(y)
	if math.IsNaN(fx) || math.IsNaN(fy) || fy == 0 {
		return math.NaN(), "", false
	}
	return fx / fy, fmt.Sprintf("%s / %s", fmtNum(fx), fmtNum(fy)), true
}

func (r *report) verdicts() []verdict {
	var out []verdict
	add := func(goal, w string, v float64, detail string, ok bool, op string, limit float64, unit string) {
		out = append(out, verdict{goal: goal, workload: w, value: v, detail: detail, known: ok, op: op, limit: limit, unit: unit, met: ok && check(v, op, limit)})
	}
	cpu := func(a *agg) float64 { return a.cpuPerGiB }
	for _, w := range r.workloads("sink", "load") {
		a := r.get("sink", w, "mizuchi-splice")
		if a == nil || a.size < 64<<20 || a.conns > 256 || strings.Contains(w, "x1000") {
			continue
		}
		v, d, ok := r.ratio("sink", w, "mizuchi-splice", "splicerelay", cpu)
		add("proxy CPU/GiB ÷ bare splice relay CPU/GiB", w, v, d+" s/GiB", ok, "<=", 1.15, "×")
		v, d, ok = r.ratio("sink", w, "mizuchi-splice", "nginx", cpu)
		add("proxy CPU/GiB ÷ nginx CPU/GiB", w, v, d+" s/GiB", ok, "<=", 0.5, "×")
		v, d, ok = r.ratio("sink", w, "mizuchi-splice", "direct", func(a *agg) float64 { return a.mibps })
		add("proxy throughput ÷ direct throughput", w, v, d+" MiB/s", ok, ">=", 0.95, "×")
		v, d, ok = r.ratio("sink", w, "splicerelay", "direct", func(a *agg) float64 { return a.mibps })
		add("(context) bare splice relay throughput ÷ direct", w, v, d+" MiB/s: the floor any relay on this machine hits", ok, ">=", 0.95, "×")
		v, d, ok = r.ratio("sink", w, "mizuchi-splice", "splicerelay", func(a *agg) float64 { return a.mibps })
		add("(context) proxy throughput ÷ bare splice relay throughput", w, v, d+" MiB/s", ok, ">=", 0.95, "×")
	}
	for _, kind := range []string{"load", "wrk"} {
		for _, w := range r.workloads("sink", kind) {
			a := r.get("sink", w, "mizuchi-splice")
			if a == nil || (a.size != 4<<10 && a.size != 1<<20) || strings.Contains(w, "x1000") {
				continue
			}
			rps := func(a *agg) float64 { return a.rps }
			v, d, ok := r.ratio("sink", w, "mizuchi-splice", "nginx", rps)
			add("small-object req/s ÷ nginx req/s", w, v, d+" req/s", ok, ">=", 1, "×")
			v, d, ok = r.ratio("sink", w, "mizuchi-splice", "goproxy", rps)
			add("small-object req/s ÷ httputil.ReverseProxy req/s", w, v, d+" req/s", ok, ">=", 1, "×")
		}
	}
	for _, w := range r.workloads("sink", "load") {
		if a := r.get("sink", w, "mizuchi-splice"); a != nil && a.size == 1<<30 && a.conns == 1 {
			add("RSS while a 1 GiB upload streams", w, a.peakRSS, "peak VmHWM", true, "<", 64, "MiB")
		}
	}
	for _, w := range r.workloads("sink", "idle") {
		if a := r.get("sink", w, "mizuchi-splice"); a != nil {
			add("RSS with 10,000 idle connections", w, a.idleRSS,
				fmt.Sprintf("VmRSS while idle (peak %s MiB), %d opened, %d alive after the hold", fmtNum(a.peakRSS), a.opened, a.alive),
				a.opened > 0, "<", 100, "MiB")
		}
	}
	for _, m := range r.micros {
		if !m.hasAllocs || !(strings.HasPrefix(m.name, "BenchmarkParseRequest") || strings.HasPrefix(m.name, "BenchmarkSign") || strings.HasPrefix(m.name, "BenchmarkVerify")) {
			continue
		}
		add("allocations per request on the parse and sign paths", m.pkg+" "+strings.TrimSuffix(m.name, "-"+lastDash(m.name)), m.allocsOp, "allocs/op", true, "==", 0, "allocs/op")
	}
	return out
}

func lastDash(s string) string {
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

func (v verdict) status() string {
	switch {
	case v.info && v.known:
		return "(context)"
	case strings.HasPrefix(v.goal, "(context)") && v.known:
		if v.met {
			return "(≥ 0.95)"
		}
		return "(< 0.95)"
	case !v.known:
		return "n/a"
	case v.met:
		return "met"
	}
	return "**MISSED**"
}

func (v verdict) valueString() string {
	if !v.known {
		return "—"
	}
	if v.unit == "×" {
		return fmt.Sprintf("%.2f×", v.value)
	}
	return fmtNum(v.value) + " " + v.unit
}

func (v verdict) limitString() string {
	if v.unit == "×" {
		return fmt.Sprintf("%s %.2f×", v.op, v.limit)
	}
	return fmt.Sprintf("%s %s %s", v.op, fmtNum(v.limit), v.unit)
}

func printVerdicts(w io.Writer, vs []verdict) {
	fmt.Fprintln(w, "Ratios and targets (medians; mizuchi-uploadr with splice against the sink):")
	for _, v := range vs {
		fmt.Fprintf(w, "  %-10s %-52s %-24s %10s  (target %s; %s)\n", v.status(), v.goal, v.workload, v.valueString(), v.limitString(), v.detail)
	}
}

func (r *report) panels() []panel {
	var large, small []string
	for _, w := range r.workloads("sink", "load") {
		a := r.get("sink", w, "direct")
		if a == nil {
			continue
		}
		switch {
		case a.size >= 64<<20 && !strings.Contains(w, "x1000"):
			large = append(large, w)
		case a.size <= 1<<20:
			small = append(small, w)
		}
	}
	build := func(title, unit string, ws []string, targets []string, f func(*agg) float64, trim string) panel {
		p := panel{title: title, unit: unit, series: targets}
		for _, w := range ws {
			p.groups = append(p.groups, strings.TrimPrefix(w, trim))
			row := make([]float64, len(targets))
			for i, t := range targets {
				row[i] = math.NaN()
				if a := r.get("sink", w, t); a != nil {
					row[i] = f(a)
				}
			}
			p.values = append(p.values, row)
		}
		return p
	}
	// Only the targets that ran in the sink phase get a legend entry and a bar slot.
	var ran []string
	for _, t := range targetOrder {
		for _, w := range append(append([]string{}, large...), small...) {
			if r.get("sink", w, t) != nil {
				ran = append(ran, t)
				break
			}
		}
	}
	proxies := slices.DeleteFunc(slices.Clone(ran), func(t string) bool { return t == "direct" })
	ps := []panel{
		build("Proxy CPU seconds per GiB moved, large objects (lower is better)", "CPU s/GiB", large, proxies, func(a *agg) float64 { return a.cpuPerGiB }, "put "),
		build("Throughput, large objects (higher is better)", "MiB/s", large, ran, func(a *agg) float64 { return a.mibps }, "put "),
		build("Requests per second, small objects (higher is better)", "req/s", small, ran, func(a *agg) float64 { return a.rps }, "put "),
	}
	if r.hasPaths() {
		ps = append(ps, r.pathPanels()...)
	}
	return ps
}
