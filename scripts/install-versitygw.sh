#!/usr/bin/env bash
# install-versitygw.sh — build the versitygw S3 server the integration tests run against, once.
#
# Installs github.com/versity/versitygw/cmd/versitygw@v1.8.0 into <repo root>/.tools/bin (git-ignored).
# Idempotent: does nothing when that binary exists and `go version -m` shows v1.8.0. A flock on
# .tools/versitygw.lock serialises parallel callers (e.g. several `go test` packages at once), and the
# binary is built into a temporary directory and renamed into place, so nobody ever sees a half-written
# file. A cold build takes about 3 minutes.
set -euo pipefail

readonly MODULE=github.com/versity/versitygw
readonly VERSION=v1.8.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bindir="$root/.tools/bin"
bin="$bindir/versitygw"

have_version() {
	[[ -x "$bin" ]] || return 1
	# The main module line reads: "<tab>mod<tab>github.com/versity/versitygw<tab>v1.8.0<tab>h1:...".
	go version -m "$bin" 2>/dev/null | awk -v m="$MODULE" -v v="$VERSION" \
		'$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

if have_version; then
	echo "versitygw $VERSION already installed: $bin"
	exit 0
fi

mkdir -p "$bindir"
exec 9>"$root/.tools/versitygw.lock"
if ! flock -n 9; then
	echo "waiting for another versitygw install to finish (lock $root/.tools/versitygw.lock)..." >&2
	flock 9
fi

# Someone else may have finished while we waited for the lock.
if have_version; then
	echo "versitygw $VERSION already installed: $bin"
	exit 0
fi

tmp=$(mktemp -d "$root/.tools/versitygw-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "installing $MODULE/cmd/versitygw@$VERSION into $bindir (takes ~3 min cold)..." >&2
GOBIN="$tmp" go install "$MODULE/cmd/versitygw@$VERSION"
mv -f "$tmp/versitygw" "$bin"

if ! have_version; then
	echo "install-versitygw.sh: $bin does not report $MODULE $VERSION after install" >&2
	exit 1
fi
echo "installed versitygw $VERSION: $bin"
