#!/usr/bin/env bash
# install-gotool.sh NAME MODULE PACKAGE VERSION — `go install PACKAGE@VERSION` into <repo root>/.tools/bin/NAME, once.
#
# The shared body of install-versitygw.sh, install-opa.sh and install-openfga.sh:
# idempotent (does nothing when .tools/bin/NAME exists and `go version -m` shows MODULE VERSION), a flock
# on .tools/NAME.lock serialises parallel callers (the .tools directory is shared between worktrees), and
# the binary is built into a temporary directory and renamed into place, so nobody ever sees a
# half-written file.
set -euo pipefail

if [[ $# -ne 4 ]]; then
	echo "usage: install-gotool.sh NAME MODULE PACKAGE VERSION" >&2
	exit 2
fi
name=$1 module=$2 package=$3 version=$4

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bindir="$root/.tools/bin"
bin="$bindir/$name"

have_version() {
	[[ -x "$bin" ]] || return 1
	# The main module line reads: "<tab>mod<tab>MODULE<tab>VERSION<tab>h1:...".
	go version -m "$bin" 2>/dev/null | awk -v m="$module" -v v="$version" \
		'$1 == "mod" && $2 == m && $3 == v { found = 1 } END { exit !found }'
}

if have_version; then
	echo "$name $version already installed: $bin"
	exit 0
fi

mkdir -p "$bindir"
exec 9>"$root/.tools/$name.lock"
if ! flock -n 9; then
	echo "waiting for another $name install to finish (lock $root/.tools/$name.lock)..." >&2
	flock 9
fi

# Someone else may have finished while we waited for the lock.
if have_version; then
	echo "$name $version already installed: $bin"
	exit 0
fi

tmp=$(mktemp -d "$root/.tools/$name-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "installing $package@$version into $bindir..." >&2
GOBIN="$tmp" go install "$package@$version"
mv -f "$tmp/$(basename "$package")" "$bin"

if ! have_version; then
	echo "install-gotool.sh: $bin does not report $module $version after install" >&2
	exit 1
fi
echo "installed $name $version: $bin"
