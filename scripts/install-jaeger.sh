#!/usr/bin/env bash
# install-jaeger.sh — build the Jaeger server the tracing test exports spans to, once.
#
# Builds github.com/jaegertracing/jaeger v1.76.0 (the v2, OpenTelemetry-collector-based binary) into
# <repo root>/.tools/bin/jaeger (git-ignored). `go install jaeger@v1.76.0` is refused (its go.mod has a
# `replace`), so the module is downloaded with `go mod download`, copied out of the read-only module cache
# and built as the main module, with its version stamped into the binary the way Jaeger's own Makefile does
# (-X .../internal/version.latestVersion; -trimpath keeps ldflags out of the build info, so the check asks
# `jaeger version`). Same scheme as scripts/install-gotool.sh: idempotent (does nothing when
# .tools/bin/jaeger exists, is that module's cmd/jaeger and reports v1.76.0), a flock on .tools/jaeger.lock
# serialises parallel callers (the .tools directory is shared between worktrees), and the binary is built
# in a temporary directory and renamed into place. A cold build takes about 5 minutes and 2.2 GB of RAM;
# the binary is about 120 MB.
set -euo pipefail

readonly MODULE=github.com/jaegertracing/jaeger
readonly VERSION=v1.76.0
readonly STAMP="$MODULE/internal/version.latestVersion=$VERSION"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bindir="$root/.tools/bin"
bin="$bindir/jaeger"

have_version() {
	[[ -x "$bin" ]] || return 1
	# The path line reads "<tab>path<tab>github.com/jaegertracing/jaeger/cmd/jaeger"; `jaeger version`
	# prints {"gitCommit":"","gitVersion":"v1.76.0",...}.
	go version -m "$bin" 2>/dev/null | awk -v p="$MODULE/cmd/jaeger" '$1 == "path" && $2 == p { found = 1 } END { exit !found }' &&
		timeout 30 "$bin" version 2>/dev/null | grep -q "\"gitVersion\":\"$VERSION\""
}

if have_version; then
	echo "jaeger $VERSION already installed: $bin"
	exit 0
fi

mkdir -p "$bindir"
exec 9>"$root/.tools/jaeger.lock"
if ! flock -n 9; then
	echo "waiting for another jaeger install to finish (lock $root/.tools/jaeger.lock)..." >&2
	flock 9
fi

# Someone else may have finished while we waited for the lock.
if have_version; then
	echo "jaeger $VERSION already installed: $bin"
	exit 0
fi

tmp=$(mktemp -d "$root/.tools/jaeger-build.XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

echo "building $MODULE@$VERSION into $bindir (about 5 minutes cold)..." >&2
dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" |
	awk -F'"' '$2 == "Dir" { print $4 }')
[[ -n "$dir" && -d "$dir" ]] || { echo "install-jaeger.sh: go mod download gave no module directory" >&2; exit 1; }
cp -r "$dir" "$tmp/src"
chmod -R u+w "$tmp/src"
(cd "$tmp/src" && GOFLAGS='' go build -trimpath -ldflags "-X $STAMP" -o "$tmp/jaeger" ./cmd/jaeger)
mv -f "$tmp/jaeger" "$bin"

if ! have_version; then
	echo "install-jaeger.sh: $bin does not carry the $VERSION stamp after the build" >&2
	exit 1
fi
echo "installed jaeger $VERSION: $bin"
