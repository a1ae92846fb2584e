package tracing

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseTraceparent(t *testing.T) {
	for _, c := range []struct {
		in      string
		ok      bool
		sampled bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", true, true}, // unknown flags ignored
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false, false}, // version 00 is 55 bytes
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, false}, // lower case only
		{"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", false, false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", false, false},
		{"", false, false},
	} {
		sc, ok := parseTraceparent([]byte(c.in))
		if ok != c.ok || ok && sc.IsSampled() != c.sampled {
			t.Errorf("%q: ok %v sampled %v; want %v %v", c.in, ok, sc.IsSampled(), c.ok, c.sampled)
		}
		if ok && (sc.TraceID().String() != c.in[3:35] || sc.SpanID().String() != c.in[36:52] || !sc.IsRemote()) {
			t.Errorf("%q: parsed %v", c.in, sc)
		}
	}
}

// collector is a fake OTLP/HTTP endpoint counting export requests (protobuf bodies).
type collector struct {
	srv      *httptest.Server
	requests atomic.Int64
	bytes    atomic.Int64
	status   atomic.Int64 // answer; 0 = 200
	mu       sync.Mutex
	headers  http.Header
	gate     atomic.Pointer[chan struct{}] // when set, answers wait until it is closed
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if g := c.gate.Load(); g != nil {
			<-*g
		}
		c.mu.Lock()
		c.headers = r.Header.Clone()
		c.mu.Unlock()
		if r.URL.Path != "/v1/traces" || r.Method != "POST" {
			http.Error(w, "no", 404)
			return
		}
		if s := c.status.Load(); s != 0 {
			http.Error(w, "failing", int(s))
			return
		}
		c.requests.Add(1)
		c.bytes.Add(int64(len(b)))
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func newTracer(t *testing.T, c Config) *Tracer {
	t.Helper()
	tr, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

// Sampling is ParentBased(TraceIDRatio): a sampled parent is recorded at ratio 0, an unsampled
// one never (even at ratio 1), a root by the ratio.
func TestSampling(t *testing.T) {
	col := newCollector(t)
	sampled := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	unsampled := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	off := newTracer(t, Config{Endpoint: col.srv.URL, SampleRatio: 0})
	all := newTracer(t, Config{Endpoint: col.srv.URL, SampleRatio: 1})
	half := newTracer(t, Config{Endpoint: col.srv.URL, SampleRatio: 0.5})
	now := time.Now()
	if off.Start("r", nil, nil, now) != nil || all.Start("r", unsampled, nil, now) != nil {
		t.Error("recorded a root at ratio 0, or an unsampled parent at ratio 1")
	}
	s := off.Start("r", sampled, []byte("a=1,b=2"), now)
	if s == nil || s.TraceID() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("sampled parent at ratio 0: %v", s)
	}
	if tp := string(s.AppendTraceparent(nil)); len(tp) != 55 || tp[3:35] != "4bf92f3577b34da6a3ce929d0e0e4736" ||
		tp[36:52] == "00f067aa0ba902b7" || tp[53:] != "01" {
		t.Errorf("traceparent %q", tp)
	}
	if ts := string(s.AppendTracestate(nil)); ts != "a=1,b=2" {
		t.Errorf("tracestate %q", ts)
	}
	if all.Start("r", nil, nil, now) == nil {
		t.Error("ratio 1 did not record a root")
	}
	n := 0
	for range 2000 {
		if half.Start("r", nil, nil, now) != nil {
			n++
		}
	}
	if n < 850 || n > 1150 {
		t.Errorf("ratio 0.5 recorded %d of 2000 roots", n)
	}
}

// A request that is not recorded allocates nothing in Start.
func TestStartNotRecordedAllocs(t *testing.T) {
	col := newCollector(t)
	tr := newTracer(t, Config{Endpoint: col.srv.URL, SampleRatio: 0})
	unsampled := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() {
		_ = tr.Start("PutObject", unsampled, nil, now)
		_ = tr.Start("PutObject", nil, nil, now)
	}); n != 0 {
		t.Errorf("%v allocs; want 0", n)
	}
}

