package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
)

// TestTracePostObject: a traced browser form upload has its request span named PostObject, with
// one authenticate child (the form's policy signature, checked once the form is read), an
// authorize child and an upstream PutObject child; a form whose signature does not match ends
// with the S3 code on its authenticate and request spans, and nothing else.
func TestTracePostObject(t *testing.T) {
	tr := &recTracer{}
	p := startProxy(t, func(o *engine.Options) {
		o.Tracer = tr
		o.Buckets[0].Authorizer = engine.AuthorizerFunc(func(context.Context, *engine.AuthzInput) *engine.Error { return nil })
	})
	auth := postPolicy{Conditions: stdConditions(p.Bucket)}.sign(t)
	body, ct := postBody(t, append(stdFields("uploads/traced.png"), auth...), "f.png", []byte("hello"))
	if resp, rb := p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body)); resp.StatusCode != 204 {
		t.Fatalf("%d %s", resp.StatusCode, rb)
	}
	spans := waitSpans(t, tr, "PostObject", 1)
	req := spans["PostObject"][0]
	if len(spans["authenticate"]) != 1 || len(spans["authorize"]) != 1 || len(spans["upstream PutObject"]) != 1 {
		t.Fatalf("spans %v; want one authenticate, authorize and upstream PutObject", spans)
	}
	a, z, u := spans["authenticate"][0], spans["authorize"][0], spans["upstream PutObject"][0]
	if a.parent != req.id || z.parent != req.id || u.parent != req.id {
		t.Errorf("parentage: request %s; authenticate %s, authorize %s, upstream %s", req.id, a.parent, z.parent, u.parent)
	}
	if a.attrs["mizuchi.auth.method"] != "sigv4-post" || a.err != "" || z.attrs["mizuchi.authz.decision"] != "allow" ||
		u.attrs["http.response.status_code"] != int64(200) || u.err != "" {
		t.Errorf("authenticate %+v, authorize %+v, upstream %+v", a, z, u)
	}
	if req.attrs["enduser.id"] != clientAK || req.attrs["mizuchi.auth.method"] != "sigv4-post" ||
		req.attrs["http.response.status_code"] != int64(204) || req.attrs["mizuchi.upstream.status_code"] != int64(200) || req.err != "" {
		t.Errorf("request span %+v", req)
	}

	bad := postPolicy{Conditions: stdConditions(p.Bucket), SK: "wrong-secret", AK: clientAK}.sign(t)
	body, ct = postBody(t, append(stdFields("uploads/bad.png"), bad...), "f.png", []byte("hello"))
	resp, rb := p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body))
	wantS3Error(t, resp, rb, 403, "SignatureDoesNotMatch")
	spans = waitSpans(t, tr, "PostObject", 2)
	req = spans["PostObject"][1]
	if len(spans["authenticate"]) != 2 || len(spans["authorize"]) != 1 || len(spans["upstream PutObject"]) != 1 {
		t.Fatalf("refused: spans %v", spans)
	}
	if a := spans["authenticate"][1]; a.parent != req.id || a.err != "SignatureDoesNotMatch" {
		t.Errorf("refused: authenticate %+v", a)
	}
	if req.err != "SignatureDoesNotMatch" || req.attrs["mizuchi.path"] != "refused" || req.attrs["http.response.status_code"] != int64(403) {
		t.Errorf("refused: request span %+v", req)
	}
}

// waitSpans waits until n spans named name ended and returns the ended spans by name.
func waitSpans(t *testing.T, tr *recTracer, name string, n int) map[string][]*recSpan {
	t.Helper()
	var spans map[string][]*recSpan
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if spans = tr.ended(); len(spans[name]) >= n {
			return spans
		}
	}
	t.Fatalf("%d %s spans ended; want %d: %v", len(spans[name]), name, n, spans)
	return nil
}
