package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// -check places tracing problems on their lines: a bad endpoint, a ratio outside 0..1 and a
// negative queue size, whether tracing is enabled or not.
func TestCheckTracing(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	writeFile(t, path, `tracing:
  enabled: false
  endpoint: "127.0.0.1:4318"
  sample_ratio: 1.5
  queue_size: -1
buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
`)
	_, err := parseFlags(t, "-config", path).Config(env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		path + `:3: tracing.endpoint "127.0.0.1:4318": want an http:// or https:// URL`,
		path + `:4: tracing.sample_ratio 1.5: want 0..1`,
		path + `:5: tracing.queue_size -1: must be >= 0`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("no problem reads %q:\n%v", w, err)
		}
	}
}

// Flags override the file's tracing keys; the defaults fill the rest.
func TestTracingFlags(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	writeFile(t, path, `tracing: {enabled: false, sample_ratio: 0.1, headers: {Authorization: "Bearer ${TOK}"}}
buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
`)
	c, err := parseFlags(t, "-config", path, "-tracing", "-tracing-endpoint", "http://collector:4318",
		"-tracing-record-keys").Config(env(map[string]string{"TOK": "secret-token"}))
	if err != nil {
		t.Fatal(err)
	}
	tc := c.Tracing
	if !tc.Enabled || tc.Endpoint != "http://collector:4318" || tc.SampleRatio != 0.1 || !tc.RecordKeys ||
		tc.ServiceName != DefaultTracingService || tc.QueueSize != DefaultTracingQueue || tc.Headers["Authorization"] != "Bearer secret-token" {
		t.Errorf("tracing config %+v", tc)
	}
}

// Run exports the spans still queued when it returns (after the drain), instead of leaving them to
// the next batch tick: a request answered just before the stop is in the collector once Run returned.
func TestRunFlushesSpansOnExit(t *testing.T) {
	var mu sync.Mutex
	var got []string
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer col.Close()
	up := s3test.Start(t)
	up.CreateBucket(t, "flushed")
	addr := "127.0.0.1:" + strconv.Itoa(s3test.FreePort(t))
	cfg := &Config{
		Server:  ServerConfig{Address: addr, DrainTimeout: Duration(time.Second)},
		Metrics: MetricsConfig{Enabled: boolPtr(false)},
		Tracing: TracingConfig{Enabled: true, Endpoint: col.URL, SampleRatio: 1},
		Buckets: []BucketConfig{{Name: "flushed", S3: S3Config{Bucket: "flushed", Endpoint: up.Endpoint, AccessKey: up.AccessKey, SecretKey: up.SecretKey},
			Auth: AuthConfig{None: true}}},
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	(&authzProxy{srv: srv}).waitReady(t, true)
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/flushed/k", strings.NewReader("abc"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	all := strings.Join(got, "")
	if !strings.Contains(all, `"name":"PutObject"`) || !strings.Contains(all, `"name":"upstream PutObject"`) {
		t.Errorf("the collector has %d exports without the request's spans: %.400s", len(got), all)
	}
}

// A collector that cannot be reached costs counted drops and one log line, not a line per batch.
func TestTracingExportFailureLogged(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	tr, et, err := newTracer(TracingConfig{Enabled: true, Endpoint: "http://127.0.0.1:1/v1/traces", SampleRatio: 1,
		Timeout: Duration(50 * time.Millisecond), QueueSize: 16}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdownTracer(tr)
	errs0, dropped0 := tracingExportErrors.Get(), tracingDropped.Get()
	for range 2 {
		et.StartRequest("PutObject", nil, nil, time.Now()).End(time.Time{})
		if err := tr.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if tracingExportErrors.Get()-errs0 != 2 || tracingDropped.Get()-dropped0 != 2 {
		t.Errorf("export errors +%d, dropped +%d; want 2, 2", tracingExportErrors.Get()-errs0, tracingDropped.Get()-dropped0)
	}
	if n := strings.Count(buf.String(), "level=WARN"); n != 1 {
		t.Errorf("%d log lines; want 1:\n%s", n, buf.String())
	}
}
