package server

import (
	"io"
	"strconv"

	"github.com/VictoriaMetrics/metrics"

	"github.com/mizuchi/uploadr/internal/buildinfo"
	"github.com/mizuchi/uploadr/internal/exposition"
)

// The HELP texts of the families server registers (engine describes its own). The series
// themselves are registered next to their use: run.go (reloads, pipes, ready, draining),
// logging.go (access-log drops), probe.go (up gauges), authz.go (authorization services).
func init() {
	for fam, text := range map[string]string{
		`mizuchi_config_reloads_total`:                     "Configuration reloads (SIGHUP), by result: ok or error (the running configuration stays).",
		`mizuchi_pipes_in_use`:                             "Splice pipes lent to transfers.",
		`mizuchi_pipes_idle`:                               "Splice pipes pooled for reuse.",
		`mizuchi_copy_buffers_in_use`:                      "Copy-path buffers lent to transfers (https clients and upstreams, zero copy off).",
		`mizuchi_copy_buffers_idle`:                        "Copy-path buffers kept for reuse.",
		`mizuchi_copy_buffers_waiting`:                     "Transfers waiting for a copy-path buffer (server.copy_memory_max reached).",
		`mizuchi_copy_buffer_waits_total`:                  "Transfers that had to wait for a copy-path buffer (server.copy_memory_max reached).",
		`mizuchi_copy_buffer_overflows_total`:              "16 KiB overflow buffers lent past server.copy_memory_max to copies that cannot wait (https clients, de-chunked bodies, PostObject).",
		`mizuchi_ready`:                                    "1 when /readyz answers 200 (listening, not draining, every upstream and authorization service reachable), else 0.",
		`mizuchi_draining`:                                 "1 while a drain (SIGTERM, SIGINT) is in progress, else 0.",
		`mizuchi_access_log_dropped_total`:                 "Access-log lines dropped because the output did not keep up.",
		`mizuchi_upstream_up`:                              "1 if the last readiness probe (TCP connect) of the upstream endpoint succeeded, else 0.",
		`mizuchi_authz_up`:                                 "1 if the last readiness probe (TCP connect) of the authorization service succeeded, else 0.",
		`mizuchi_authz_request_duration_seconds`:           "Latency of the decisions asked of an authorization service (cache hits excluded).",
		`mizuchi_authz_cache_hits_total`:                   "Authorization decisions answered from the decision cache.",
		`mizuchi_authz_cache_misses_total`:                 "Authorization decisions that had to be asked of the service.",
		`mizuchi_authz_errors_total`:                       "Authorization decisions that failed (and so refused the request), by kind: timeout, unavailable, bad_answer, input.",
		`mizuchi_build_info`:                               "Always 1; the labels name the running binary's version, source revision and Go version.",
		`mizuchi_tls_certificate_expiry_timestamp_seconds`: "Expiry (NotAfter, Unix seconds) of the certificate the https listener serves; absent without an https listener.",
	} {
		exposition.Help(fam, text)
	}
	metrics.NewGauge(`mizuchi_build_info{version=`+label(buildinfo.Version)+`,revision=`+label(buildinfo.Revision)+
		`,goversion=`+label(buildinfo.GoVersion())+`}`, func() float64 { return 1 })
	metrics.RegisterMetricsWriter(writeCertExpiry)
	metrics.RegisterMetricsWriter(writeCopyCapCounters)
}

// label quotes a label value for the text format (backslash, double quote and line feed escaped).
func label(v string) string {
	b := []byte{'"'}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

// writeCertExpiry writes mizuchi_tls_certificate_expiry_timestamp_seconds when the current server
// serves https (the certificate SIGHUP reloads included).
func writeCertExpiry(w io.Writer) {
	s := current.Load()
	if s == nil {
		return
	}
	c := s.certs.cert.Load()
	if c == nil || c.Leaf == nil {
		return
	}
	metrics.WriteMetadataIfNeeded(w, `mizuchi_tls_certificate_expiry_timestamp_seconds`, "gauge")
	_, _ = io.WriteString(w, `mizuchi_tls_certificate_expiry_timestamp_seconds `+strconv.FormatInt(c.Leaf.NotAfter.Unix(), 10)+"\n")
}

// writeCopyCapCounters writes how often the copy buffers' cap was reached: transfers that waited
// for a buffer and overflow buffers lent past it (transfer.Stats; 0 before the server runs).
func writeCopyCapCounters(w io.Writer) {
	var waits, overflows int64
	if s := current.Load(); s != nil {
		st := s.eng.TransferStats()
		waits, overflows = st.CopyWaits, st.CopyOverflows
	}
	metrics.WriteMetadataIfNeeded(w, `mizuchi_copy_buffer_waits_total`, "counter")
	_, _ = io.WriteString(w, `mizuchi_copy_buffer_waits_total `+strconv.FormatInt(waits, 10)+"\n")
	metrics.WriteMetadataIfNeeded(w, `mizuchi_copy_buffer_overflows_total`, "counter")
	_, _ = io.WriteString(w, `mizuchi_copy_buffer_overflows_total `+strconv.FormatInt(overflows, 10)+"\n")
}
