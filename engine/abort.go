package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// Aborting an auto-chunked upload upstream (AbortMultipartUpload, DELETE /bucket/key?uploadId=X).
//
// The first attempt is synchronous, so that a normal failed upload is cleaned up before its client
// gets an answer. When it fails for a reason that may pass (network error, timeout, 5xx, 408, 429:
// the upstream restarting, a load balancer dropping it), a background retrier tries again with
// exponential backoff (UpstreamOptions.AbortRetryBackoff doubling up to abortBackoffMax, each delay
// jittered to [d/2, d]) for at most UpstreamOptions.AbortRetryFor. A final failure is counted in
// mizuchi_multipart_abort_failures_total and logged at warn with what an operator needs to abort it
// by hand (bucket, key, upload id, request id; never a credential or signature). The upstream
// bucket's lifecycle rule AbortIncompleteMultipartUpload is the last line of defence (README).
//
// On shutdown every retrier makes one last attempt at once and then gives up: a process that is
// going away cannot keep its promise of retrying for ten minutes, and the lifecycle rule takes
// over. Two paths lead there: the sweep calls stopAborts while the engine drains (it does not
// wait), and Engine.Shutdown calls finishAborts, which also waits for those last attempts.

// abortBackoffMax caps the delay between two background attempts (unless AbortRetryBackoff is
// larger, then that is the delay).
const abortBackoffMax = 30 * time.Second

// abortAttemptTimeout bounds one attempt's write and response wait (ResponseTimeout when shorter).
const abortAttemptTimeout = 30 * time.Second

// abortOutcome is what one attempt established.
type abortOutcome int

const (
	abortDone  abortOutcome = iota // the upload is gone (aborted now, or already: 404)
	abortRetry                     // failed for a reason that may pass
	abortFinal                     // refused for a reason retrying will not change (403, 400, ...)
)

// abortScratch is one abort's request: signing scratch and what to log. Owned by one goroutine.
type abortScratch struct {
	b        *bucketState
	path     []byte // "/<upstream bucket>/<S3-URI-encoded key>", as on the wire
	uploadID []byte // URI-encoded, as in the query
	reqID    [16]byte

	date, query, auth, head []byte
	hs                      [3]s3sig.Header

	status int   // last upstream status (0: none)
	err    error // last transport error

	span Span // the abort's span when the failed request was traced; nil otherwise
}

// abortUploadRetrying aborts the multipart upload uploadID of the object at path on b's upstream.
// path is the upstream request path as on the wire ("/<upstream bucket>/<S3-URI-encoded key>",
// job.path); uploadID is URI-encoded as it goes in the query; reqID is the client request's id,
// for the log. The first attempt runs now, in the caller's goroutine (it blocks for at most about
// the dial timeout plus 30 s, twice when a pooled connection turns out dead); if it fails and may succeed later, the abort is handed to a background
// retrier and abortUploadRetrying returns. It copies path and uploadID. Safe for concurrent use.
//
// parent is the failed request's span when it is traced (nil: not traced): the abort then gets an
// "abort multipart upload" child span, from the first attempt to the outcome (it may end after
// the request's), with an "upstream AbortMultipartUpload" client span per attempt whose request
// carries its traceparent.
func (e *Engine) abortUploadRetrying(b *bucketState, path, uploadID []byte, reqID [16]byte, parent Span) {
	a := &abortScratch{b: b, path: append([]byte(nil), path...), uploadID: append([]byte(nil), uploadID...), reqID: reqID}
	if parent != nil {
		a.span = parent.Child("abort multipart upload", time.Time{}, false)
		a.span.SetString(attrUploadID, decoded(a.uploadID))
	}
	switch e.abortOnce(a) {
	case abortDone:
		e.abortSucceeded(a, 1)
		return
	case abortFinal:
		e.abortGaveUp(a, 1, 0, "the upstream refused the abort")
		return
	}
	ab := e.aborter()
	e.metrics.abortsPending.Inc()
	go func() {
		defer e.abortDone(ab)
		defer e.metrics.abortsPending.Dec()
		r := retrier{
			first:    e.opts.Upstream.AbortRetryBackoff,
			max:      max(abortBackoffMax, e.opts.Upstream.AbortRetryBackoff),
			retryFor: e.opts.Upstream.AbortRetryFor,
			now:      time.Now,
			wait:     waitOrStop,
			jitter:   halfJitter,
		}
		start := time.Now()
		out, tries, stopped := r.run(ab.stop, func() abortOutcome {
			e.metrics.abortRetries.Inc()
			return e.abortOnce(a)
		})
		switch {
		case out == abortDone:
			e.abortSucceeded(a, tries+1)
		case out == abortFinal:
			e.abortGaveUp(a, tries+1, time.Since(start), "the upstream refused the abort")
		case stopped:
			e.abortGaveUp(a, tries+1, time.Since(start), "engine shutting down")
		default:
			e.abortGaveUp(a, tries+1, time.Since(start), "retry time exhausted")
		}
	}()
}

