package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/s3sig"
)

// A signature for a region the bucket does not accept is refused before it is verified, so the
// derived key of that region never enters the key cache.
func TestWrongRegionIsNotCached(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	e, err := New(Options{Now: func() time.Time { return now }, Buckets: []Bucket{{Name: "b",
		Upstream:       Upstream{Endpoint: "http://127.0.0.1:1", Bucket: "up", Region: "eu-west-3", AccessKey: "UPAK", SecretKey: "upsk"},
		Credentials:    map[string]string{"AKID": "secret"},
		SigningRegions: []string{"eu-west-3", "auto"}}}})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(region string) *s3Error {
		buf := signedTestRequest(t, now, "PUT", "/b/k", "AKID", "secret", region, nil, nil)
		var p httpparse.Parser
		st := &connState{req: new(httpparse.Request)}
		if err := p.Parse(buf, e.limits, st.req); err != nil {
			t.Fatal(err)
		}
		rt, s3err := e.routeRequest(st.req.Method.Bytes(buf), st.req.Host.Bytes(buf), st.req.Path.Bytes(buf), nil, false, false)
		if s3err != nil {
			t.Fatal(s3err.Message)
		}
		st.rt = rt
		st.head = Head{req: st.req, buf: buf}
		_, s3err = rt.bucket.auth.Authenticate(&st.head)
		return s3err
	}
	for _, region := range []string{"us-east-1", "eu-west-1", "EU-WEST-3", "auto2"} {
		s3err := auth(region)
		if s3err == nil || s3err.Code != "AuthorizationHeaderMalformed" || s3err.Status != 400 {
			t.Fatalf("region %s: %+v; want 400 AuthorizationHeaderMalformed", region, s3err)
		}
		if want := "the region '" + region + "' is wrong; expecting 'eu-west-3'"; !strings.Contains(s3err.Message, want) {
			t.Errorf("message %q does not say %q", s3err.Message, want)
		}
		if n := e.keys.Len(); n != 0 {
			t.Fatalf("region %s: %d derived keys cached; want 0", region, n)
		}
	}
	for i, region := range []string{"eu-west-3", "auto"} {
		if s3err := auth(region); s3err != nil {
			t.Fatalf("region %s: %+v", region, s3err)
		}
		if n := e.keys.Len(); n != i+1 {
			t.Fatalf("region %s: %d derived keys cached; want %d", region, n, i+1)
		}
	}
}

// The refusal quotes the region only when it looks like one: no markup, no unbounded echo.
func TestWrongRegionMessage(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{"eu-west-1", "The authorization header is malformed; the region 'eu-west-1' is wrong; expecting 'us-east-1'"},
		{"a<b>", "The authorization header is malformed; the region is wrong; expecting 'us-east-1'"},
		{strings.Repeat("a", 65), "The authorization header is malformed; the region is wrong; expecting 'us-east-1'"},
	} {
		e := wrongRegion([]byte(tt.got), "us-east-1")
		if e.Code != "AuthorizationHeaderMalformed" || e.Status != 400 || e.Message != tt.want {
			t.Errorf("wrongRegion(%q) = %+v; want message %q", tt.got, e, tt.want)
		}
	}
}

// signedTestRequest returns the head of a request signed with s3sig over host, x-amz-date,
// x-amz-content-sha256 (UNSIGNED-PAYLOAD) and the headers in signed; unsigned headers are added
// after signing.
func signedTestRequest(t testing.TB, now time.Time, method, path, ak, sk, region string, signed, unsigned [][2]string) []byte {
	t.Helper()
	date := s3sig.AppendAmzDate(nil, now)
	hs := []s3sig.Header{{Name: []byte("host"), Value: []byte("proxy")}, {Name: []byte("x-amz-date"), Value: date},
		{Name: []byte("x-amz-content-sha256"), Value: []byte(s3sig.UnsignedPayload)}}
	for _, h := range signed {
		hs = append(hs, s3sig.Header{Name: []byte(h[0]), Value: []byte(h[1])})
	}
	sreq := s3sig.Request{Method: []byte(method), Path: []byte(path), Headers: hs, PayloadHash: []byte(s3sig.UnsignedPayload)}
	auth, err := s3sig.NewSigner(s3sig.NewKeyCache(4)).Sign(nil, &sreq, s3sig.Credentials{AccessKey: ak, SecretKey: sk}, date, region, "s3")
	if err != nil {
		t.Fatal(err)
	}
	w := []byte(method + " " + path + " HTTP/1.1\r\n")
	for _, h := range hs {
		w = append(w, string(h.Name)+": "+string(h.Value)+"\r\n"...)
	}
	for _, h := range unsigned {
		w = append(w, h[0]+": "+h[1]+"\r\n"...)
	}
	w = append(w, "Authorization: "+string(auth)+"\r\n\r\n"...)
	return w
}
