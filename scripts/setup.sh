#!/usr/bin/env bash
# setup.sh — install everything the tests need on a fresh machine of this kind (Debian 12, root, Go on
# PATH, pyenv python3 with aws cli v1 and boto3 preinstalled; PyPI is not reachable).
#
#   - versitygw v1.8.0 into .tools/bin (scripts/install-versitygw.sh; ~3 min cold)
#   - OPA v1.22.3 into .tools/bin (scripts/install-opa.sh; ~3.5–5 min cold) and OpenFGA v1.22.1
#     (scripts/install-openfga.sh; 7–10 min cold): the real policy servers of the authorization tests
#   - Jaeger v1.76.0 into .tools/bin (scripts/install-jaeger.sh; ~5 min and 2.2 GB of RAM cold): the trace
#     backend of the tracing test
#   - the AWS SDK for JavaScript v3 (@aws-sdk/client-s3, lib-storage, s3-request-presigner at the
#     versions scripts/node/package-lock.json locks) with `npm ci` into .tools/node
#     (scripts/install-node-clients.sh; ~5 s cold; needs node >= 20 and npm on PATH)
#   - Debian packages s3cmd rclone wrk curl podman runc strace systemd haproxy chromium (podman, runc: the container
#     image test; systemd-analyze and strace: the systemd unit tests; haproxy: the PROXY protocol test),
#     only those whose command is missing
#     (`apt-get update` runs only when something must be installed)
#   - sets net.ipv4.tcp_migrate_req=1 (the upgrade hand-over moves queued connections; not persistent)
#   - checks that `aws --version`, `python3 -c 'import boto3'` and `import requests` work; fails with a clear
#     message if not
#
# The six installs run in parallel; each one's output is printed when it ends, and the script fails
# (exit 1, naming the failed steps) if any of them failed. Idempotent; prints what it did. Run from
# anywhere: scripts/setup.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not on PATH (the project needs Go 1.26.8)"
say "go: $(go version)"

# Debian packages: package name -> command it provides.
install_debian() {
	# prometheus: the real Prometheus and promtool of the metrics tests (where systemd runs, the
	# package's service is stopped and disabled below).
	declare -A cmd_of=([s3cmd]=s3cmd [rclone]=rclone [wrk]=wrk [curl]=curl [podman]=podman [runc]=runc [strace]=strace [systemd]=systemd-analyze [prometheus]=promtool [haproxy]=haproxy [chromium]=chromium)
	missing=()
	for pkg in s3cmd rclone wrk curl podman runc strace systemd prometheus haproxy chromium; do
		if command -v "${cmd_of[$pkg]}" >/dev/null 2>&1; then
			echo "$pkg: present ($(command -v "${cmd_of[$pkg]}"))"
		else
			missing+=("$pkg")
		fi
	done
	if ((${#missing[@]} > 0)); then
		command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available to install them"
		sudo=()
		if [[ $(id -u) -ne 0 ]]; then
			command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run as root (or install sudo)"
			sudo=(sudo)
		fi
		echo "installing Debian packages: ${missing[*]} (apt-get update first; ~30 s)"
		log=$(mktemp /tmp/setup-apt.XXXXXX.log)
		"${sudo[@]}" apt-get update >"$log" 2>&1 || { tail -20 "$log" >&2; die "apt-get update failed (log: $log)"; }
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
			|| { tail -20 "$log" >&2; die "apt-get install ${missing[*]} failed (log: $log)"; }
		rm -f "$log"
		if [[ " ${missing[*]} " == *" prometheus "* && -d /run/systemd/system ]]; then
			# The tests run their own Prometheus; the package's service would hold :9090 (the
			# proxy's default admin port).
			"${sudo[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
		fi
		for pkg in "${missing[@]}"; do
			command -v "${cmd_of[$pkg]}" >/dev/null 2>&1 || die "$pkg installed but ${cmd_of[$pkg]} is still not on PATH"
			echo "$pkg: installed ($(command -v "${cmd_of[$pkg]}"))"
		done
	else
		echo "Debian packages: nothing to install"
	fi
}

# 1. The installs, in parallel. Each writes to its own log; a failure is reported after all have ended.
logdir=$(mktemp -d /tmp/setup.XXXXXX)
trap 'rm -rf "$logdir"' EXIT
declare -A pid_of
steps=(versitygw opa openfga jaeger node-clients debian)
start() { # start NAME CMD...: run CMD in the background, output to $logdir/NAME.log
	local name=$1
	shift
	(
		SECONDS=0
		"$@"
		rc=$?
		echo "(${SECONDS}s)"
		exit "$rc"
	) >"$logdir/$name.log" 2>&1 &
	pid_of[$name]=$!
}
say "installing in parallel: ${steps[*]}"
start versitygw bash "$root/scripts/install-versitygw.sh"
start opa bash "$root/scripts/install-opa.sh"
start openfga bash "$root/scripts/install-openfga.sh"
start jaeger bash "$root/scripts/install-jaeger.sh"
start node-clients bash "$root/scripts/install-node-clients.sh"
start debian install_debian
failed=()
for name in "${steps[@]}"; do
	if wait "${pid_of[$name]}"; then
		sed "s/^/setup: $name: /" "$logdir/$name.log"
	else
		sed "s/^/setup: $name: /" "$logdir/$name.log" >&2
		failed+=("$name")
	fi
done
((${#failed[@]} == 0)) || die "failed: ${failed[*]} (their output is above)"

# 2. Preinstalled Python clients (PyPI is not reachable here, so they cannot be installed by this script).
if ! aws_version=$(aws --version 2>&1); then
	die "'aws --version' failed: the aws cli v1 must be preinstalled in the pyenv python (PyPI is not reachable). Output: $aws_version"
fi
say "aws: $aws_version"
if ! boto3_version=$(python3 -c 'import boto3; print(boto3.__version__)' 2>&1); then
	die "'python3 -c \"import boto3\"' failed: boto3 must be preinstalled in the pyenv python (PyPI is not reachable). Output: $boto3_version"
fi
say "boto3: $boto3_version ($(command -v python3))"
# requests: the presigned-URL and POST-policy tests send boto3's presigned requests with it.
if ! requests_version=$(python3 -c 'import requests; print(requests.__version__)' 2>&1); then
	die "'python3 -c \"import requests\"' failed: requests must be preinstalled in the pyenv python beside boto3 (PyPI is not reachable). Output: $requests_version"
fi
say "requests: $requests_version"

# 3. net.ipv4.tcp_migrate_req=1 (Linux >= 5.14): when the old process of an upgrade hand-over closes its
# SO_REUSEPORT listeners, the kernel moves the connections queued on them to the new process instead of
# resetting them (README "Upgrading without downtime"; the hand-over process test needs it).
migrate=/proc/sys/net/ipv4/tcp_migrate_req
warn() { printf 'setup: WARNING: %s\n' "$*" >&2; }
if [[ ! -e $migrate ]]; then
	warn "$migrate is missing (kernel $(uname -r) is older than 5.14): TestReusePortHandOver will fail"
elif [[ $(cat "$migrate") != 1 ]]; then
	if [[ $(id -u) -eq 0 ]]; then
		echo 1 2>/dev/null >"$migrate" || warn "cannot write 1 to $migrate: TestReusePortHandOver will fail"
	else
		echo 1 | sudo tee "$migrate" >/dev/null || warn "cannot write 1 to $migrate with sudo: TestReusePortHandOver will fail"
	fi
fi
[[ -e $migrate ]] && say "net.ipv4.tcp_migrate_req: $(cat "$migrate")"

say "done"
