package engine

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// engineMetrics are the data plane's Prometheus series (registered in the default
// VictoriaMetrics set, served by server's admin endpoint). Per-request updates allocate nothing
// once a series exists.
type engineMetrics struct {
	connsOpen          *metrics.Counter // gauge-like: incremented and decremented
	bytesSplice        *metrics.Counter
	bytesCopy          *metrics.Counter
	detached           *metrics.Counter
	pipeTooSmall       *metrics.Counter
	timeouts           *metrics.Counter
	upstreamDials      *metrics.Counter
	upstreamDialErrors *metrics.Counter
	upstreamErrors     *metrics.Counter
	upstreamIdle       *metrics.Counter
	upstreamOpen       *metrics.Counter
	// https upstreams: completed client handshakes, and those that resumed a session
	upstreamTLSHandshakes *metrics.Counter
	upstreamTLSResumed    *metrics.Counter
	mpStarted             *metrics.Counter
	mpCompleted           *metrics.Counter
	mpAborted             *metrics.Counter
	partsSent             *metrics.Counter
	autoChunked           *metrics.Counter
	abortFailures         *metrics.Counter
	abortRetries          *metrics.Counter // background AbortMultipartUpload attempts (after the first)
	abortsPending         *metrics.Counter // gauge-like: uploads whose abort is being retried
	uploadIDRefused       *metrics.Counter // upload ids that did not open for their request (404 NoSuchUpload)

	bytesIn   *metrics.Counter
	bytesOut  *metrics.Counter
	durations [numOps]*metrics.Histogram

	mu       sync.Mutex
	requests map[reqKey]*metrics.Counter
	refusals map[string]*metrics.Counter
	authFail map[string]*metrics.Counter

	authzDecisions map[string]*metrics.Counter
	authMethods    map[string]*metrics.Counter
	authSigV4      *metrics.Counter
	authNone       *metrics.Counter
	authPresigned  *metrics.Counter
}

var (
	metricsOnce sync.Once
	theMetrics  *engineMetrics
)

// newEngineMetrics returns the process-wide metrics (several engines in one test process share them).
func newEngineMetrics() *engineMetrics {
	metricsOnce.Do(func() {
		theMetrics = &engineMetrics{
			connsOpen:             metrics.GetOrCreateCounter(`mizuchi_connections_active`),
			bytesSplice:           metrics.GetOrCreateCounter(`mizuchi_transfer_bytes_total{mode="splice"}`),
			bytesCopy:             metrics.GetOrCreateCounter(`mizuchi_transfer_bytes_total{mode="copy"}`),
			detached:              metrics.GetOrCreateCounter(`mizuchi_detached_requests_total`),
			pipeTooSmall:          metrics.GetOrCreateCounter(`mizuchi_transfer_pipe_too_small_total`),
			timeouts:              metrics.GetOrCreateCounter(`mizuchi_connection_timeouts_total`),
			upstreamDials:         metrics.GetOrCreateCounter(`mizuchi_upstream_dials_total`),
			upstreamDialErrors:    metrics.GetOrCreateCounter(`mizuchi_upstream_dial_errors_total`),
			upstreamErrors:        metrics.GetOrCreateCounter(`mizuchi_upstream_errors_total`),
			upstreamIdle:          metrics.GetOrCreateCounter(`mizuchi_upstream_idle_connections`),
			upstreamOpen:          metrics.GetOrCreateCounter(`mizuchi_upstream_open_connections`),
			upstreamTLSHandshakes: metrics.GetOrCreateCounter(`mizuchi_upstream_tls_handshakes_total`),
			upstreamTLSResumed:    metrics.GetOrCreateCounter(`mizuchi_upstream_tls_resumed_total`),
			mpStarted:             metrics.GetOrCreateCounter(`mizuchi_multipart_uploads_started_total`),
			mpCompleted:           metrics.GetOrCreateCounter(`mizuchi_multipart_uploads_completed_total`),
			mpAborted:             metrics.GetOrCreateCounter(`mizuchi_multipart_uploads_aborted_total`),
			partsSent:             metrics.GetOrCreateCounter(`mizuchi_multipart_parts_sent_total`),
			autoChunked:           metrics.GetOrCreateCounter(`mizuchi_autochunked_puts_total`),
			abortFailures:         metrics.GetOrCreateCounter(`mizuchi_multipart_abort_failures_total`),
			abortRetries:          metrics.GetOrCreateCounter(`mizuchi_multipart_abort_retries_total`),
			abortsPending:         metrics.GetOrCreateCounter(`mizuchi_multipart_abort_retries_pending`),
			uploadIDRefused:       metrics.GetOrCreateCounter(`mizuchi_upload_id_refused_total`),
			bytesIn:               metrics.GetOrCreateCounter(`mizuchi_request_bytes_total`),
			bytesOut:              metrics.GetOrCreateCounter(`mizuchi_response_bytes_total`),
			requests:              map[reqKey]*metrics.Counter{},
			refusals:              map[string]*metrics.Counter{},
			authFail:              map[string]*metrics.Counter{},
			authzDecisions:        map[string]*metrics.Counter{},
			authMethods:           map[string]*metrics.Counter{},
			authSigV4:             metrics.GetOrCreateCounter(`mizuchi_authenticated_requests_total{method="sigv4"}`),
			authNone:              metrics.GetOrCreateCounter(`mizuchi_authenticated_requests_total{method="none"}`),
			authPresigned:         metrics.GetOrCreateCounter(`mizuchi_authenticated_requests_total{method="sigv4-presigned"}`),
		}
		metrics.NewGauge(`mizuchi_uploads_active`, func() float64 { return float64(activeTotal.Load()) })
		for o := op(0); o < numOps; o++ {
			theMetrics.durations[o] = metrics.GetOrCreateHistogram(`mizuchi_request_duration_seconds{operation="` + o.String() + `"}`)
		}
	})
	return theMetrics
}

// activeTotal counts requests in flight in every engine of the process.
var activeTotal atomic.Int64

type reqKey struct {
	bucket string
	op     op
	status int
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
		c = metrics.GetOrCreateCounter(prefix + label + `"}`)
		set[label] = c
	}
	m.mu.Unlock()
	c.Inc()
}
