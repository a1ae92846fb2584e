package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// abortCounters are the abort series, read as deltas from a baseline.
type abortCounters struct{ retries, aborted, failures, pending float64 }

func readAbortCounters() abortCounters {
	g := func(n string) float64 { return float64(metrics.GetOrCreateCounter(n).Get()) }
	return abortCounters{
		retries:  g(`mizuchi_multipart_abort_retries_total`),
		aborted:  g(`mizuchi_multipart_uploads_aborted_total`),
		failures: g(`mizuchi_multipart_abort_failures_total`),
		pending:  metrics.GetOrCreateGauge(`mizuchi_multipart_abort_retries_pending`, nil).Get(),
	}
}

func (c abortCounters) minus(b abortCounters) abortCounters {
	return abortCounters{c.retries - b.retries, c.aborted - b.aborted, c.failures - b.failures, c.pending - b.pending}
}

// abortBed is a private versitygw (it is stopped and restarted), an upload begun on it, and an
// engine in front of it.
type abortBed struct {
	srv    *s3test.Server
	e      *engine.Engine
	logs   *syncBuf
	bucket string // client-facing
	up     string // upstream bucket
	addr   string // the proxy's
}

func startAbortBed(t *testing.T, retryFor, backoff time.Duration, opts ...proxyOpt) *abortBed {
	t.Helper()
	ab := &abortBed{srv: s3test.Start(t), logs: &syncBuf{}, bucket: "client-orphans", up: "orphans"}
	ab.srv.CreateBucket(t, ab.up)
	o := engine.Options{
		Address:    fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
		EventLoops: 2,
		Logger:     slog.New(slog.NewJSONHandler(ab.logs, nil)),
		Upstream:   engine.UpstreamOptions{AbortRetryFor: retryFor, AbortRetryBackoff: backoff},
		Buckets: []engine.Bucket{{
			Name: ab.bucket,
			Upstream: engine.Upstream{Endpoint: ab.srv.Endpoint, Bucket: ab.up, Region: ab.srv.Region,
				AccessKey: ab.srv.AccessKey, SecretKey: ab.srv.SecretKey},
			Credentials: map[string]string{clientAK: clientSK},
		}},
	}
	for _, f := range opts {
		f(&o)
	}
	ab.e = runEngine(t, o)
	ab.addr = o.Address
	return ab
}

// begin starts a multipart upload of key directly on the upstream and returns its id.
func (ab *abortBed) begin(t *testing.T, key string) string {
	t.Helper()
	out, err := ab.srv.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{
		Bucket: aws.String(ab.up), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.UploadId)
}

func (ab *abortBed) uploads(t *testing.T) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, u := range ab.srv.ListMultipartUploads(t, ab.up) {
		m[aws.ToString(u.UploadId)] = true
	}
	return m
}

// abortSync runs the synchronous part of an abort and checks that it returned promptly although
// the upstream refuses connections.
func (ab *abortBed) abortSync(t *testing.T, key, id string, reqID [16]byte) {
	t.Helper()
	start := time.Now()
	ab.e.AbortUploadRetrying(ab.bucket, key, id, reqID)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the synchronous attempt took %v with the upstream down", d)
	}
}

func waitCounters(t *testing.T, base abortCounters, d time.Duration, what string, cond func(c abortCounters) bool) abortCounters {
	t.Helper()
	var c abortCounters
	ok, _ := waitUntil(d, func() (bool, string) {
		c = readAbortCounters().minus(base)
		return cond(c), ""
	})
	if !ok {
		t.Fatalf("%s: counters %+v", what, c)
	}
	return c
}

// An upload whose abort fails while the upstream is down is aborted by the background retrier once
// the upstream is back, within the retry window.
func TestAbortRetriesUntilUpstreamBack(t *testing.T) {
	ab := startAbortBed(t, time.Minute, 50*time.Millisecond)
	const key = "dir/a key+with%odd chars"
	id := ab.begin(t, key)
	// An upload nobody aborts shows that the restart keeps uploads: the retrier counts a 404 as done,
	// so only then does "gone" mean it aborted this one. (Listing id itself after the restart raced
	// the retrier, which may abort it as soon as the upstream listens.)
	control := ab.begin(t, "control")
	base := readAbortCounters()

	ab.srv.Stop()
	ab.abortSync(t, key, id, [16]byte([]byte("ABORTRETRY000001")))
	waitCounters(t, base, 10*time.Second, "retrying while the upstream is down", func(c abortCounters) bool {
		return c.retries >= 2 && c.pending == 1
	})
	if c := readAbortCounters().minus(base); c.aborted != 0 || c.failures != 0 {
		t.Fatalf("with the upstream down: %+v", c)
	}

	ab.srv.Restart(t)
	if !ab.uploads(t)[control] {
		t.Fatalf("the restart lost upload %s: an abort of %s would prove nothing", control, id)
	}
	ok, msg := waitUntil(15*time.Second, func() (bool, string) {
		ups := ab.uploads(t)
		return !ups[id] && ups[control], fmt.Sprintf("uploads: %v; want only %s", ups, control)
	})
	if !ok {
		t.Fatal(msg)
	}
	c := waitCounters(t, base, 5*time.Second, "after the abort", func(c abortCounters) bool { return c.pending == 0 })
	if c.aborted != 1 || c.failures != 0 {
		t.Errorf("counters %+v; want one abort, no failure", c)
	}
	if s := ab.logs.String(); strings.Contains(s, "could not abort") {
		t.Errorf("gave up although the abort succeeded:\n%s", s)
	}
}

