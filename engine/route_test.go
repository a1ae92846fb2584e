package engine

import "testing"

// Keys whose path has a "." or ".." segment, raw or percent-encoded, with '/', an encoded '/'
// (%2F: the upstream path re-encodes it as a literal '/') or '\' between segments.
func TestHasDotSegment(t *testing.T) {
	tests := []struct {
		key  string // raw key as on the wire, after "/bucket/"
		want bool
	}{
		{".", true},
		{"..", true},
		{"a/../b", true},
		{"a/./b", true},
		{"../other-bucket/x", true},
		{"./x", true},
		{"a/..", true},
		{"a/.", true},
		{"a/../", true},
		{"%2e", true},
		{"%2E", true},
		{"%2e%2E", true},
		{".%2e", true},
		{"%2E.", true},
		{"a/%2e%2e/b", true},
		{"%2e%2e%2fother-bucket%2fx", true},
		{"a%2F..%2Fb", true},
		{"a%2f.", true},
		{"a\\..\\b", true},
		{"..\\x", true},
		{"a%5c..%5cb", true},
		{"a%5C.", true},
		{"/..", true},
		{"//..//x", true},

		{"a", false},
		{"...", false},
		{"....", false},
		{"..a", false},
		{"a..", false},
		{"a..b", false},
		{".hidden", false},
		{"dir/.hidden/x", false},
		{"a/.../b", false},
		{"a//b", false},
		{"/a", false},
		{"a/", false},
		{"%2e%2e%2e", false},
		{"%2ea", false},
		{"%252e%252e", false}, // the key is "%2e%2e" literally: not a dot segment once decoded once
		{"..%3B", false},      // "..;" is one segment; ';' goes upstream encoded
		{"%", false},          // malformed escapes are the signature check's business
		{"%2", false},
		{"%zz.", false},
		{"a/b/c.txt", false},
	}
	for _, tt := range tests {
		if got := hasDotSegment([]byte(tt.key)); got != tt.want {
			t.Errorf("hasDotSegment(%q) = %v; want %v", tt.key, got, tt.want)
		}
	}
}

// routeRequest refuses dot segments for every operation, before anything else about the key.
func TestRouteRefusesDotSegments(t *testing.T) {
	e, err := New(Options{Buckets: []Bucket{{Name: "b", Upstream: Upstream{Endpoint: "http://127.0.0.1:1", Bucket: "up",
		AccessKey: "a", SecretKey: "s"}, AuthNone: true}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path, query string }{
		{"PUT", "/b/a/../b", ""},
		{"PUT", "/b/%2e%2E/up2/x", "partNumber=1&uploadId=abc"},
		{"POST", "/b/.%2e", "uploads"},
		{"POST", "/b/.", "uploadId=abc"},
		{"DELETE", "/b/x/..", "uploadId=abc"},
		{"GET", "/b/..%2Fx", "uploadId=abc"},
	} {
		_, s3err := e.routeRequest([]byte(r.method), nil, []byte(r.path), []byte(r.query), r.query != "", false)
		if s3err != errDotSegment {
			t.Errorf("%s %s?%s: got %v; want %v", r.method, r.path, r.query, s3err, errDotSegment)
		}
	}
	if _, s3err := e.routeRequest([]byte("PUT"), nil, []byte("/b/a/.b/..c/.../x"), nil, false, false); s3err != nil {
		t.Errorf("PUT of a key with dots that are not segments: %v", s3err)
	}
}
