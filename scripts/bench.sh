#!/usr/bin/env bash
# bench.sh — the end-to-end benchmarks of issue 5, in one interleaved run on loopback.
#
#   scripts/bench.sh quick   # a subset, < 3 minutes (sink upstream only); what `make bench` runs
#   scripts/bench.sh full    # every target × every workload × 3 repetitions, plus versitygw end to end
#
# Extra arguments go to bench/cmd/runner, e.g. `scripts/bench.sh full -reps 5 -duration 6s`,
# `scripts/bench.sh quick -only 'put 4KiB c16'`, `-perf 'put 4KiB c16'` (perf profiles of the proxy).
# Environment: SKIP_MICRO=1 skips the Go micro-benchmarks; VERSITYGW=0 skips (1 forces) the versitygw phase;
# MIZUCHI_REV=<commit> measures that committed revision (built from `git archive`) instead of the working tree.
#
# What it does:
#   1. installs nginx (Debian's nginx-light) and wrk with apt-get when missing (apt-get update first);
#      versitygw v1.8.0 through scripts/install-versitygw.sh for the full run;
#   2. builds bin/mizuchi-uploadr and the bench programs (bench/cmd/...);
#   3. runs the Go micro-benchmarks of the parser, the signer and the transfer paths (-benchmem);
#   4. runs bench/cmd/runner: sink upstream, then versitygw on /dev/shm; targets direct,
#      mizuchi-uploadr (splice, copy), nginx (configured here as a plain reverse proxy in a temp dir:
#      proxy_request_buffering off, HTTP/1.1 upstream keep-alive), the bare splice relay and
#      httputil.ReverseProxy; loadgen and wrk loads;
#   5. writes bench/results/<date>.md (quick: <date>-quick.md) and the PNG chart next to it, and prints
#      the ratios issue 5 names. Scratch (raw JSON, logs, configs) stays in bench/results/tmp/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: ERROR: %s\n' "$*" >&2; exit 1; }

mode=${1:-quick}
[[ $# -gt 0 ]] && shift
case $mode in quick | full) ;; *) die "usage: scripts/bench.sh quick|full [runner flags]" ;; esac
[[ $(uname -s) == Linux ]] || die "the end-to-end benchmarks need Linux (/proc, splice)"
command -v go >/dev/null || die "go is not on PATH"

# 10,000 idle connections need ~20,000 descriptors in the relay and the load generator.
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) >= 25000)) || say "warning: ulimit -n is $(ulimit -n); the 10,000-connection workload may fail"

# 1. Tools.
missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
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
	# policy-rc.d or not, the runner starts its own nginx from a temp dir; the package's service is not used.
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
		|| { tail -20 "$log" >&2; die "apt-get install ${missing[*]} failed (log: $log)"; }
	rm -f "$log"
fi
nginx=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
wrk=$(command -v wrk)

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
[[ $mode == quick ]] && name=$date-quick
work=$root/bench/results/tmp/$name
rm -rf "$work"
mkdir -p "$work/bin" "bench/results/$name-profiles"
mizuchi=$root/bin/mizuchi-uploadr
if [[ -n ${MIZUCHI_REV:-} ]]; then
	# Measure a committed revision (not the working tree): export it with git archive and build there.
	rev=$(git rev-parse --short "$MIZUCHI_REV")
	say "building mizuchi-uploadr at $MIZUCHI_REV ($rev) from git archive into $work/bin"
	mkdir -p "$work/src"
	git archive "$rev" | tar -x -C "$work/src"
	(cd "$work/src" && go build -o "$work/bin/mizuchi-uploadr" ./cmd/mizuchi-uploadr)
	mizuchi=$work/bin/mizuchi-uploadr
else
	rev=$(git describe --always --dirty 2>/dev/null || echo unknown)
	say "building bin/mizuchi-uploadr from the working tree ($rev)"
	go build -o bin/mizuchi-uploadr ./cmd/mizuchi-uploadr
fi
say "building bench/cmd/... into $work/bin"
go build -o "$work/bin/" ./bench/cmd/...

# 3. Micro-benchmarks.
micro=$work/micro.txt
: >"$micro"
if [[ ${SKIP_MICRO:-0} != 1 ]]; then
	benchtime=200ms
	[[ $mode == full ]] && benchtime=1s
	say "Go micro-benchmarks (-benchtime=$benchtime): httpparse s3sig transfer"
	src=$root
	[[ -n ${MIZUCHI_REV:-} ]] && src=$work/src
	(cd "$src" && go test -run=NONE -bench=. -benchmem -benchtime=$benchtime ./httpparse ./s3sig ./transfer) | tee "$micro" | grep -E '^(Benchmark|ok|FAIL)' >&2
fi

# 4. End-to-end runs.
say "running the $mode matrix (logs and configs in $work)"
"$work/bin/runner" -mode "$mode" -rev "$rev" -bin "$work/bin" -mizuchi "$mizuchi" -nginx "$nginx" -wrk "$wrk" \
	-wrk-script "$root/scripts/wrk-put.lua" -work "$work" -perf-dir "$root/bench/results/$name-profiles" \
	-out "$work/results.json" "${versitygw_flag[@]}" "$@"

# 5. Report.
"$work/bin/report" -in "$work/results.json" -micro "$micro" -md "bench/results/$name.md" -png "bench/results/$name.png" \
	-cmd "scripts/bench.sh $mode${*:+ $*}"
rmdir "bench/results/$name-profiles" 2>/dev/null || true # only kept when -perf wrote profiles
say "wrote bench/results/$name.md and bench/results/$name.png"
