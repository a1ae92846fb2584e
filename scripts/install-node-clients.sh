#!/usr/bin/env bash
# install-node-clients.sh — install the AWS SDK for JavaScript v3 the engine tests run with node, once.
#
# Installs exactly what scripts/node/package-lock.json locks (@aws-sdk/client-s3, @aws-sdk/lib-storage,
# @aws-sdk/s3-request-presigner; see scripts/node/package.json) with `npm ci` into
# <repo root>/.tools/node (git-ignored): .tools/node/node_modules is what the tests put on NODE_PATH.
# Idempotent: does nothing when .tools/node/package-lock.json equals the committed lock (it is copied
# there last, after `npm ci` succeeded). A flock on .tools/node.lock serialises parallel callers (e.g.
# several `go test` packages at once); the tree is built in a temporary directory and renamed into
# place. Needs node >= 20 and npm on PATH. Takes about 5 s with a warm npm cache.
#
# To change versions: edit scripts/node/package.json, run `npm install --package-lock-only` in
# scripts/node, commit both files.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/scripts/node"
dest="$root/.tools/node"
readonly min_node_major=20

die() { printf 'install-node-clients.sh: %s\n' "$*" >&2; exit 1; }

installed() {
	[[ -f "$dest/package-lock.json" && -d "$dest/node_modules/@aws-sdk/client-s3" ]] &&
		cmp -s "$src/package-lock.json" "$dest/package-lock.json" &&
		cmp -s "$src/package.json" "$dest/package.json"
}

versions() {
	local p out=()
	for p in client-s3 lib-storage s3-request-presigner; do
		out+=("@aws-sdk/$p@$(node -p "require('$dest/node_modules/@aws-sdk/$p/package.json').version")")
	done
	echo "${out[*]}"
}

[[ -f "$src/package.json" && -f "$src/package-lock.json" ]] || die "missing $src/package.json or package-lock.json"
command -v node >/dev/null 2>&1 || die "node is not on PATH (node >= $min_node_major is needed for the AWS SDK for JavaScript v3 tests)"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH (it comes with node; needed to install the AWS SDK for JavaScript v3)"
major=$(node -p 'process.versions.node.split(".")[0]')
((major >= min_node_major)) || die "node $(node --version) is too old: the pinned AWS SDK for JavaScript v3 needs node >= $min_node_major"

if installed; then
	echo "node clients already installed: $(versions) in $dest (node $(node --version))"
	exit 0
fi

mkdir -p "$root/.tools"
exec 9>"$root/.tools/node.lock"
if ! flock -n 9; then
	echo "waiting for another node clients install to finish (lock $root/.tools/node.lock)..." >&2
	flock 9
fi
if installed; then
	echo "node clients already installed: $(versions) in $dest (node $(node --version))"
	exit 0
fi

tmp=$(mktemp -d "$root/.tools/node-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# npm must see the real path: through a symlinked .tools (worktrees share one) it takes the prefix for
# a linked package and refuses the lock as out of sync.
tmp=$(cd "$tmp" && pwd -P)
chmod 755 "$tmp"
cp "$src/package.json" "$tmp/package.json"
# The lock is copied in as the input of `npm ci`; $dest/package-lock.json only exists once the whole
# tree is in place, so installed() never accepts a half-done install.
cp "$src/package-lock.json" "$tmp/package-lock.json"
echo "installing the AWS SDK for JavaScript v3 (npm ci, scripts/node/package-lock.json) into $dest..." >&2
log="$tmp/npm.log"
if ! npm ci --prefix "$tmp" --ignore-scripts --no-audit --no-fund --engine-strict >"$log" 2>&1; then
	tail -30 "$log" >&2
	die "npm ci failed (above: the end of its output)"
fi
rm -f "$log"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
installed || die "$dest does not match scripts/node after install"
echo "installed node clients: $(versions) in $dest (node $(node --version))"
