#!/usr/bin/env bash
# build.sh — build the container image of deploy/container/Containerfile with podman (or docker:
# CONTAINER_ENGINE=docker) from the output of `make release`, without pulling any base image.
#
#   make release && deploy/container/build.sh [-a ARCH] [-t TAG] [DIST]
#
#   -a ARCH  amd64 or arm64 (default: the host's, from `go env GOARCH`); uses DIST/mizuchi-uploadr-linux-ARCH
#   -t TAG   image name (default mizuchi-uploadr:latest)
#   DIST     the release directory (default dist)
#
# The CA bundle is the build machine's /etc/ssl/certs/ca-certificates.crt (CA_BUNDLE=path for another).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
arch=$(go env GOARCH 2>/dev/null || uname -m)
tag=mizuchi-uploadr:latest
while getopts 'a:t:' opt; do
	case $opt in
	a) arch=$OPTARG ;;
	t) tag=$OPTARG ;;
	*) echo "usage: $0 [-a ARCH] [-t TAG] [DIST]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
dist=${1:-$root/dist}
engine=${CONTAINER_ENGINE:-podman}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
bin=$dist/mizuchi-uploadr-linux-$arch
for f in "$bin" "$dist/LICENSE" "$dist/THIRD-PARTY-LICENSES.txt"; do
	[[ -f $f ]] || { echo "build.sh: $f missing: run make release first" >&2; exit 1; }
done
[[ -f $ca ]] || { echo "build.sh: CA bundle $ca missing (install ca-certificates or set CA_BUNDLE)" >&2; exit 1; }

ctx=$(mktemp -d /tmp/mizuchi-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
install -m 0755 "$bin" "$ctx/mizuchi-uploadr"
install -m 0644 "$ca" "$ctx/ca-certificates.crt"
install -m 0644 "$dist/LICENSE" "$dist/THIRD-PARTY-LICENSES.txt" "$ctx/"
"$engine" build --platform "linux/$arch" -f "$root/deploy/container/Containerfile" -t "$tag" "$ctx"
