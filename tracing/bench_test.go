package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkRecordedRequest is the tracing work of one recorded in-loop PutObject (what the engine
// does through server's adapter): the request span, its authenticate and upstream children, their
// attributes, the traceparent for the upstream head, and the export (encoding and POST) to a
// collector that discards.
func BenchmarkRecordedRequest(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	defer srv.Close()
	tr, err := New(Config{Endpoint: srv.URL, SampleRatio: 1, QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	parent := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	var tp []byte
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		s := tr.Start("PutObject", parent, nil, now)
		a := s.Child("authenticate", now, false)
		a.SetString("mizuchi.auth.method", "sigv4")
		a.End(time.Time{})
		for _, kv := range [...][2]string{{"mizuchi.operation", "PutObject"}, {"http.request.method", "PUT"},
			{"mizuchi.request_id", "0123456789ABCDEF"}, {"client.address", "127.0.0.1"}, {"enduser.id", "AKID"},
			{"aws.s3.bucket", "bench"}, {"mizuchi.auth.method", "sigv4"}} {
			s.SetString(kv[0], kv[1])
		}
		s.SetInt("client.port", 40000)
		u := s.Child("upstream PutObject", time.Time{}, true)
		tp = u.AppendTraceparent(tp[:0])
		u.SetInt("http.response.status_code", 200)
		u.End(time.Time{})
		s.SetString("mizuchi.path", "inline")
		s.SetInt("http.response.status_code", 200)
		s.SetInt("mizuchi.body_bytes", 4096)
		s.SetInt("mizuchi.response_bytes", 200)
		s.SetInt("mizuchi.upstream.status_code", 200)
		s.SetString("aws.request_id", "0123456789ABCDEF0123")
		s.End(time.Time{})
	}
	_ = tr.ForceFlush(context.Background())
}
