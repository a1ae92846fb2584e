package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// newTraceparent returns a sampled W3C traceparent with a fresh trace id, and that trace id.
func newTraceparent(t *testing.T) (tp, traceID, parent string) {
	t.Helper()
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	traceID, parent = hex.EncodeToString(b[:16]), hex.EncodeToString(b[16:])
	return "00-" + traceID + "-" + parent + "-01", traceID, parent
}

// TestTracesInJaeger runs the proxy with tracing on (ratio 1) in front of versitygw, exporting to a
// real Jaeger started on free loopback ports, sends a small PutObject, an auto-chunked one (3
// parts) and a refused one, each with its own client traceparent, and reads the traces back from
// Jaeger's query API: the client's trace id, the request span's attributes, and children for
// authentication, the upstream round trips and every part, parented to the request span.
func TestTracesInJaeger(t *testing.T) {
	j := s3test.StartJaeger(t)
	up := s3test.Start(t)
	up.CreateBucket(t, "traced")
	service := fmt.Sprintf("mizuchi-test-%d", time.Now().UnixNano())
	r := startBinaryUpload(t, up, "traced", "{multipart_threshold: 5MiB, part_size: 5MiB, concurrent_parts: 2}",
		[]string{"-tracing", "-tracing-endpoint", j.OTLPURL, "-tracing-sample-ratio", "1", "-tracing-service-name", service}, nil)

	type sent struct {
		name, traceID, parent, reqID string
		status                       int
		size                         int64
		spans                        int
	}
	var reqs []sent
	for _, c := range []struct {
		name   string
		size   int64
		sk     string
		status int
		spans  int
	}{
		{"small", 4 << 10, clientSK, 200, 3},                  // request, authenticate, upstream PutObject
		{"chunked", 11 << 20, clientSK, 200, 7},               // + CreateMultipartUpload, 3 parts, Complete
		{"refused", 1 << 10, "not-the-client-secret", 403, 2}, // request, authenticate
	} {
		tp, traceID, parent := newTraceparent(t)
		resp, body, err := dialClient(t, r.addr).putAs("uploads", "trace/"+c.name, c.size, clientAK, c.sk,
			map[string]string{"traceparent": tp, "tracestate": "client=1"})
		if err != nil || resp.StatusCode != c.status {
			t.Fatalf("%s: %v %v %s; want %d", c.name, err, resp, body, c.status)
		}
		reqs = append(reqs, sent{c.name, traceID, parent, resp.Header.Get("x-amz-request-id"), c.status, c.size, c.spans})
	}
	if !up.ObjectExists(t, "traced", "trace/small") || !up.ObjectExists(t, "traced", "trace/chunked") {
		t.Fatal("versitygw did not store the traced objects (did it refuse the proxy's traceparent header?)")
	}

	for _, q := range reqs {
		tr := j.Trace(t, q.traceID, q.spans, 30*time.Second)
		byName := map[string][]*s3test.JaegerSpan{}
		for i := range tr.Spans {
			s := &tr.Spans[i]
			byName[s.OperationName] = append(byName[s.OperationName], s)
		}
		if len(tr.Spans) != q.spans || len(byName["PutObject"]) != 1 {
			t.Errorf("%s: %d spans %v; want %d with one PutObject", q.name, len(tr.Spans), names(tr), q.spans)
			continue
		}
		req := byName["PutObject"][0]
		if req.Parent() != q.parent {
			t.Errorf("%s: request span's parent %q; want the client's %s", q.name, req.Parent(), q.parent)
		}
		path := map[string]string{"small": "inline", "chunked": "auto-chunk", "refused": "refused"}[q.name]
		for k, want := range map[string]any{
			"mizuchi.operation": "PutObject", "aws.s3.bucket": "uploads", "http.response.status_code": float64(q.status),
			"mizuchi.path": path, "mizuchi.request_id": q.reqID, "http.request.method": "PUT",
			"client.address": "127.0.0.1", "span.kind": "server",
		} {
			if v, ok := req.Tag(k); !ok || v != want {
				t.Errorf("%s: request span %s = %v; want %v", q.name, k, v, want)
			}
		}
		if q.status == 200 {
			if v, _ := req.Tag("mizuchi.body_bytes"); v != float64(q.size) {
				t.Errorf("%s: body_bytes %v; want %d", q.name, v, q.size)
			}
			if v, _ := req.Tag("enduser.id"); v != clientAK {
				t.Errorf("%s: enduser.id %v; want %s", q.name, v, clientAK)
			}
			if _, bad := req.Tag("error"); bad {
				t.Errorf("%s: request span marked as an error", q.name)
			}
		} else if v, _ := req.Tag("otel.status_code"); v != "ERROR" {
			t.Errorf("%s: refused request span status %v; want ERROR", q.name, v)
		}
		want := map[string]int{"authenticate": 1}
		switch q.name {
		case "small":
			want["upstream PutObject"] = 1
		case "chunked":
			want["upstream CreateMultipartUpload"] = 1
			want["UploadPart"] = 3
			want["upstream CompleteMultipartUpload"] = 1
		}
		for name, n := range want {
			if len(byName[name]) != n {
				t.Errorf("%s: %d %q spans; want %d (%v)", q.name, len(byName[name]), name, n, names(tr))
			}
			for _, s := range byName[name] {
				if s.Parent() != req.SpanID {
					t.Errorf("%s: %s's parent %s; want the request span %s", q.name, name, s.Parent(), req.SpanID)
				}
				if v, _ := s.Tag("http.response.status_code"); name != "authenticate" && v != float64(200) {
					t.Errorf("%s: %s status %v; want 200", q.name, name, v)
				}
			}
		}
		parts := map[float64]bool{}
		for _, s := range byName["UploadPart"] {
			n, _ := s.Tag("aws.s3.part_number")
			parts[n.(float64)] = true
		}
		if q.name == "chunked" && (!parts[1] || !parts[2] || !parts[3]) {
			t.Errorf("part numbers %v; want 1, 2, 3", parts)
		}
	}
	postObjectTrace(t, j, r.addr)
	if v := r.scrape(t, "mizuchi_tracing_spans_exported_total"); v < 12 {
		t.Errorf("mizuchi_tracing_spans_exported_total %v; want >= 12", v)
	}
	if v := r.scrape(t, "mizuchi_tracing_spans_dropped_total"); v != 0 {
		t.Errorf("mizuchi_tracing_spans_dropped_total %v; want 0", v)
	}
}

