#!/usr/bin/env bash
# bench.sh — the end-to-end benchmarks of issue 5, in one interleaved run on loopback.
#
#   scripts/bench.sh quick   # a subset, ~6 minutes (sink, then tls phase); what `make bench` runs
#   scripts/bench.sh full    # every target × every workload × 3 repetitions, plus versitygw end to end
#   BASELINE_REV=<commit> scripts/bench.sh compare   # regression check against <commit>, < 5 minutes
#
# Extra arguments go to bench/cmd/runner, e.g. `scripts/bench.sh full -reps 5 -duration 6s`,
# `scripts/bench.sh quick -only 'put 4KiB c16'`, `-perf 'put 4KiB c16'` (perf profiles of the proxy),
# `-phases tls` (only the TLS phase), `-targets mizuchi-tls-client,nginx-tls-client` (only those targets).
# RESULTS_NAME=<name> writes bench/results/<name>.md and .png instead of the dated name.
# Environment: SKIP_MICRO=1 skips the Go micro-benchmarks; VERSITYGW=0 skips (1 forces) the versitygw phase;
# MIZUCHI_REV=<commit> measures that committed revision (built from `git archive`) instead of the working tree;
# BASELINE_REV=<commit> builds that revision the same way and adds it as the target mizuchi-base-splice (same
# configuration and flags as mizuchi-splice, run back to back with it in every repetition, the two swapping
# places each time), and the report gets the section "Against the baseline <commit>": new ÷ baseline for CPU
# per request (small PUTs), CPU per GiB (1 MiB and larger), throughput and peak RSS — the ratio of the medians
# and the median of the per-repetition ratios with a confidence interval — and the verdict of issue 8's 5%
# regression budget on 4 KiB CPU per request and 1 GiB CPU per GiB ("within noise" when the interval holds
# 1.05: then the run did not resolve it; add -reps). It works with every mode.
#
# compare (needs BASELINE_REV) is the quick matrix cut down to that check, against the sink: 4 KiB and 1 MiB PUTs
# on 16 connections (2 s runs), three 1 GiB PUTs on one (counted, not timed: a timed run would cut one off);
# targets direct (for reference), mizuchi-splice and mizuchi-base-splice; 5 repetitions (`-reps`, `-duration`
# change that; on a busy machine more repetitions narrow the medians); no nginx or wrk needed, no micro-benchmarks
# (SKIP_MICRO=0 runs them, for the measured revision only); writes bench/results/<date>-compare.md, no chart.
# A baseline that does not take log.access (before 625460a) runs without it, its access log at its default
# (those revisions wrote none, e.g. 0425cbc; the report says so); one that does not know a flag the run passes
# (-zero-copy) is an error rather than a fallback, since dropping it would measure another path.
#
# What it does:
#   1. installs nginx (Debian's nginx-light), HAProxy (Debian's haproxy, 2.6 on bookworm) and wrk with apt-get
#      when missing (apt-get update first; not for compare); versitygw v1.8.0 through
#      scripts/install-versitygw.sh for the full run;
#   2. builds bin/mizuchi-uploadr (or MIZUCHI_REV), the baseline (BASELINE_REV) and the bench programs (bench/cmd/...);
#   3. runs the Go micro-benchmarks of the parser, the signer and the transfer paths (-benchmem);
#   4. runs bench/cmd/runner: sink upstream, then the tls phase (a sink serving http and https; every proxy
#      with TLS towards the client and with TLS towards the upstream, one certificate made for the run, TLS 1.3),
#      then versitygw on /dev/shm; targets direct, mizuchi-uploadr (splice, copy), nginx (configured in a temp
#      dir as a plain reverse proxy: proxy_request_buffering off, HTTP/1.1 upstream keep-alive), HAProxy
#      (mode http, option splice-auto, http-reuse always, tune.pipesize 1 MiB, nbthread one per CPU, foreground), the
#      bare splice relay, httputil.ReverseProxy and (tls phase) the bare Go TLS relay; loadgen and wrk loads;
#   5. writes bench/results/<date>.md (quick: <date>-quick.md) and the PNG chart next to it (compare:
#      <date>-compare.md only), and prints the ratios issue 5 names (not for compare) and, with a baseline,
#      new ÷ baseline. Scratch (raw JSON, logs, configs, the baseline's source) stays in bench/results/tmp/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

mode=${1:-quick}
[[ $# -gt 0 ]] && shift
case $mode in quick | full | compare) ;; *) die "usage: [BASELINE_REV=<commit>] scripts/bench.sh quick|full|compare [runner flags]" ;; esac
[[ $mode != compare || -n ${BASELINE_REV:-} ]] || die "compare needs BASELINE_REV=<commit>, e.g. BASELINE_REV=main~3 scripts/bench.sh compare"
[[ $(uname -s) == Linux ]] || die "the end-to-end benchmarks need Linux (/proc, splice)"
command -v go >/dev/null || die "go is not on PATH"

# 10,000 idle connections need ~20,000 descriptors in the relay and the load generator.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) >= 25000)) || say "warning: ulimit -n is $(ulimit -n); the 10,000-connection workload may fail"

# 1. Tools (compare runs neither nginx nor wrk).
missing=()
if [[ $mode != compare ]]; then
	command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
	command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
	command -v wrk >/dev/null 2>&1 || missing+=(wrk)