// abortSucceeded counts an aborted upload and ends its span.
func (e *Engine) abortSucceeded(a *abortScratch, attempts int) {
	e.metrics.mpAborted.Inc()
	if a.span != nil {
		a.span.SetString(attrAbortOutcome, "aborted")
		a.span.SetInt(attrAbortAttempts, int64(attempts))
		a.span.End(time.Time{})
	}
}

// abortGaveUp counts and logs an upload left behind upstream.
func (e *Engine) abortGaveUp(a *abortScratch, attempts int, retried time.Duration, reason string) {
	e.metrics.abortFailures.Inc()
	if a.span != nil {
		a.span.SetString(attrAbortOutcome, "gave_up")
		a.span.SetInt(attrAbortAttempts, int64(attempts))
		a.span.SetError(reason)
		a.span.End(time.Time{})
	}
	attrs := []slog.Attr{
		slog.String("request_id", string(a.reqID[:])),
		slog.String("bucket", a.b.name),
		slog.String("upstream_bucket", a.b.up.Bucket),
		slog.String("key", decodedKey(a.b, a.path)),
		slog.String("upload_id", decoded(a.uploadID)),
		slog.Int("attempts", attempts),
		slog.Duration("retried_for", retried.Round(time.Millisecond)),
		slog.String("reason", reason),
	}
	if a.status != 0 {
		attrs = append(attrs, slog.Int("upstream_status", a.status))
	}
	if a.err != nil {
		attrs = append(attrs, slog.String("error", a.err.Error()))
	}
	e.opts.Logger.LogAttrs(context.Background(), slog.LevelWarn,
		"could not abort a multipart upload: it stays upstream until aborted by hand or by the bucket's AbortIncompleteMultipartUpload lifecycle rule",
		attrs...)
}

func decoded(b []byte) string {
	d, err := s3sig.AppendPercentDecode(nil, b)
	if err != nil {
		return string(b)
	}
	return string(d)
}

// decodedKey returns the object key of an upstream path "/<upstream bucket>/<key>".
func decodedKey(b *bucketState, path []byte) string {
	prefix := len(b.up.Bucket) + 2
	if len(path) < prefix {
		return ""
	}
	return decoded(path[prefix:])
}

// abortOnce sends one AbortMultipartUpload on b's pool and classifies the answer. A pooled
// connection that turns out dead before any answer byte is replaced once (that is not an upstream
// failure). It records the last status or error in a.
func (e *Engine) abortOnce(a *abortScratch) abortOutcome {
	if a.span == nil {
		return e.abortAttempt(a, nil)
	}
	sp := a.span.Child(upstreamNames[opAbortMultipartUpload], time.Time{}, true)
	out := e.abortAttempt(a, sp)
	var s3err *s3Error
	switch {
	case a.status == 0 && a.err != nil && isTimeout(a.err):
		s3err = errUpstreamTimeout
	case a.status == 0 && a.err != nil:
		s3err = errBadGateway
	}
	endUpstreamSpan(sp, a.status, s3err)
	return out
}

// abortAttempt is one attempt of abortOnce; sp (nil: untraced) is the attempt's span, named in
// the request's traceparent.
func (e *Engine) abortAttempt(a *abortScratch, sp Span) abortOutcome {
	a.status, a.err = 0, nil
	if err := e.signAbort(a); err != nil {
		a.err = err
		return abortFinal
	}
	if sp != nil { // unsigned, like every upstream request's traceparent (trace.go)
		a.head = append(a.head[:len(a.head)-2], "traceparent: "...)
		a.head = append(sp.AppendTraceparent(a.head), "\r\n\r\n"...)
	}
	timeout := min(abortAttemptTimeout, e.opts.ResponseTimeout)
	p := a.b.pool
	for try := 0; ; try++ {
		u, err := p.get()
		if err != nil {
			a.err = err
			return abortRetry
		}
		_ = u.c.SetDeadline(time.Now().Add(timeout))
		var resp upResponse
		started := false
		if _, err = u.c.Write(a.head); err == nil {
			started, err = readResponse(u, e.limits, &resp)
		}
		if err != nil {
			u.close()
			if u.reused && !started && try == 0 {
				continue
			}
			a.err = err
			e.metrics.upstreamErrors.Inc()
			return abortRetry
		}
		a.status = resp.head.Status
		if resp.keepAlive {
			p.put(u)
		} else {
			u.close()
		}
		return classifyAbort(a.status)
	}
}

// classifyAbort maps AbortMultipartUpload's status: 204 (S3) or 200 means aborted, 404 that the
// upload (or its bucket) is already gone; 408, 429 and 5xx may pass; other answers will not change.
func classifyAbort(status int) abortOutcome {
	switch {
	case status == 204 || status == 200 || status == 404:
		return abortDone
	case status == 408 || status == 429 || status >= 500:
		return abortRetry
	}
	return abortFinal
}

