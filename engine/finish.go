package engine

import (
	"bytes"
	"context"
	"log/slog"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/s3sig"
)

// outcome is how a request ended.
type outcome struct {
	status      int
	bodyBytes   int64  // body bytes taken from the client
	spliced     int64  // of which moved by splice
	mode        string // "inline", "splice", "copy", "refused", "none"
	closeClient bool   // the client connection must not serve another request
}

// finish ends an exchanged request, whichever path it took: it records it (metrics, access log),
// then hands the client connection on — the next request on its loop, a re-enroll after a detach,
// or close — and releases j. Refusals end in refuse, which records the same way. A net.Conn side
// returns to its driver, which reads the next request itself.
func (e *Engine) finish(j *job, o outcome) {
	if o.mode == "inline" && j.upStatus == 0 {
		o.spliced = 0
	}
	e.record(&j.reqMeta, o, int64(len(j.resp)))
	switch j.side {
	case sideLoop:
		st, c := j.st, j.c
		if !st.closed {
			_, _ = c.Write(j.resp) // a failure runs OnClose (st.closed) inside the call
		}
		j.release()
		e.next(c, st, o.closeClient)
	case sideAsync:
		st, c := j.st, j.c
		err := c.AsyncWrite(j.resp, func(c gnet.Conn, err error) error {
			j.release()
			if err != nil || st.closed {
				return nil
			}
			e.next(c, st, o.closeClient)
			return nil
		})
		if err != nil {
			j.release()
		}
	case sideDetached:
		e.handBack(j, !o.closeClient)
	case sideNet:
		// The driver (Engine.Serve) reads the next request itself, or closes.
		j.release()
	}
}

// record counts a finished request and writes its access log line: the one place both happen.
// An inline body counts as moved only when the upstream answered.
func (e *Engine) record(m *reqMeta, o outcome, respBytes int64) {
	d := time.Since(m.started)
	name, label := "-", "-"
	if m.bucket != nil {
		name, label = m.bucket.name, m.bucket.label // label: "*" for the "*" entry's buckets
	}
	e.metrics.request(label, m.op, o.status)
	e.metrics.bytesSplice.Add(int(o.spliced))
	if o.mode != "inline" || m.upStatus != 0 {
		e.metrics.bytesCopy.Add(int(o.bodyBytes - o.spliced))
	}
	e.metrics.bytesIn.Add(int(o.bodyBytes))
	e.metrics.bytesOut.Add(int(respBytes))
	if o.mode != "refused" {
		e.metrics.durations[m.op].Update(d.Seconds())
		e.metrics.sizes[m.op].Update(float64(o.bodyBytes))
	}
	if al := e.opts.AccessLog; al != nil {
		e.accessLog(al, m, name, o, respBytes, d)
	}
	if m.trace.span != nil {
		endTrace(m, o, respBytes, m.started.Add(d))
	}
}

// accessLog writes one access log line. It never logs headers, signatures or secrets; the key is
// the decoded object key.
func (e *Engine) accessLog(al *slog.Logger, m *reqMeta, bucket string, o outcome, respBytes int64, d time.Duration) {
	key := m.resource
	switch {
	case m.keyStart > 0 && m.keyStart <= len(key):
		key = key[m.keyStart:] // routed: path style or virtual-hosted
	case bytes.IndexByte(key[min(1, len(key)):], '/') >= 0:
		key = key[bytes.IndexByte(key[1:], '/')+2:]
	default:
		key = nil
	}
	if dec, err := s3sig.AppendPercentDecode(nil, key); err == nil {
		key = dec
	}
	if o.mode == "refused" {
		d = 0
	}
	al.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("request_id", string(m.reqID[:])),
		slog.String("remote", m.remote),
		slog.String("principal", m.principal.ID),
		slog.String("auth", m.principal.Method),
		slog.String("bucket", bucket),
		slog.String("key", string(key)),
		slog.String("operation", m.op.String()),
		slog.Int("status", o.status),
		slog.Int64("bytes_in", o.bodyBytes),
		slog.Int64("bytes_out", respBytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("mode", o.mode),
		slog.Int("upstream_status", m.upStatus),
		slog.String("upstream_request_id", string(m.upReqID)))
}
