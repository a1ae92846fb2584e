package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// pathGroup is one way a body crosses a proxy, with the target that plays each peer's part there.
type pathGroup struct {
	label, short string
	phase        string
	side         string // "" (plain), "client" or "upstream": the TLS side (verdict names)
	targets      [4]string
}

// peers are the columns of a path group, in the order of pathGroup.targets.
var peers = [4]string{"mizuchi-uploadr", "nginx", "HAProxy", "Go relay"}

// pathGroups: the plain path (mizuchi-uploadr splices; the relay is the bare splice relay), TLS
// towards the client and TLS towards the upstream (everyone copies in user space; the relay is
// crypto/tls + io.Copy).
var pathGroups = []pathGroup{
	{"splice (plain http both sides)", "plain", "sink", "", [4]string{"mizuchi-splice", "nginx", "haproxy", "splicerelay"}},
	{"TLS client side (https in, http out)", "TLS client", "tls", "client", [4]string{"mizuchi-tls-client", "nginx-tls-client", "haproxy-tls-client", "tlsrelay-client"}},
	{"TLS upstream side (http in, https out)", "TLS upstream", "tls", "upstream", [4]string{"mizuchi-tls-upstream", "nginx-tls-upstream", "haproxy-tls-upstream", "tlsrelay-upstream"}},
}

// issue 11's limits.
const (
	tlsCPUvsNginx  = 0.7 // TLS CPU per GiB ≤ 0.7× nginx's
	rss16Limit     = 128 // MiB, peak RSS during 16 concurrent 1 GiB uploads
	smallRPSvsNgx  = 1.0 // 4 KiB TLS req/s ≥ nginx's
	smallCPUvsHAPx = 1.0 // 4 KiB plain CPU per request ≤ HAProxy's

)

// issue11Verdicts are the targets of issue 11 (HAProxy and TLS) with their context ratios.
func (r *report) issue11Verdicts() []verdict {
	var out []verdict
	add := func(goal, w string, v float64, detail string, ok bool, op string, limit float64, unit string, info bool) {
		out = append(out, verdict{goal: goal, workload: w, value: v, detail: detail, known: ok, op: op, limit: limit, unit: unit,
			met: ok && check(v, op, limit), info: info})
	}
	cpuReq := func(a *agg) float64 { return a.cpuPerReq }
	cpuGiB := func(a *agg) float64 { return a.cpuPerGiB }
	rps := func(a *agg) float64 { return a.rps }
	for _, w := range r.workloads("sink", "load") {
		if a := r.get("sink", w, "mizuchi-splice"); a == nil || a.size != 4<<10 {
			continue
		}
		v, d, ok := r.ratio("sink", w, "mizuchi-splice", "haproxy", cpuReq)
		add("4 KiB plain CPU/request ÷ HAProxy's (SigV4 verified and re-signed)", w, v, d+" µs/request", ok, "<=", smallCPUvsHAPx, "×", false)
		v, d, ok = r.ratio("sink", w, "mizuchi-splice", "nginx", cpuReq)
		add("4 KiB plain CPU/request ÷ nginx's", w, v, d+" µs/request", ok, "<=", 1, "×", true)
	}
	for _, g := range pathGroups {
		name := g.short + " side"
		if g.side == "" {
			name = "splice path"
		}
		for _, w := range r.workloads(g.phase, "load") {
			a := r.get(g.phase, w, g.targets[0])
			if a == nil {
				continue
			}
			switch {
			case a.size == 1<<30 && g.side != "":
				v, d, ok := r.ratio(g.phase, w, g.targets[0], g.targets[1], cpuGiB)
				add(name+": CPU/GiB ÷ nginx's", w, v, d+" s/GiB", ok, "<=", tlsCPUvsNginx, "×", false)
				v, d, ok = r.ratio(g.phase, w, g.targets[0], g.targets[2], cpuGiB)
				add(name+": CPU/GiB ÷ HAProxy's", w, v, d+" s/GiB", ok, "<=", 1, "×", true)
				v, d, ok = r.ratio(g.phase, w, g.targets[0], g.targets[3], cpuGiB)
				add(name+": CPU/GiB ÷ Go TLS relay's", w, v, d+" s/GiB", ok, "<=", 1, "×", true)
			case a.size == 4<<10 && g.side != "":
				v, d, ok := r.ratio(g.phase, w, g.targets[0], g.targets[1], rps)
				add(name+": 4 KiB req/s ÷ nginx's (keep-alive)", w, v, d+" req/s", ok, ">=", smallRPSvsNgx, "×", false)
				v, d, ok = r.ratio(g.phase, w, g.targets[0], g.targets[2], rps)
				add(name+": 4 KiB req/s ÷ HAProxy's", w, v, d+" req/s", ok, ">=", 1, "×", true)
				v, d, ok = r.ratio(g.phase, w, g.targets[0], g.targets[1], cpuReq)
				add(name+": 4 KiB CPU/request ÷ nginx's", w, v, d+" µs/request", ok, "<=", 1, "×", true)
			}
			if a.size == 1<<30 && a.conns == 16 {
				detail := "peak VmHWM"
				if n := r.get(g.phase, w, g.targets[1]); n != nil {
					detail += fmt.Sprintf("; nginx %s MiB", fmtNum(n.peakRSS))
				}
				if h := r.get(g.phase, w, g.targets[2]); h != nil {
					detail += fmt.Sprintf(", HAProxy %s MiB", fmtNum(h.peakRSS))
				}
				add(name+": peak RSS, 16 concurrent 1 GiB uploads", w, a.peakRSS, detail, true, "<", rss16Limit, "MiB", false)
			}
		}
	}
	return out
}

