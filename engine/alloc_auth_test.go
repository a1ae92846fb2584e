//go:build !race

package engine

import (
	"testing"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
)

// Allocation counts are meaningless under -race, hence the build tag.

// The in-loop checks of a small signed PutObject (routing with the dot-segment check,
// authenticate with the duplicate-Authorization, region and unsigned-header checks, and the
// upstream head with its header filter) allocate nothing once the key caches are warm.
func TestInLoopAuthAndSignAllocs(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	e, err := New(Options{Now: func() time.Time { return now }, Buckets: []Bucket{{Name: "b",
		Upstream:    Upstream{Endpoint: "http://127.0.0.1:1", Bucket: "up", AccessKey: "UPAK", SecretKey: "upsk"},
		Credentials: map[string]string{"AKID": "secret"}}}})
	if err != nil {
		t.Fatal(err)
	}
	buf := signedTestRequest(t, now, "PUT", "/b/dir/.hidden/x.bin", "AKID", "secret", "us-east-1",
		[][2]string{{"content-type", "text/plain"}, {"x-amz-meta-a", "1"}, {"content-length", "5"}},
		[][2]string{{"User-Agent", "unsigned"}, {"Cache-Control", "no-store"}})
	buf = append(buf, "hello"...)
	var p httpparse.Parser
	st := &connState{req: new(httpparse.Request)}
	if err := p.Parse(buf, e.limits, st.req); err != nil {
		t.Fatal(err)
	}
	req := st.req
	j := new(job)
	run := func() {
		rt, s3err := e.routeRequest(req.Method.Bytes(buf), req.Host.Bytes(buf), req.Path.Bytes(buf), req.Query.Bytes(buf), req.HasQuery, false)
		if s3err != nil {
			t.Fatal(s3err.Message)
		}
		st.rt = rt
		st.head = Head{req: st.req, buf: buf}
		if _, s3err := rt.bucket.auth.Authenticate(&st.head); s3err != nil {
			t.Fatal(s3err.Message)
		}
		if err := e.buildUpstreamHead(j, st, rt.bucket, buf); err != nil {
			t.Fatal(err)
		}
	}
	run() // warms the key caches and the job's buffers
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Errorf("route + authenticate + buildUpstreamHead: %v allocs per run; want 0", n)
	}
}