fi
if ((${#missing[@]} > 0)); then
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
	sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		command -v sudo >/dev/null || die "missing ${missing[*]}: run as root or install sudo"
		sudo=(sudo)
	fi
	say "installing ${missing[*]} (apt-get update first)"
	log=$(mktemp /tmp/bench-apt.XXXXXX.log)
	"${sudo[@]}" apt-get update >"$log" 2>&1 || { tail -20 "$log" >&2; die "apt-get update failed"; }
	# policy-rc.d or not, the runner starts its own nginx and HAProxy from a temp dir; the packages' services are not used.
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
		|| { tail -20 "$log" >&2; die "apt-get install ${missing[*]} failed (log: $log)"; }
	rm -f "$log"
fi
nginx=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
haproxy=$(command -v haproxy 2>/dev/null || echo /usr/sbin/haproxy)
wrk=$(command -v wrk 2>/dev/null || true)
[[ $mode == compare ]] && nginx= && haproxy= && wrk=

versitygw_flag=()
want_vgw=${VERSITYGW:-}
[[ -z $want_vgw ]] && { [[ $mode == full ]] && want_vgw=1 || want_vgw=0; }
if [[ $want_vgw == 1 ]]; then
	bash scripts/install-versitygw.sh >&2
	versitygw_flag=(-versitygw "$root/.tools/bin/versitygw")
fi

# 2. Build.
date=$(date -u +%Y-%m-%d)
name=$date
[[ $mode != full ]] && name=$date-$mode
[[ -n ${RESULTS_NAME:-} ]] && name=$RESULTS_NAME
work=$root/bench/results/tmp/$name
rm -rf "$work"
mkdir -p "$work/bin" "bench/results/$name-profiles"

# build_rev REV SRC OUT: exports the committed revision REV with git archive into SRC and builds
# mizuchi-uploadr there as OUT, with the same go command and flags as the working-tree build.
build_rev() {
	local want=$1 src=$2 out=$3 short
	short=$(git rev-parse --short "$want^{commit}" 2>/dev/null) || die "unknown revision $want"
	say "building mizuchi-uploadr at $want ($short) from git archive into $out"
	rm -rf "$src"
	mkdir -p "$src"
	git archive "$short" | tar -x -C "$src"
	(cd "$src" && go build -o "$out" ./cmd/mizuchi-uploadr)
}

mizuchi=$root/bin/mizuchi-uploadr
if [[ -n ${MIZUCHI_REV:-} ]]; then
	# Measure a committed revision (not the working tree).
	rev=$(git rev-parse --short "$MIZUCHI_REV^{commit}" 2>/dev/null) || die "unknown revision $MIZUCHI_REV"
	mizuchi=$work/bin/mizuchi-uploadr
	build_rev "$rev" "$work/src" "$mizuchi"
else
	rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
	say "building bin/mizuchi-uploadr from the working tree ($rev)"
	go build -o bin/mizuchi-uploadr ./cmd/mizuchi-uploadr
fi
baseline_flag=()
if [[ -n ${BASELINE_REV:-} ]]; then
	base_rev=$(git rev-parse --short "$BASELINE_REV^{commit}" 2>/dev/null) || die "unknown revision $BASELINE_REV"
	build_rev "$base_rev" "$work/base-src" "$work/bin/mizuchi-base-uploadr"
	baseline_flag=(-baseline "$work/bin/mizuchi-base-uploadr" -baseline-rev "$base_rev")
fi
say "building bench/cmd/... into $work/bin"
go build -o "$work/bin/" ./bench/cmd/...

# 3. Micro-benchmarks.
micro=$work/micro.txt
: >"$micro"
skip_micro=${SKIP_MICRO:-}
[[ -z $skip_micro ]] && { [[ $mode == compare ]] && skip_micro=1 || skip_micro=0; }
if [[ $skip_micro != 1 ]]; then
	benchtime=200ms
	[[ $mode == full ]] && benchtime=1s
	say "Go micro-benchmarks (-benchtime=$benchtime): httpparse s3sig transfer"
	src=$root
	[[ -n ${MIZUCHI_REV:-} ]] && src=$work/src
	(cd "$src" && go test -run=NONE -bench=. -benchmem -benchtime=$benchtime ./httpparse ./s3sig ./transfer) | tee "$micro" | grep -E '^(Benchmark|ok|FAIL)' >&2
fi

# 4. End-to-end runs.
say "running the $mode matrix (logs and configs in $work)"
"$work/bin/runner" -mode "$mode" -rev "$rev" -bin "$work/bin" -mizuchi "$mizuchi" -nginx "$nginx" -haproxy "$haproxy" -wrk "$wrk" \
	-wrk-script "$root/scripts/wrk-put.lua" -work "$work" -perf-dir "$root/bench/results/$name-profiles" \
	-out "$work/results.json" -single-md "$work/single.md" "${versitygw_flag[@]}" "${baseline_flag[@]}" "$@"

# 5. Report.
png=bench/results/$name.png
[[ $mode == compare ]] && png=
cmd="scripts/bench.sh $mode"
(($# > 0)) && cmd+=$(printf " %q" "$@") # quoted, so that the line in the report can be pasted back
[[ -n ${RESULTS_NAME:-} ]] && cmd="RESULTS_NAME=$RESULTS_NAME $cmd"
[[ -n ${BASELINE_REV:-} ]] && cmd="BASELINE_REV=$base_rev $cmd"
[[ -n ${MIZUCHI_REV:-} ]] && cmd="MIZUCHI_REV=$rev $cmd"
"$work/bin/report" -in "$work/results.json" -micro "$micro" -md "bench/results/$name.md" -png "$png" -cmd "$cmd"
# -mode single's summary (each target's throughput ÷ direct and CPU ÷ the bare relay) goes into the report.
[[ -s $work/single.md ]] && cat "$work/single.md" >>"bench/results/$name.md"
rmdir "bench/results/$name-profiles" 2>/dev/null || true # only kept when -perf wrote profiles
say "wrote bench/results/$name.md${png:+ and $png}"