// Spans are exported in batches to the endpoint (with the configured headers), counted; Shutdown
// flushes what is queued; a failing endpoint counts errors and dropped spans; a full queue drops.
func TestExport(t *testing.T) {
	col := newCollector(t)
	var exported, dropped, errs atomic.Int64
	c := Config{Endpoint: col.srv.URL, SampleRatio: 1, Headers: map[string]string{"X-Key": "k1"},
		BatchInterval: time.Hour, BatchSize: 4, Timeout: 200 * time.Millisecond, QueueSize: 8,
		OnExported: func(n int) { exported.Add(int64(n)) }, OnDropped: func(n int) { dropped.Add(int64(n)) },
		OnExportError: func(error) { errs.Add(1) }}
	tr, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s := tr.Start("r", nil, nil, time.Now())
		s.Child("c", time.Time{}, true).End(time.Time{})
		s.End(time.Time{})
	}
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if exported.Load() != 6 || col.requests.Load() == 0 || dropped.Load() != 0 {
		t.Errorf("exported %d in %d requests, dropped %d; want 6, >0, 0", exported.Load(), col.requests.Load(), dropped.Load())
	}
	col.mu.Lock()
	if col.headers.Get("X-Key") != "k1" {
		t.Errorf("headers %v", col.headers)
	}
	col.mu.Unlock()
	col.status.Store(400) // not retried by the exporter
	s := tr.Start("r", nil, nil, time.Now())
	s.End(time.Time{})
	_ = tr.ForceFlush(context.Background())
	if errs.Load() != 1 || dropped.Load() != 1 {
		t.Errorf("failing endpoint: %d errors, %d dropped; want 1, 1", errs.Load(), dropped.Load())
	}
	col.status.Store(0)
	// The collector hangs: the exporter goroutine holds at most one batch (4) in a stalled export
	// and the queue 8, so of 20 spans ended at once at least 8 are dropped.
	gate := make(chan struct{})
	col.gate.Store(&gate)
	for range 20 {
		tr.Start("r", nil, nil, time.Now()).End(time.Time{})
	}
	close(gate)
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exported.Load() + dropped.Load(); got != 6+1+20 {
		t.Errorf("exported %d + dropped %d = %d; want every span counted once (27)", exported.Load(), dropped.Load(), got)
	}
	if dropped.Load() < 1+8 {
		t.Errorf("dropped %d; a full queue must drop", dropped.Load())
	}
	tr.Start("r", nil, nil, time.Now()).End(time.Time{}) // after Shutdown: dropped, no panic
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Endpoint: "127.0.0.1:4318"}, {Endpoint: "ftp://x/"}, {Endpoint: "http://"},
		{Endpoint: "http://x", SampleRatio: 1.5}, {Endpoint: "http://x", SampleRatio: -1}, {Endpoint: "http://x", Timeout: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	c := Config{Endpoint: "https://otlp.example.com"}
	if err := c.Validate(); err != nil || c.endpointURL() != "https://otlp.example.com/v1/traces" {
		t.Errorf("%v %s", err, c.endpointURL())
	}
	if c := (Config{Endpoint: "http://x:4318/custom"}); !strings.HasSuffix(c.endpointURL(), "/custom") {
		t.Errorf("a path is kept: %s", c.endpointURL())
	}
}

// The export is an OTLP/HTTP JSON ExportTraceServiceRequest: hex ids, the parent, kinds, typed
// attributes (int64 as strings), an error status, the resource's service.name.
func TestExportJSON(t *testing.T) {
	var mu sync.Mutex
	var body []byte
	var ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		body, ctype = b, r.Header.Get("Content-Type")
		mu.Unlock()
	}))
	defer srv.Close()
	tr := newTracer(t, Config{Endpoint: srv.URL, ServiceName: "svc", ServiceVersion: "v9"})
	parent := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	s := tr.Start("PutObject", parent, []byte("k=v"), time.Unix(100, 5))
	s.SetString("a.s", "x")
	s.SetInt("a.i", 42)
	s.SetString("a.odd", "q\"b\\n\nü\x01")
	c := s.Child("upstream PutObject", time.Time{}, true)
	c.SetError("HTTP 502")
	c.End(time.Time{})
	s.End(time.Unix(101, 0))
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if ctype != "application/json" {
		t.Errorf("Content-Type %q", ctype)
	}
	var req otlpRequest
	if err := json.Unmarshal(body, &req); err != nil || len(req.ResourceSpans) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	rs := req.ResourceSpans[0]
	attrs := func(kvs []otlpKeyValue) map[string]string {
		m := map[string]string{}
		for _, kv := range kvs {
			switch v := kv.Value; {
			case v.String != nil:
				m[kv.Key] = *v.String
			case v.Int != nil:
				m[kv.Key] = "int:" + *v.Int
			}
		}
		return m
	}
	if ra := attrs(rs.Resource.Attributes); ra["service.name"] != "svc" || ra["service.version"] != "v9" {
		t.Errorf("resource %v", ra)
	}
	spans := map[string]otlpSpan{}
	for _, ss := range rs.ScopeSpans {
		for _, sp := range ss.Spans {
			spans[sp.Name] = sp
		}
	}
	req0, up := spans["PutObject"], spans["upstream PutObject"]
	if req0.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || req0.ParentSpanID != "00f067aa0ba902b7" || req0.Kind != 2 ||
		req0.TraceState != "k=v" || req0.Start != "100000000005" || req0.End != "101000000000" || req0.Status.Code != 0 {
		t.Errorf("request span %+v", req0)
	}
	if a := attrs(req0.Attributes); a["a.s"] != "x" || a["a.i"] != "int:42" || a["a.odd"] != "q\"b\\n\nü\x01" {
		t.Errorf("attributes %v", a)
	}
	if up.ParentSpanID != req0.SpanID || up.Kind != 3 || up.Status.Code != 2 || up.Status.Message != "HTTP 502" || len(up.SpanID) != 16 {
		t.Errorf("upstream span %+v (request %s)", up, req0.SpanID)
	}
}

// Retryable answers (503) are retried within 3×Timeout; the export then succeeds.
func TestExportRetries(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	var exported, errs atomic.Int64
	tr := newTracer(t, Config{Endpoint: srv.URL, SampleRatio: 1, Timeout: 300 * time.Millisecond,
		OnExported: func(k int) { exported.Add(int64(k)) }, OnExportError: func(error) { errs.Add(1) }})
	tr.Start("r", nil, nil, time.Now()).End(time.Time{})
	if err := tr.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 3 || exported.Load() != 1 || errs.Load() != 0 {
		t.Errorf("%d requests, %d exported, %d errors; want 3, 1, 0", n.Load(), exported.Load(), errs.Load())
	}
}
