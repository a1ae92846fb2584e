package engine

import (
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"github.com/mizuchi/uploadr/internal/exposition"
)

// engineMetrics are the data plane's Prometheus series (registered in the default
// VictoriaMetrics set, served by server's admin endpoint through internal/exposition, which adds
// each family's HELP text and TYPE). Per-request updates allocate nothing once a series exists.
// A new metric is a field here and one registration line (with its HELP text) below.
type engineMetrics struct {
	connsOpen          *metrics.Gauge
	bytesSplice        *metrics.Counter
	bytesCopy          *metrics.Counter
	detached           *metrics.Counter
	pipeTooSmall       *metrics.Counter
	timeouts           *metrics.Counter
	upstreamDials      *metrics.Counter
	upstreamDialErrors *metrics.Counter
	upstreamErrors     *metrics.Counter
	upstreamIdle       upGauge // written together with upstreamOpen (see writeUpstreamGauges)
	upstreamOpen       upGauge
	// https upstreams: completed client handshakes, and those that resumed a session
	upstreamTLSHandshakes *metrics.Counter
	upstreamTLSResumed    *metrics.Counter
	mpStarted             *metrics.Counter
	mpCompleted           *metrics.Counter
	mpAborted             *metrics.Counter
	partsSent             *metrics.Counter
	autoChunked           *metrics.Counter
	abortFailures         *metrics.Counter
	abortRetries          *metrics.Counter    // background AbortMultipartUpload attempts (after the first)
	abortsPending         *metrics.Gauge      // uploads whose abort is being retried
	uploadIDRefused       *metrics.Counter    // upload ids that did not open for their request (404 NoSuchUpload)
	limited               [4]*metrics.Counter // client limits (limits.go), by limitNames
	idleEvicted           *metrics.Counter
	proxyRejected         [ppReasons]*metrics.Counter

	bytesIn   *metrics.Counter
	bytesOut  *metrics.Counter
	durations [numOps]*metrics.PrometheusHistogram
	sizes     [numOps]*metrics.PrometheusHistogram

	mu       sync.Mutex
	requests map[reqKey]*metrics.Counter
	refusals map[string]*metrics.Counter
	authFail map[string]*metrics.Counter

	authzDecisions map[string]*metrics.Counter
	authMethods    map[string]*metrics.Counter
	authSigV4      *metrics.Counter
	authNone       *metrics.Counter
	authPresigned  *metrics.Counter

	corsAllowed *metrics.Counter // CORS preflights answered 200
	corsRefused *metrics.Counter // CORS preflights refused (400, 403)
}

// upGauge is a process-wide gauge of upstream connections kept as an integer (Inc and Dec are one
// atomic add each).
type upGauge struct{ n atomic.Int64 }

func (g *upGauge) Inc() { g.n.Add(1) }
func (g *upGauge) Dec() { g.n.Add(-1) }

// durationBounds are the request-duration histogram's buckets, in seconds: 1 ms (a small PUT
// answered from the loop) to 10 min (a 5 GiB part over a slow link).
var durationBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// sizeBounds are the body-size histogram's buckets, in bytes: 1 KiB to 5 GiB (S3's largest
// single PUT and part).
var sizeBounds = []float64{1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 8 << 20, 16 << 20,
	64 << 20, 256 << 20, 1 << 30, 5 << 30}

var (
	metricsOnce sync.Once
	theMetrics  *engineMetrics
)

// counter returns the counter series name and records its family's HELP text.
func counter(name, help string) *metrics.Counter {
	exposition.Help(exposition.Family(name), help)
	return metrics.GetOrCreateCounter(name)
}

// gauge returns the settable gauge series name and records its family's HELP text.
func gauge(name, help string) *metrics.Gauge {
	exposition.Help(exposition.Family(name), help)
	return metrics.GetOrCreateGauge(name, nil)
}

