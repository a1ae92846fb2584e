//go:build !race

package engine

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTracer records spans in memory: a parent's traceparent is kept as given, span ids count up.
type fakeTracer struct {
	roots bool // SamplesRoots
	skip  bool // StartRequest returns nil (not recorded)
	asked atomic.Int64

	mu    sync.Mutex
	next  int
	spans []*fakeSpan
}

type fakeSpan struct {
	t       *fakeTracer
	name    string
	id      string // 16 hex digits
	parent  string // parent span id; the client's when remote
	traceID string
	client  bool
	attrs   map[string]any
	err     string
	ended   bool
}

func (t *fakeTracer) SamplesRoots() bool { return t.roots }

func (t *fakeTracer) StartRequest(name string, tp, ts []byte, start time.Time) Span {
	t.asked.Add(1)
	if t.skip {
		return nil
	}
	trace, parent := "0123456789abcdef0123456789abcdef", ""
	if len(tp) == 55 {
		trace, parent = string(tp[3:35]), string(tp[36:52])
	}
	return t.newSpan(name, trace, parent, false)
}

func (t *fakeTracer) newSpan(name, trace, parent string, client bool) *fakeSpan {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	s := &fakeSpan{t: t, name: name, id: fmt.Sprintf("%016x", t.next), parent: parent, traceID: trace,
		client: client, attrs: map[string]any{}}
	t.spans = append(t.spans, s)
	return s
}

func (t *fakeTracer) ended() []*fakeSpan {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*fakeSpan
	for _, s := range t.spans {
		if s.ended {
			out = append(out, s)
		}
	}
	return out
}

func (s *fakeSpan) Child(name string, _ time.Time, client bool) Span {
	return s.t.newSpan(name, s.traceID, s.id, client)
}
func (s *fakeSpan) SetString(k, v string) { s.t.mu.Lock(); s.attrs[k] = v; s.t.mu.Unlock() }
func (s *fakeSpan) SetInt(k string, v int64) {
	s.t.mu.Lock()
	s.attrs[k] = v
	s.t.mu.Unlock()
}
func (s *fakeSpan) SetError(d string) { s.t.mu.Lock(); s.err = d; s.t.mu.Unlock() }
func (s *fakeSpan) End(time.Time)     { s.t.mu.Lock(); s.ended = true; s.t.mu.Unlock() }
func (s *fakeSpan) AppendTraceparent(dst []byte) []byte {
	return append(dst, "00-"+s.traceID+"-"+s.id+"-01"...)
}
func (s *fakeSpan) AppendTracestate(dst []byte) []byte { return append(dst, "vendor=1"...) }

func (s *fakeSpan) String() string { return s.name + "/" + s.id + "<" + s.parent }

// TestTraceInlineLoop: a recorded in-loop PutObject gets a request span (named after the
// operation, with its attributes), an authenticate child and an upstream child; the upstream
// request names the upstream span in an unsigned traceparent and carries the tracestate.
func TestTraceInlineLoop(t *testing.T) {
	p := newLoopPut(t, 1024)
	tr := &fakeTracer{roots: true}
	p.e.opts.Tracer = tr
	p.run(t)
	spans := tr.ended()
	byName := map[string]*fakeSpan{}
	for _, s := range spans {
		byName[s.name] = s
	}
	req, auth, up := byName["PutObject"], byName["authenticate"], byName["upstream PutObject"]
	if req == nil || auth == nil || up == nil || len(spans) != 3 {
		t.Fatalf("spans %v; want PutObject, authenticate, upstream PutObject", spans)
	}
	if auth.parent != req.id || up.parent != req.id || !up.client {
		t.Errorf("parentage: %v", spans)
	}
	want := map[string]any{attrOperation: "PutObject", attrBucket: "sig", attrPath: "inline", attrStatus: int64(200),
		attrBodyBytes: int64(1024), attrPrincipal: admitAK, attrAuthMethod: "sigv4", attrClient: "192.0.2.1", attrClientPort: int64(40000),
		attrUpStatus: int64(200), attrMethod: "PUT", attrUpReqID: "0123456789ABCDEF0123"}
	for k, v := range want {
		if req.attrs[k] != v {
			t.Errorf("request span %s = %v; want %v", k, req.attrs[k], v)
		}
	}
	if id, _ := req.attrs[attrRequestID].(string); len(id) != 16 {
		t.Errorf("request id attribute %q", id)
	}
	if _, ok := req.attrs[attrKey]; ok {
		t.Errorf("the key is recorded without TraceKeys")
	}
	if req.err != "" || up.err != "" {
		t.Errorf("errors: request %q upstream %q", req.err, up.err)
	}
	head := string(p.upc.out[:bytes.Index(p.upc.out, []byte("\r\n\r\n"))])
	wantTP := "\r\ntraceparent: 00-" + req.traceID + "-" + up.id + "-01\r\n"
	if !strings.Contains(head, wantTP) || !strings.Contains(head, "\r\ntracestate: vendor=1\r\n") {
		t.Errorf("upstream head lacks %q and the tracestate:\n%s", wantTP, head)
	}
	i := strings.Index(head, "SignedHeaders=")
	signed := head[i : i+strings.IndexAny(head[i:], ",\r")]
	if strings.Contains(signed, "trace") {
		t.Errorf("the proxy signed a trace header: %s", signed)
	}
}

