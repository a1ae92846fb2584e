-- wrk-put.lua — PUT objects with wrk (https://github.com/wg/wrk) through Mizuchi Uploadr, against a
-- bucket configured `auth: none` (wrk cannot compute SigV4 signatures per request).
--
--   WRK_SIZE=4096 wrk -t2 -c16 -d10s -s scripts/wrk-put.lua http://127.0.0.1:8080/open/wrk-object
--
-- WRK_SIZE   body bytes per PUT (default 4096; the body is built once, in memory)
-- WRK_NOAUTH set to send no Authorization header at all. By default a well-formed but unverifiable
--            SigV4 header is sent: the proxy ignores it on an `auth: none` bucket (it re-signs for the
--            upstream), and upstreams that insist on seeing one (the bench sink, reached directly or
--            through nginx, a relay or httputil.ReverseProxy) accept it.
--
-- When the run ends, done() prints one line, `WRK_JSON {...}`, with requests, errors, non-2xx answers,
-- seconds and latency percentiles in milliseconds; scripts/bench.sh reads it.

local size = tonumber(os.getenv("WRK_SIZE") or "4096")
wrk.method = "PUT"
wrk.body = string.rep("m", size)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
if os.getenv("WRK_NOAUTH") == nil then
  wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=wrk/20260101/us-east-1/s3/aws4_request, " ..
    "SignedHeaders=host;x-amz-content-sha256, Signature=" .. string.rep("0", 64)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"errors":%d,"non2xx":%d,"seconds":%.6f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f}\n',
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