// newEngineMetrics returns the process-wide metrics (several engines in one test process share them).
func newEngineMetrics() *engineMetrics {
	metricsOnce.Do(func() {
		const transfer = "Request body bytes moved upstream, by mode: splice (kernel pipes) or copy (user space)."
		const auth = "Requests whose client was authenticated, by authentication method."
		const cors = "CORS preflights (OPTIONS) the proxy answered: allowed (200) or refused (400, 403)."
		theMetrics = &engineMetrics{
			connsOpen:             gauge(`mizuchi_connections_active`, "Client connections held by the proxy (event loops, detached transfers and the https listener)."),
			bytesSplice:           counter(`mizuchi_transfer_bytes_total{mode="splice"}`, transfer),
			bytesCopy:             counter(`mizuchi_transfer_bytes_total{mode="copy"}`, transfer),
			detached:              counter(`mizuchi_detached_requests_total`, "Requests whose body was relayed outside the event loop (spliced or copied by a goroutine)."),
			pipeTooSmall:          counter(`mizuchi_transfer_pipe_too_small_total`, "Transfers that fell back to user-space copy because the kernel granted a pipe smaller than asked (raise fs.pipe-max-size or grant CAP_SYS_RESOURCE)."),
			timeouts:              counter(`mizuchi_connection_timeouts_total`, "Client connections closed or answered by a head, idle, body or decision timeout."),
			upstreamDials:         counter(`mizuchi_upstream_dials_total`, "Connections dialled to upstream endpoints."),
			upstreamDialErrors:    counter(`mizuchi_upstream_dial_errors_total`, "Upstream dials that failed (refused, timed out, TLS handshake failed)."),
			upstreamTLSHandshakes: counter(`mizuchi_upstream_tls_handshakes_total`, "TLS handshakes completed with https upstreams."),
			upstreamTLSResumed:    counter(`mizuchi_upstream_tls_resumed_total`, "TLS handshakes with https upstreams that resumed a cached session."),
			upstreamErrors:        counter(`mizuchi_upstream_errors_total`, "Requests that failed because of the upstream (no connection, broken connection, bad or late answer): answered 502, 503 or 504."),
			mpStarted:             counter(`mizuchi_multipart_uploads_started_total`, "Multipart uploads created (pass-through CreateMultipartUpload and auto-chunked PUTs)."),
			mpCompleted:           counter(`mizuchi_multipart_uploads_completed_total`, "Multipart uploads completed (pass-through and auto-chunked)."),
			mpAborted:             counter(`mizuchi_multipart_uploads_aborted_total`, "Multipart uploads aborted (by clients, and by the proxy for failed auto-chunked PUTs)."),
			partsSent:             counter(`mizuchi_multipart_parts_sent_total`, "Parts the upstream accepted (pass-through UploadPart and auto-chunked parts)."),
			autoChunked:           counter(`mizuchi_autochunked_puts_total`, "PutObject requests the proxy cut into multipart uploads."),
			abortFailures:         counter(`mizuchi_multipart_abort_failures_total`, "Auto-chunked uploads the proxy gave up aborting: each leaves an incomplete multipart upload upstream (clean up with a lifecycle rule)."),
			abortRetries:          counter(`mizuchi_multipart_abort_retries_total`, "Background AbortMultipartUpload attempts after a failed first one."),
			abortsPending:         gauge(`mizuchi_multipart_abort_retries_pending`, "Auto-chunked uploads whose abort is being retried in the background."),
			uploadIDRefused:       counter(`mizuchi_upload_id_refused_total`, "Upload ids that did not open for their request (another principal's or key's, altered, forged): answered 404 NoSuchUpload."),
			bytesIn:               counter(`mizuchi_request_bytes_total`, "Request body bytes received from clients."),
			bytesOut:              counter(`mizuchi_response_bytes_total`, "Response bytes sent to clients."),
			requests:              map[reqKey]*metrics.Counter{},
			refusals:              map[string]*metrics.Counter{},
			authFail:              map[string]*metrics.Counter{},
			authzDecisions:        map[string]*metrics.Counter{},
			authMethods:           map[string]*metrics.Counter{},
			authSigV4:             counter(`mizuchi_authenticated_requests_total{method="sigv4"}`, auth),
			authNone:              counter(`mizuchi_authenticated_requests_total{method="none"}`, auth),
			authPresigned:         counter(`mizuchi_authenticated_requests_total{method="sigv4-presigned"}`, auth),
			corsAllowed:           counter(`mizuchi_cors_preflights_total{result="allowed"}`, cors),
			corsRefused:           counter(`mizuchi_cors_preflights_total{result="refused"}`, cors),
			idleEvicted:           counter(`mizuchi_connections_evicted_total`, "Idle keep-alive client connections closed to make room for a new one at the total connection limit."),
		}
		for i, name := range limitNames {
			theMetrics.limited[i] = counter(`mizuchi_limited_total{limit="`+name+`"}`, "Connections and requests refused by a client limit (answered 503 SlowDown, or closed), by limit.")
		}
		exposition.Help(`mizuchi_requests_total`, "Finished requests by client bucket (- when none was routed, * for the buckets of the \"*\" entry), S3 operation and HTTP status.")
		exposition.Help(`mizuchi_refusals_total`, "Requests the proxy answered itself, by S3 error code.")
		exposition.Help(`mizuchi_auth_failures_total`, "Failed client authentications, by S3 error code.")
		exposition.Help(`mizuchi_authz_decisions_total`, "Decisions of the buckets' authorizers: allow, deny (fail-closed errors included) or timeout.")
		exposition.Help(`mizuchi_upstream_open_connections`, "Open connections to upstream endpoints (all endpoints; idle ones included).")
		exposition.Help(`mizuchi_upstream_idle_connections`, "Idle keep-alive connections to upstream endpoints (all endpoints; never above the open ones).")
		exposition.Help(`mizuchi_uploads_active`, "Requests in flight.")
		exposition.Help(`mizuchi_request_duration_seconds`, "Request duration from the head's arrival to the answer, by S3 operation (refusals excluded).")
		exposition.Help(`mizuchi_request_body_bytes`, "Request body size, by S3 operation (refusals excluded).")
		for i, r := range ppReasonNames {
			theMetrics.proxyRejected[i] = counter(`mizuchi_proxy_protocol_rejected_total{reason="`+r+`"}`, "Client connections closed without an answer because of the PROXY protocol: untrusted peer, missing, malformed or incomplete header.")
		}
		metrics.NewGauge(`mizuchi_uploads_active`, func() float64 { return float64(activeTotal.Load()) })
		metrics.RegisterMetricsWriter(theMetrics.writeUpstreamGauges)
		for o := op(0); o < numOps; o++ {
			l := `{operation="` + o.String() + `"}`
			theMetrics.durations[o] = metrics.GetOrCreatePrometheusHistogramExt(`mizuchi_request_duration_seconds`+l, durationBounds)
			theMetrics.sizes[o] = metrics.GetOrCreatePrometheusHistogramExt(`mizuchi_request_body_bytes`+l, sizeBounds)
		}
	})
	return theMetrics
}