// warnLines returns the JSON log lines whose message says an upload was left behind.
func warnLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := m["msg"].(string); strings.Contains(msg, "could not abort") {
			out = append(out, m)
		}
	}
	return out
}

// noSecrets fails when a log holds the upstream credentials or a signature.
func noSecrets(t *testing.T, logs string, srv *s3test.Server) {
	t.Helper()
	for _, s := range []string{srv.SecretKey, srv.AccessKey, "Signature", "AWS4-HMAC-SHA256", "Authorization"} {
		if strings.Contains(logs, s) {
			t.Errorf("log contains %q:\n%s", s, logs)
		}
	}
}

// Past the retry window the retrier gives up: a final failure counted and one warn line that
// names what an operator needs to abort by hand, and nothing secret.
func TestAbortGivesUpAfterRetryWindow(t *testing.T) {
	ab := startAbortBed(t, 400*time.Millisecond, 50*time.Millisecond)
	const key = "give/up"
	id := ab.begin(t, key)
	base := readAbortCounters()
	ab.srv.Stop()
	ab.abortSync(t, key, id, [16]byte([]byte("ABORTGIVEUP00001")))
	c := waitCounters(t, base, 10*time.Second, "giving up", func(c abortCounters) bool {
		return c.failures == 1 && c.pending == 0
	})
	if c.retries < 1 || c.aborted != 0 {
		t.Errorf("counters %+v; want retries and no abort", c)
	}
	logs := ab.logs.String()
	lines := warnLines(t, logs)
	if len(lines) != 1 {
		t.Fatalf("%d give-up lines; want 1:\n%s", len(lines), logs)
	}
	for k, want := range map[string]any{"level": "WARN", "request_id": "ABORTGIVEUP00001", "bucket": ab.bucket,
		"upstream_bucket": ab.up, "key": key, "upload_id": id, "reason": "retry time exhausted"} {
		if got := lines[0][k]; got != want {
			t.Errorf("log %s = %v; want %v", k, got, want)
		}
	}
	noSecrets(t, logs, ab.srv)
}

// Finishing the engine's aborts (what Shutdown does) makes a waiting retrier try once more at
// once instead of after its backoff, and then give up if that fails too.
func TestAbortLastAttemptOnShutdown(t *testing.T) {
	ab := startAbortBed(t, 10*time.Minute, time.Minute)
	id1, id2 := ab.begin(t, "last/1"), ab.begin(t, "last/2")
	base := readAbortCounters()

	// The upstream is back when the engine stops: the last attempt aborts the upload.
	ab.srv.Stop()
	ab.abortSync(t, "last/1", id1, [16]byte([]byte("ABORTLAST0000001")))
	waitCounters(t, base, 10*time.Second, "handed to the retrier", func(c abortCounters) bool { return c.pending == 1 })
	ab.srv.Restart(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ab.e.FinishAborts(ctx); err != nil {
		t.Fatalf("FinishAborts: %v", err)
	}
	if ab.uploads(t)[id1] {
		t.Errorf("upload 1 still there after the last attempt")
	}
	if c := readAbortCounters().minus(base); c.aborted != 1 || c.pending != 0 || c.failures != 0 {
		t.Errorf("after the last attempt: counters %+v; want one abort", c)
	}

	// The upstream is still down: the last attempt fails and the retrier gives up, saying why.
	base = readAbortCounters()
	ab.srv.Stop()
	ab.abortSync(t, "last/2", id2, [16]byte([]byte("ABORTLAST0000002")))
	waitCounters(t, base, 10*time.Second, "handed to the retrier", func(c abortCounters) bool { return c.pending == 1 })
	if err := ab.e.FinishAborts(ctx); err != nil {
		t.Fatalf("FinishAborts: %v", err)
	}
	if c := readAbortCounters().minus(base); c.failures != 1 || c.pending != 0 || c.retries != 1 {
		t.Errorf("after the failed last attempt: counters %+v; want one retry, one failure", c)
	}
	lines := warnLines(t, ab.logs.String())
	if len(lines) != 1 || lines[0]["reason"] != "engine shutting down" || lines[0]["upload_id"] != id2 {
		t.Errorf("give-up lines %v; want one for upload 2, reason engine shutting down", lines)
	}
	noSecrets(t, ab.logs.String(), ab.srv)
	ab.srv.Restart(t)
	if !ab.uploads(t)[id2] {
		t.Errorf("upload 2 vanished; the test expected it left behind")
	}
}