// postObjectTrace sends a browser form upload (PostObject) with a client traceparent to the proxy
// at addr and reads its trace from Jaeger: a PostObject request span, parented to the client's,
// with authenticate (the form's signature, sigv4-post) and upstream PutObject children.
func postObjectTrace(t *testing.T, j *s3test.Jaeger, addr string) {
	t.Helper()
	tp, traceID, parent := newTraceparent(t)
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range browserPostFields(t, "trace/", 1<<20, nil) {
		_ = w.WriteField(f[0], f[1])
	}
	fw, _ := w.CreateFormFile("file", "form.png")
	_, _ = fw.Write([]byte("a traced form upload"))
	_ = w.Close()
	req, _ := http.NewRequest("POST", "http://"+addr+"/uploads", &b)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("traceparent", tp)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("PostObject: %d; want 204", resp.StatusCode)
	}
	tr := j.Trace(t, traceID, 3, 30*time.Second)
	byName := map[string]*s3test.JaegerSpan{}
	for i := range tr.Spans {
		byName[tr.Spans[i].OperationName] = &tr.Spans[i]
	}
	po, auth, up := byName["PostObject"], byName["authenticate"], byName["upstream PutObject"]
	if len(tr.Spans) != 3 || po == nil || auth == nil || up == nil {
		t.Fatalf("PostObject trace: %v; want PostObject, authenticate, upstream PutObject", names(tr))
	}
	if po.Parent() != parent || auth.Parent() != po.SpanID || up.Parent() != po.SpanID {
		t.Errorf("PostObject trace parentage: %v (client span %s)", names(tr), parent)
	}
	if v, _ := auth.Tag("mizuchi.auth.method"); v != "sigv4-post" {
		t.Errorf("PostObject authenticate span's method %v; want sigv4-post", v)
	}
	if v, _ := up.Tag("http.response.status_code"); v != float64(200) {
		t.Errorf("PostObject upstream span status %v; want 200", v)
	}
}

func names(tr s3test.JaegerTrace) []string {
	var out []string
	for _, s := range tr.Spans {
		out = append(out, s.OperationName+"/"+s.SpanID+"<"+s.Parent())
	}
	return out
}
