#!/usr/bin/env bash
# run-local.sh — `make run`: start the proxy. With no upstream configured (UPSTREAM_ENDPOINT unset and
# no CONFIG given) it installs and starts a local versitygw on loopback as the upstream, creates the
# bucket, writes a config to .run/, starts bin/mizuchi-uploadr and, once its /readyz answers 200,
# prints the aws command to upload (or, if the proxy does not start or get ready, why, and exits 1).
#
#   CONFIG=path/to.yaml make run          run with your own configuration
#   UPSTREAM_ENDPOINT=http://host:port UPSTREAM_BUCKET=b UPSTREAM_ACCESS_KEY=.. UPSTREAM_SECRET_KEY=.. make run
#   PROXY_ADDRESS (default 127.0.0.1:8080), ADMIN_ADDRESS (127.0.0.1:9090), BUCKET (uploads),
#   VERSITYGW_PORT (7070), READY_TIMEOUT (seconds to wait for /readyz, default 30),
#   MIZUCHI_BIN (bin/mizuchi-uploadr), RUN_DIR (.run)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bin=${MIZUCHI_BIN:-bin/mizuchi-uploadr}
run=${RUN_DIR:-.run} # state: the config written, versitygw's data and log
[[ -x $bin ]] || { echo "run-local: $bin missing: run make build" >&2; exit 1; }

if [[ -n ${CONFIG:-} ]]; then
	exec "$bin" -config "$CONFIG" "$@"
fi

proxy=${PROXY_ADDRESS:-127.0.0.1:8080}
admin=${ADMIN_ADDRESS:-127.0.0.1:9090}
bucket=${BUCKET:-uploads}
mkdir -p "$run"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [[ -z ${UPSTREAM_ENDPOINT:-} ]]; then
	[[ -x .tools/bin/versitygw ]] || echo "run-local: building versitygw v1.8.0 for the local upstream (first run only: about 3 minutes)..."
	bash scripts/install-versitygw.sh
	port=${VERSITYGW_PORT:-7070}
	export UPSTREAM_ENDPOINT="http://127.0.0.1:$port"
	export UPSTREAM_BUCKET=${UPSTREAM_BUCKET:-$bucket}
	export UPSTREAM_ACCESS_KEY=${UPSTREAM_ACCESS_KEY:-local-root}
	export UPSTREAM_SECRET_KEY=${UPSTREAM_SECRET_KEY:-local-root-secret}
	mkdir -p "$run/versitygw-data"
	ROOT_ACCESS_KEY=$UPSTREAM_ACCESS_KEY ROOT_SECRET_KEY=$UPSTREAM_SECRET_KEY \
		.tools/bin/versitygw --port "127.0.0.1:$port" --health /health --keep-alive --quiet posix "$run/versitygw-data" \
		>"$run/versitygw.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do curl -fsS "$UPSTREAM_ENDPOINT/health" >/dev/null 2>&1 && break; sleep 0.1; done
	curl -fsS "$UPSTREAM_ENDPOINT/health" >/dev/null || { cat "$run/versitygw.log" >&2; echo "run-local: versitygw did not start" >&2; exit 1; }
	env -u AWS_CA_BUNDLE AWS_ACCESS_KEY_ID="$UPSTREAM_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$UPSTREAM_SECRET_KEY" AWS_DEFAULT_REGION=us-east-1 \
		aws --endpoint-url "$UPSTREAM_ENDPOINT" s3api create-bucket --bucket "$UPSTREAM_BUCKET" >/dev/null 2>&1 || true
	echo "run-local: versitygw on $UPSTREAM_ENDPOINT (data in $run/versitygw-data), bucket $UPSTREAM_BUCKET"
fi

export CLIENT_ACCESS_KEY=${CLIENT_ACCESS_KEY:-mizuchi-client}
export CLIENT_SECRET_KEY=${CLIENT_SECRET_KEY:-mizuchi-client-secret}
cat >"$run/config.yaml" <<YAML
server:
  address: "$proxy"
  zero_copy: {enabled: true, pipe_buffer_size: 1048576}
metrics: {enabled: true, address: "$admin"}
buckets:
  - name: $bucket
    s3: {bucket: "\${UPSTREAM_BUCKET}", region: us-east-1, endpoint: "\${UPSTREAM_ENDPOINT}",
         access_key: "\${UPSTREAM_ACCESS_KEY}", secret_key: "\${UPSTREAM_SECRET_KEY}"}
    auth: {sigv4: {credentials: [{access_key: "\${CLIENT_ACCESS_KEY}", secret_key: "\${CLIENT_SECRET_KEY}"}]}}
YAML
"$bin" -config "$run/config.yaml" "$@" &
proxy_pid=$!
pids+=("$proxy_pid")
# The banner only once the proxy answers /readyz with 200: listening, upstream reachable.
ready=
for _ in $(seq $((${READY_TIMEOUT:-30} * 10))); do
	if ! kill -0 "$proxy_pid" 2>/dev/null; then
		wait "$proxy_pid" && rc=0 || rc=$?
		echo "run-local: mizuchi-uploadr exited ($rc) before it was ready; see its log above" >&2
		exit 1
	fi
	if curl -fsS "http://$admin/readyz" >/dev/null 2>&1; then
		ready=1
		break
	fi
	sleep 0.1
done
if [[ -z $ready ]]; then
	echo "run-local: mizuchi-uploadr is not ready after ${READY_TIMEOUT:-30}s: $(curl -sS "http://$admin/readyz" 2>&1)" >&2
	exit 1
fi
cat <<MSG

Mizuchi Uploadr listens on http://$proxy (metrics: http://$admin/metrics). Upload with:

  AWS_ACCESS_KEY_ID=$CLIENT_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$CLIENT_SECRET_KEY AWS_DEFAULT_REGION=us-east-1 \\
    aws --endpoint-url http://$proxy s3 cp ./myfile s3://$bucket/myfile

Press Ctrl-C to stop.
MSG
wait "${pids[-1]}"