// TestTraceReplacesClientTraceparent: on a bucket with auth: none every end-to-end header goes
// upstream, but a recorded request's traceparent is the proxy's, once; with TraceKeys the key is an
// attribute, and the span's trace is the client's.
func TestTraceReplacesClientTraceparent(t *testing.T) {
	p := newLoopPut(t, 1)
	const clientTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	p.client.in = []byte("PUT /open/a%20b.txt HTTP/1.1\r\nHost: proxy\r\ntraceparent: " + clientTP +
		"\r\ntracestate: client=1\r\nContent-Length: 1\r\n\r\nx")
	p.u.pool = p.e.lookupBucket([]byte("open")).pool
	p.st.loop.idle = map[*upstreamPool][]*loopUp{p.u.pool: {p.u}}
	tr := &fakeTracer{}
	p.e.opts.Tracer, p.e.opts.TraceKeys = tr, true
	p.client.reset()
	p.upc.reset()
	p.e.process(p.client, p.st)
	p.e.onUpstreamTraffic(p.upc, p.u)
	spans := tr.ended()
	var req, up *fakeSpan
	for _, s := range spans {
		switch s.name {
		case "PutObject":
			req = s
		case "upstream PutObject":
			up = s
		}
	}
	if req == nil || up == nil {
		t.Fatalf("spans %v; client got %q", spans, p.client.out)
	}
	if req.traceID != "4bf92f3577b34da6a3ce929d0e0e4736" || req.parent != "00f067aa0ba902b7" {
		t.Errorf("request span trace %s parent %s: not the client's", req.traceID, req.parent)
	}
	if req.attrs[attrKey] != "a b.txt" {
		t.Errorf("key attribute %v; want the decoded key", req.attrs[attrKey])
	}
	head := string(p.upc.out)
	if n := strings.Count(strings.ToLower(head), "traceparent:"); n != 1 || strings.Contains(head, clientTP) {
		t.Errorf("upstream head has %d traceparent lines (the client's: %v):\n%s", n, strings.Contains(head, clientTP), head)
	}
	if strings.Contains(head, "client=1") && !strings.Contains(head, "tracestate: vendor=1") {
		t.Errorf("the client's tracestate went upstream as its own header:\n%s", head)
	}
}

// TestTraceRefusal: a refused request's span says so (path refused, the S3 code, status error).
func TestTraceRefusal(t *testing.T) {
	p := newLoopPut(t, 1)
	p.client.in = []byte("PUT /sig/k HTTP/1.1\r\nHost: proxy\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nContent-Length: 0\r\n\r\n")
	tr := &fakeTracer{}
	p.e.opts.Tracer = tr
	p.client.reset()
	p.e.process(p.client, p.st)
	spans := tr.ended()
	i := slices.IndexFunc(spans, func(s *fakeSpan) bool { return s.name == "PutObject" })
	if i < 0 {
		t.Fatalf("spans %v; client got %q", spans, p.client.out)
	}
	req := spans[i]
	if req.attrs[attrPath] != "refused" || req.attrs[attrStatus] != int64(403) || req.err != "AccessDenied" {
		t.Errorf("refusal span: attrs %v err %q", req.attrs, req.err)
	}
	if len(p.upc.out) != 0 {
		t.Errorf("something went upstream: %q", p.upc.out)
	}
}
