package engine_test

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// abortSpans waits for the ended "abort multipart upload" span and returns it with its attempts.
func abortSpans(t *testing.T, tr *recTracer) (*recSpan, []*recSpan) {
	t.Helper()
	var spans map[string][]*recSpan
	ok, _ := waitUntil(15*time.Second, func() (bool, string) {
		spans = tr.ended()
		return len(spans["abort multipart upload"]) == 1, ""
	})
	if !ok {
		t.Fatalf("no abort span ended: %v", spans)
	}
	return spans["abort multipart upload"][0], spans["upstream AbortMultipartUpload"]
}

// checkAbortSpan checks the abort span's parentage, outcome and attempts (each a child, the
// last with status last).
func checkAbortSpan(t *testing.T, req, a *recSpan, tries []*recSpan, outcome string, last int64) {
	t.Helper()
	n, _ := a.attrs["mizuchi.abort.attempts"].(int64)
	if a.parent != req.id || a.attrs["mizuchi.abort.outcome"] != outcome || n < 1 || int(n) != len(tries) {
		t.Fatalf("abort span %+v (request %s), %d attempt spans", a, req.id, len(tries))
	}
	for i, s := range tries {
		if s.parent != a.id {
			t.Errorf("attempt %d's parent %s; want the abort span %s", i, s.parent, a.id)
		}
	}
	if got := tries[len(tries)-1].attrs["http.response.status_code"]; last != 0 && got != last {
		t.Errorf("last attempt status %v; want %d", got, last)
	}
}

// TestTraceAbort: the abort of a traced request's upload has a span, a child of the request's,
// that ends with the outcome after the background retries (past the request span's end); each
// attempt is an upstream span named in its request's traceparent.
func TestTraceAbort(t *testing.T) {
	t.Run("at once", func(t *testing.T) {
		up := startHeadUpstream(t)
		tr := &recTracer{}
		e := runEngine(t, engine.Options{
			Address: fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)), EventLoops: 1, Logger: slog.New(slog.DiscardHandler),
			Buckets: []engine.Bucket{{Name: "open", AuthNone: true,
				Upstream: engine.Upstream{Endpoint: "http://" + up.l.Addr().String(), Bucket: "up", Region: "us-east-1", AccessKey: "ak", SecretKey: "sk"}}},
		})
		req := tr.StartRequest("PutObject", nil, nil, time.Now()).(*recSpan)
		e.AbortUploadRetryingTraced("open", "k", "id-1", [16]byte{}, req)
		req.End(time.Time{})
		a, tries := abortSpans(t, tr)
		checkAbortSpan(t, req, a, tries, "aborted", 200)
		if a.attrs["aws.s3.upload_id"] != "id-1" || a.err != "" || tries[0].err != "" {
			t.Errorf("abort span %+v, attempt %+v", a, tries[0])
		}
		if got, want := up.last(t).Get("Traceparent"), "00-"+a.trace+"-"+tries[0].id+"-01"; got != want {
			t.Errorf("the abort request's traceparent %q; want %q (the attempt's span)", got, want)
		}
	})
	t.Run("retried", func(t *testing.T) {
		ab := startAbortBed(t, time.Minute, 50*time.Millisecond)
		id := ab.begin(t, "traced/retry")
		tr := &recTracer{}
		req := tr.StartRequest("PutObject", nil, nil, time.Now()).(*recSpan)
		ab.srv.Stop()
		ab.e.AbortUploadRetryingTraced(ab.bucket, "traced/retry", id, [16]byte{}, req)
		req.End(time.Time{})
		time.Sleep(200 * time.Millisecond)
		ab.srv.Restart(t)
		a, tries := abortSpans(t, tr)
		checkAbortSpan(t, req, a, tries, "aborted", 204)
		if len(tries) < 2 || tries[0].err == "" || a.err != "" || ab.uploads(t)[id] {
			t.Errorf("abort span %+v; first attempt %+v; %d attempts", a, tries[0], len(tries))
		}
	})
	t.Run("gave up", func(t *testing.T) {
		ab := startAbortBed(t, 300*time.Millisecond, 50*time.Millisecond)
		id := ab.begin(t, "traced/giveup")
		tr := &recTracer{}
		req := tr.StartRequest("PutObject", nil, nil, time.Now()).(*recSpan)
		ab.srv.Stop()
		ab.e.AbortUploadRetryingTraced(ab.bucket, "traced/giveup", id, [16]byte{}, req)
		req.End(time.Time{})
		a, tries := abortSpans(t, tr)
		checkAbortSpan(t, req, a, tries, "gave_up", 0)
		if a.err != "retry time exhausted" || tries[len(tries)-1].err == "" {
			t.Errorf("abort span %+v; last attempt %+v", a, tries[len(tries)-1])
		}
	})
}