func printIssue11(w io.Writer, vs []verdict) {
	fmt.Fprintln(w, "Issue 11 (HAProxy and TLS), medians:")
	for _, v := range vs {
		fmt.Fprintf(w, "  %-10s %-68s %-13s %10s  (target %s; %s)\n", v.status(), v.goal, v.workload, v.valueString(), v.limitString(), v.detail)
	}
}

// pathTable writes the by-path table: for each path, each peer's CPU per GiB (one 1 GiB stream,
// 16 concurrent ones), peak RSS of the 16 streams, 4 KiB req/s and CPU per request.
func (r *report) pathTable(w io.Writer) {
	fmt.Fprintln(w, "| path | proxy | CPU s/GiB, 1 GiB c1 | CPU s/GiB, 1 GiB c16 | peak RSS MiB, 1 GiB c16 | 4 KiB c16 req/s | 4 KiB c16 CPU µs/req |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, g := range pathGroups {
		for i, t := range g.targets {
			cell := func(wl string, f func(*agg) float64) string {
				if a := r.get(g.phase, wl, t); a != nil {
					return fmtNum(f(a))
				}
				return "—"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", g.label, peers[i],
				cell("put 1GiB c1", func(a *agg) float64 { return a.cpuPerGiB }),
				cell("put 1GiB c16", func(a *agg) float64 { return a.cpuPerGiB }),
				cell("put 1GiB c16", func(a *agg) float64 { return a.peakRSS }),
				cell("put 4KiB c16", func(a *agg) float64 { return a.rps }),
				cell("put 4KiB c16", func(a *agg) float64 { return a.cpuPerReq }))
		}
	}
	fmt.Fprintln(w)
}

// hasPaths reports whether the run has anything for the by-path table beyond the plain path.
func (r *report) hasPaths() bool {
	return len(r.workloads("tls", "")) > 0 || r.get("sink", "put 4KiB c16", "haproxy") != nil
}

// pathPanels are the chart's by-path panels: one bar per peer in each path group.
func (r *report) pathPanels() []panel {
	build := func(title, unit, wl string, f func(*agg) float64) panel {
		p := panel{title: title, unit: unit, series: peers[:]}
		for _, g := range pathGroups {
			row := make([]float64, len(peers))
			any := false
			for i, t := range g.targets {
				row[i] = math.NaN()
				if a := r.get(g.phase, wl, t); a != nil {
					row[i], any = f(a), true
				}
			}
			if any {
				p.groups = append(p.groups, strings.SplitN(g.label, " (", 2)[0])
				p.values = append(p.values, row)
			}
		}
		return p
	}
	return []panel{
		build("CPU seconds per GiB, one 1 GiB PUT, by path (lower is better)", "CPU s/GiB", "put 1GiB c1", func(a *agg) float64 { return a.cpuPerGiB }),
		build("Peak RSS during 16 concurrent 1 GiB PUTs, by path (lower is better)", "MiB", "put 1GiB c16", func(a *agg) float64 { return a.peakRSS }),
		build("4 KiB PUTs on 16 keep-alive connections, by path (higher is better)", "req/s", "put 4KiB c16", func(a *agg) float64 { return a.rps }),
	}
}
