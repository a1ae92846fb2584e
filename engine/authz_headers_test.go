package engine_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// Bucket.AuthzHeaders puts the named headers (first value, when present) into AuthzInput.Headers,
// and an Authorizer that gives up on its own deadline with engine.ErrAuthorizeTimeout is answered
// 503 SlowDown and counted as a timeout, not a denial.
func TestAuthorizerHeadersAndOwnTimeout(t *testing.T) {
	var mu sync.Mutex
	var seen []map[string]string
	a := engine.AuthorizerFunc(func(ctx context.Context, in *engine.AuthzInput) *engine.Error {
		mu.Lock()
		seen = append(seen, in.Headers)
		mu.Unlock()
		if strings.HasPrefix(in.Key, "own-timeout/") {
			return engine.ErrAuthorizeTimeout
		}
		return nil
	})
	p := startProxy(t, func(o *engine.Options) {
		o.Buckets[0].Authorizer = a
		o.Buckets[0].AuthzHeaders = []string{"x-amz-meta-ticket", "x-absent"}
		o.AuthorizeTimeout = 2 * time.Second
	})
	const timeout = `mizuchi_authz_decisions_total{decision="timeout"}`
	const deny = `mizuchi_authz_decisions_total{decision="deny"}`
	tBefore, dBefore := max(metricValue(t, timeout), 0), max(metricValue(t, deny), 0)

	hdr := http.Header{}
	hdr.Set("X-Amz-Meta-Ticket", "T-1")
	resp, body := putStream(t, p, "ok/h", []byte("hello"), hdr, "")
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	resp, body = putStream(t, p, "ok/none", []byte("hello"), nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	if len(seen) != 2 || len(seen[0]) != 1 || seen[0]["x-amz-meta-ticket"] != "T-1" || seen[1] != nil {
		t.Errorf("headers seen: %v", seen)
	}
	mu.Unlock()

	resp, body = putStream(t, p, "own-timeout/x", s3test.RandomBytes(5, 1), nil, "")
	wantS3Error(t, resp, body, 503, "SlowDown")
	if upstream.ObjectExists(t, p.UpBucket, "own-timeout/x") {
		t.Error("object exists upstream")
	}
	if g := max(metricValue(t, timeout), 0) - tBefore; g != 1 {
		t.Errorf("timeouts grew by %v; want 1", g)
	}
	if g := max(metricValue(t, deny), 0) - dBefore; g != 0 {
		t.Errorf("denials grew by %v; want 0", g)
	}
}