// writeUpstreamGauges writes the upstream connection gauges from one reading: open first, then
// idle, capped at open. A connection counts open before it enters an idle list and leaves the list
// before it stops counting open, so the counts themselves keep idle <= open; the cap covers the
// changes between the two reads.
func (m *engineMetrics) writeUpstreamGauges(w io.Writer) {
	open := max(m.upstreamOpen.n.Load(), 0)
	idle := min(max(m.upstreamIdle.n.Load(), 0), open)
	metrics.WriteGaugeUint64(w, `mizuchi_upstream_idle_connections`, uint64(idle))
	metrics.WriteGaugeUint64(w, `mizuchi_upstream_open_connections`, uint64(open))
}

// activeTotal counts requests in flight in every engine of the process.
var activeTotal atomic.Int64

type reqKey struct {
	bucket string
	op     op
	status int
}

// decided counts what admit decided about a request: its authentication, or a CORS preflight.
func (m *engineMetrics) decided(d *decision) {
	switch {
	case d.preflight && d.verdict == verdictPreflight:
		m.corsAllowed.Inc()
	case d.preflight:
		m.corsRefused.Inc()
	case d.authErr:
		m.authFailure(d.err)
	case d.verdict != verdictRefuse:
		m.authenticated(d.principal.Method)
	}
}

// request counts a finished request by bucket ("-" when none was routed), operation and status.
func (m *engineMetrics) request(bucket string, o op, status int) {
	if status < 0 || status >= 600 {
		status = 599
	}
	k := reqKey{bucket, o, status}
	m.mu.Lock()
	c := m.requests[k]
	if c == nil {
		c = metrics.GetOrCreateCounter(`mizuchi_requests_total{bucket="` + bucket + `",operation="` + o.String() + `",status="` + strconv.Itoa(status) + `"}`)
		m.requests[k] = c
	}
	m.mu.Unlock()
	c.Inc()
	switch {
	case o == opCreateMultipartUpload && status == 200:
		m.mpStarted.Inc()
	case o == opCompleteMultipartUpload && status == 200:
		m.mpCompleted.Inc()
	case o == opAbortMultipartUpload && status == 204:
		m.mpAborted.Inc()
	case o == opUploadPart && status == 200:
		m.partsSent.Inc()
	}
}

// refusal counts a request answered by the proxy itself, by S3 error code (record counts it as a
// request too).
func (m *engineMetrics) refusal(e *s3Error) {
	if e == errNoSuchUpload {
		m.uploadIDRefused.Inc()
	}
	m.labelled(m.refusals, `mizuchi_refusals_total{reason="`, e.Code)
}

// authzDecision counts an Authorizer's decision: allow, deny or timeout.
func (m *engineMetrics) authzDecision(d string) {
	m.labelled(m.authzDecisions, `mizuchi_authz_decisions_total{decision="`, d)
}

// authenticated counts a request whose principal was established, by authentication method. The
// built-in methods have their series ready (the loop's path takes no lock for them).
func (m *engineMetrics) authenticated(method string) {
	switch method {
	case "":
		// Not authenticated yet: a PostObject is, once its form is read (postobject_exchange.go).
	case "sigv4":
		m.authSigV4.Inc()
	case "none":
		m.authNone.Inc()
	case "sigv4-presigned":
		m.authPresigned.Inc()
	default:
		m.labelled(m.authMethods, `mizuchi_authenticated_requests_total{method="`, method)
	}
}

func (m *engineMetrics) authFailure(e *s3Error) {
	m.labelled(m.authFail, `mizuchi_auth_failures_total{reason="`, e.Code)
}

func (m *engineMetrics) labelled(set map[string]*metrics.Counter, prefix, label string) {
	m.mu.Lock()
	c := set[label]
	if c == nil {
		c = metrics.GetOrCreateCounter(prefix + label + `"}`) // the family's HELP is recorded at start
		set[label] = c
	}
	m.mu.Unlock()
	c.Inc()
}

// limitNames are the limit labels of mizuchi_limited_total.
var limitNames = [...]string{"connections", "connections_per_ip", "requests_per_ip", "requests_per_principal"}

// limitedBy counts one connection or request refused by the named limit.
func (m *engineMetrics) limitedBy(name string) {
	for i, n := range limitNames {
		if n == name {
			m.limited[i].Inc()
			return
		}
	}
}
