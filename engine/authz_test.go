package engine_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// recordingAuthorizer allows keys under "ok/", denies the rest, blocks on keys under "slow/" until
// the test ends, and keeps every input it saw.
type recordingAuthorizer struct {
	mu     sync.Mutex
	inputs []engine.AuthzInput
	stop   chan struct{}
}

func (a *recordingAuthorizer) Authorize(ctx context.Context, in *engine.AuthzInput) *engine.Error {
	a.mu.Lock()
	a.inputs = append(a.inputs, *in)
	a.mu.Unlock()
	switch {
	case strings.HasPrefix(in.Key, "ok/"):
		return nil
	case strings.HasPrefix(in.Key, "slow/"):
		<-a.stop // ignores ctx on purpose: the engine must time the wait out itself
		return nil
	}
	return &engine.Error{Code: "AccessDenied", Status: 403, Message: "Access Denied by policy"}
}

func (a *recordingAuthorizer) last() engine.AuthzInput {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inputs[len(a.inputs)-1]
}

func startAuthzProxy(t *testing.T) (*proxy, *recordingAuthorizer) {
	t.Helper()
	a := &recordingAuthorizer{stop: make(chan struct{})}
	p := startProxy(t, func(o *engine.Options) {
		o.Buckets[0].Authorizer = a
		o.AuthorizeTimeout = 300 * time.Millisecond
	})
	t.Cleanup(func() { close(a.stop) })
	return p, a
}

// The Authorizer decides before any body byte moves, on the loop's small-request path and on the
// detached path, sees the principal and the request's attributes, and a decision that does not
// come in time is answered 503 SlowDown.
func TestAuthorizerDecidesBeforeTheBody(t *testing.T) {
	p, a := startAuthzProxy(t)
	cl := p.sdkClient(t)
	ctx := context.Background()
	counter := func(series string) float64 { return max(metricValue(t, series), 0) }
	const (
		sigv4   = `mizuchi_authenticated_requests_total{method="sigv4"}`
		allow   = `mizuchi_authz_decisions_total{decision="allow"}`
		deny    = `mizuchi_authz_decisions_total{decision="deny"}`
		timeout = `mizuchi_authz_decisions_total{decision="timeout"}`
	)
	before := map[string]float64{}
	for _, s := range []string{sigv4, allow, deny, timeout} {
		before[s] = counter(s)
	}
	for _, size := range []int{5, 200 << 10} {
		body := s3test.RandomBytes(size, 3)
		key := "ok/" + itoa(size)
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(body), ContentType: aws.String("image/png")}); err != nil {
			t.Fatalf("allowed PUT of %d bytes: %v", size, err)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("allowed object of %d bytes differs", size)
		}
		in := a.last()
		if in.Principal.ID != clientAK || in.Principal.Method != "sigv4" || in.Operation != "PutObject" ||
			in.Bucket != p.Bucket || in.Key != key || in.Size != int64(size) || in.ContentType != "image/png" ||
			len(in.RequestID) != 16 || in.Remote == "" {
			t.Errorf("Authorizer input = %+v", in)
		}
	}

	// Denied: small (inline, parked in the loop), large (detached), and large with Expect:
	// 100-continue (the client never sends the body).
	for _, tc := range []struct {
		size   int
		expect bool
	}{{5, false}, {300 << 10, false}, {300 << 10, true}} {
		key := "no/" + itoa(tc.size)
		hdr := http.Header{}
		if tc.expect {
			hdr.Set("Expect", "100-continue")
			key += "-expect"
		}
		resp, body := putStream(t, p, key, s3test.RandomBytes(tc.size, 4), hdr, "")
		wantS3Error(t, resp, body, 403, "AccessDenied")
		if !strings.Contains(string(body), "Access Denied by policy") {
			t.Errorf("denial message lost: %s", body)
		}
		if upstream.ObjectExists(t, p.UpBucket, key) {
			t.Errorf("%s: denied object exists upstream", key)
		}
	}

	// Multipart calls carry the upload id and part number.
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String("ok/mp")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(p.Bucket), Key: aws.String("ok/mp"),
		UploadId: cr.UploadId, PartNumber: aws.Int32(3), Body: bytes.NewReader([]byte("part"))}); err != nil {
		t.Fatal(err)
	}
	if in := a.last(); in.Operation != "UploadPart" || in.UploadID != aws.ToString(cr.UploadId) || in.PartNumber != 3 {
		t.Errorf("UploadPart input = %+v", in)
	}
	if _, err := cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String("ok/mp"), UploadId: cr.UploadId}); err != nil {
		t.Fatal(err)
	}

	// A decision that does not come: 503 SlowDown, small and large, and nothing upstream.
	for _, size := range []int{5, 300 << 10} {
		key := "slow/" + itoa(size)
		start := time.Now()
		resp, body := putStream(t, p, key, s3test.RandomBytes(size, 5), nil, "")
		wantS3Error(t, resp, body, 503, "SlowDown")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("timeout answered after %v", d)
		}
		if upstream.ObjectExists(t, p.UpBucket, key) {
			t.Errorf("%s: object exists upstream", key)
		}
	}
	// 2 allowed PUTs, 3 denied, Create + UploadPart + Abort allowed, 2 timed out: all signed.
	for s, want := range map[string]float64{sigv4: 10, allow: 5, deny: 3, timeout: 2} {
		if got := counter(s) - before[s]; got != want {
			t.Errorf("%s grew by %v; want %v", s, got, want)
		}
	}
}
