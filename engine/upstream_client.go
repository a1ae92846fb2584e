package engine

import (
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// The upstream client: every request the proxy sends upstream — inline, streamed, each step of an
// auto-chunked upload, aborts — goes out through sendHead (one write of a signed head, retried once
// on a fresh connection when a pooled one turns out dead) and, for bodies held in memory, roundTrip
// (which also reads the answer and retries once when no answer byte came). Loop-owned connections
// (upstream_loop.go) have their own retry on the loop.

// baseHeaders returns the three headers every upstream request signs, in j.sigHdrs.
func (e *Engine) baseHeaders(j *job, b *bucketState, payload []byte) []s3sig.Header {
	j.date = s3sig.AppendAmzDate(j.date[:0], e.opts.Now())
	j.sigHdrs = append(j.sigHdrs[:0],
		s3sig.Header{Name: []byte("host"), Value: b.hostHeader},
		s3sig.Header{Name: []byte("x-amz-date"), Value: j.date},
		s3sig.Header{Name: []byte("x-amz-content-sha256"), Value: payload})
	return j.sigHdrs
}

// sendHead writes a request head on a pooled connection, retrying once on a fresh connection when a
// reused one turns out dead.
func (e *Engine) sendHead(j *job, head []byte) (*upConn, *s3Error) {
	u, err := j.bucket.pool.get()
	if err != nil {
		e.metrics.upstreamErrors.Inc()
		return nil, poolError(err)
	}
	_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
	if _, err = u.c.Write(head); err != nil && u.reused {
		u.close()
		if u, err = j.bucket.pool.dial(); err == nil {
			_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
			_, err = u.c.Write(head)
		}
	}
	if err != nil {
		if u != nil {
			u.close()
		}
		e.metrics.upstreamErrors.Inc()
		return nil, errBadGateway
	}
	_ = u.c.SetWriteDeadline(time.Time{})
	return u, nil
}

// roundTrip sends head and body (small, in memory) and reads the answer. A reused connection that
// fails before any answer byte is retried once.
func (e *Engine) roundTrip(j *job, head, body []byte) (*upConn, upResponse, *s3Error) {
	var resp upResponse
	for attempt := 0; ; attempt++ {
		u, s3err := e.sendHead(j, head)
		if s3err != nil {
			return nil, resp, s3err
		}
		var err error
		if len(body) > 0 {
			_, err = u.c.Write(body)
		}
		started := false
		if err == nil {
			_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
			started, err = readResponse(u, e.limits, &resp)
		}
		if err == nil {
			return u, resp, nil
		}
		u.close()
		if u.reused && !started && attempt == 0 {
			continue
		}
		e.metrics.upstreamErrors.Inc()
		if isTimeout(err) {
			return nil, resp, errUpstreamTimeout
		}
		return nil, resp, errBadGateway
	}
}

// release returns the connection to its pool when the exchange left it reusable, else closes it.
func (u *upConn) release(keepAlive bool) {
	if keepAlive {
		u.pool.put(u)
	} else {
		u.close()
	}
}