// signAbort renders a's signed request head into a.head.
func (e *Engine) signAbort(a *abortScratch) error {
	b := a.b
	a.date = s3sig.AppendAmzDate(a.date[:0], e.opts.Now())
	a.query = append(append(a.query[:0], "uploadId="...), a.uploadID...)
	a.hs = [3]s3sig.Header{
		{Name: []byte("host"), Value: b.hostHeader},
		{Name: []byte("x-amz-date"), Value: a.date},
		{Name: []byte("x-amz-content-sha256"), Value: []byte(s3sig.EmptySHA256)},
	}
	sreq := s3sig.Request{Method: []byte("DELETE"), Path: a.path, Query: a.query, Headers: a.hs[:],
		PayloadHash: []byte(s3sig.EmptySHA256)}
	signer := e.getSigner()
	var err error
	a.auth, err = signer.Sign(a.auth[:0], &sreq, b.cred, a.date, b.up.Region, "s3")
	e.signers.Put(signer)
	if err != nil {
		return err
	}
	h := append(a.head[:0], "DELETE "...)
	h = append(h, a.path...)
	h = append(h, '?')
	h = append(h, a.query...)
	h = append(h, " HTTP/1.1\r\n"...)
	for _, x := range a.hs {
		h = append(h, x.Name...)
		h = append(h, ": "...)
		h = append(h, x.Value...)
		h = append(h, "\r\n"...)
	}
	h = append(h, "Content-Length: 0\r\nAuthorization: "...)
	h = append(h, a.auth...)
	a.head = append(h, "\r\n\r\n"...)
	return nil
}

// retrier runs background attempts on a schedule. Its clock, wait and jitter are injected (tests).
type retrier struct {
	first, max time.Duration // first delay; cap of the doubling
	retryFor   time.Duration // no attempt starts later than this after run began
	now        func() time.Time
	// wait waits d, or less when stop closes first; it reports whether d passed.
	wait   func(d time.Duration, stop <-chan struct{}) bool
	jitter func(d time.Duration) time.Duration
}

// run calls attempt after each delay (first, doubling up to max, each jittered) until attempt
// reports done or final, or retryFor has passed since run began: the last delay is cut short so
// that one attempt happens exactly at the end of retryFor. When stop closes, run makes one last
// attempt at once and returns with stopped set. tries counts the attempts run made.
func (r *retrier) run(stop <-chan struct{}, attempt func() abortOutcome) (out abortOutcome, tries int, stopped bool) {
	end := r.now().Add(r.retryFor)
	d := r.first
	out = abortRetry
	for {
		left := end.Sub(r.now())
		if left <= 0 {
			return out, tries, false
		}
		delay := min(r.jitter(d), left)
		if !r.wait(delay, stop) {
			tries++
			return attempt(), tries, true
		}
		tries++
		if out = attempt(); out != abortRetry {
			return out, tries, false
		}
		d = min(2*d, r.max)
	}
}

// halfJitter picks a delay uniformly in [d/2, d].
func halfJitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// waitOrStop waits d unless stop closes first.
func waitOrStop(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// aborter tracks an engine's background retriers so that shutdown can cut them short. Its fields
// are guarded by abortersMu.
type aborter struct {
	stop    chan struct{} // closed when the engine drains: one last attempt each, then give up
	stopped bool
	pending int           // retriers running
	empty   chan struct{} // closed when the last retrier ends (the entry is deleted then)
}

// abortersMu guards every Engine's aborter field (Engine.aborts): set while a retrier runs.
var abortersMu sync.Mutex

// aborter registers one more background retrier of e; the caller calls abortDone when it ends. While
// the engine drains, the retrier's stop is already closed (it makes its one last attempt at once).
func (e *Engine) aborter() *aborter {
	abortersMu.Lock()
	defer abortersMu.Unlock()
	a := e.aborts
	if a == nil {
		a = &aborter{stop: make(chan struct{}), empty: make(chan struct{})}
		e.aborts = a
	}
	if e.draining.Load() {
		a.stopLocked()
	}
	a.pending++
	return a
}

func (e *Engine) abortDone(a *aborter) {
	abortersMu.Lock()
	defer abortersMu.Unlock()
	a.pending--
	if a.pending == 0 {
		close(a.empty)
		if e.aborts == a {
			e.aborts = nil
		}
	}
}

func (a *aborter) stopLocked() {
	if !a.stopped {
		a.stopped = true
		close(a.stop)
	}
}

// stopAborts makes every background retrier of e make its last attempt now and give up; it does
// not wait. Retriers started later (while the engine drains) make one attempt at once. Safe for
// concurrent use.
func (e *Engine) stopAborts() *aborter {
	abortersMu.Lock()
	defer abortersMu.Unlock()
	a := e.aborts
	if a != nil {
		a.stopLocked()
	}
	return a
}

// finishAborts stops e's background retriers (stopAborts) and waits until each made its last
// attempt, or ctx ends. Call it from Engine.Shutdown once requests in flight ended (until then
// they may hand aborts over; one handed over later still makes its one attempt, unwaited).
func (e *Engine) finishAborts(ctx context.Context) error {
	a := e.stopAborts()
	if a == nil {
		return nil
	}
	select {
	case <-a.empty:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("engine: background aborts still running: %w", ctx.Err())
	}
}
