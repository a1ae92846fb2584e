package engine

import (
	"strconv"
	"sync"

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
	mpStarted          *metrics.Counter
	mpCompleted        *metrics.Counter
	mpAborted          *metrics.Counter
	partsSent          *metrics.Counter
	autoChunked        *metrics.Counter
	abortFailures      *metrics.Counter

	mu       sync.Mutex
	requests [numOps][600]*metrics.Counter
	refusals map[string]*metrics.Counter
	authFail map[string]*metrics.Counter
}

var (
	metricsOnce sync.Once
	theMetrics  *engineMetrics
)

// newEngineMetrics returns the process-wide metrics (several engines in one test process share them).
func newEngineMetrics() *engineMetrics {
	metricsOnce.Do(func() {
		theMetrics = &engineMetrics{
			connsOpen:          metrics.GetOrCreateCounter(`mizuchi_connections_active`),
			bytesSplice:        metrics.GetOrCreateCounter(`mizuchi_transfer_bytes_total{mode="splice"}`),
			bytesCopy:          metrics.GetOrCreateCounter(`mizuchi_transfer_bytes_total{mode="copy"}`),
			detached:           metrics.GetOrCreateCounter(`mizuchi_detached_requests_total`),
			pipeTooSmall:       metrics.GetOrCreateCounter(`mizuchi_transfer_pipe_too_small_total`),
			timeouts:           metrics.GetOrCreateCounter(`mizuchi_connection_timeouts_total`),
			upstreamDials:      metrics.GetOrCreateCounter(`mizuchi_upstream_dials_total`),
			upstreamDialErrors: metrics.GetOrCreateCounter(`mizuchi_upstream_dial_errors_total`),
			upstreamErrors:     metrics.GetOrCreateCounter(`mizuchi_upstream_errors_total`),
			upstreamIdle:       metrics.GetOrCreateCounter(`mizuchi_upstream_idle_connections`),
			mpStarted:          metrics.GetOrCreateCounter(`mizuchi_multipart_uploads_started_total`),
			mpCompleted:        metrics.GetOrCreateCounter(`mizuchi_multipart_uploads_completed_total`),
			mpAborted:          metrics.GetOrCreateCounter(`mizuchi_multipart_uploads_aborted_total`),
			partsSent:          metrics.GetOrCreateCounter(`mizuchi_multipart_parts_sent_total`),
			autoChunked:        metrics.GetOrCreateCounter(`mizuchi_autochunked_puts_total`),
			abortFailures:      metrics.GetOrCreateCounter(`mizuchi_multipart_abort_failures_total`),
			refusals:           map[string]*metrics.Counter{},
			authFail:           map[string]*metrics.Counter{},
		}
	})
	return theMetrics
}

// request counts a finished request by operation and status.
func (m *engineMetrics) request(o op, status int) {
	if status < 0 || status >= 600 {
		status = 599
	}
	m.mu.Lock()
	c := m.requests[o][status]
	if c == nil {
		c = metrics.GetOrCreateCounter(`mizuchi_requests_total{operation="` + o.String() + `",status="` + strconv.Itoa(status) + `"}`)
		m.requests[o][status] = c
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

// refused counts a request answered by the proxy itself, by S3 error code, and as a request.
func (m *engineMetrics) refused(o op, e *s3Error) {
	m.labelled(m.refusals, `mizuchi_refusals_total{reason="`, e.Code)
	m.request(o, e.Status)
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
