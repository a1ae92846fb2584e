package engine_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// A key with a "." or ".." segment, raw or percent-encoded, is refused with 400 InvalidArgument
// before anything goes upstream, and no object appears under any spelling of it.
func TestSecurityDotSegmentKeysRefused(t *testing.T) {
	p := startProxy(t)
	b := "/" + p.Bucket
	for _, path := range []string{
		b + "/a/../b",
		b + "/a/%2e%2E/b",
		b + "/a/.%2e/b",
		b + "/..",
		b + "/.",
		b + "/%2e%2e%2f" + p.UpBucket + "%2fx",
		b + "/a%2F..%2Fb",
		b + "/a%5C..%5Cb",
	} {
		r := rawReq{Method: "PUT", Path: path, Body: []byte("escaped")}
		resp, body := p.do(t, r.bytes(t, p.Addr))
		wantS3Error(t, resp, body, 400, "InvalidArgument")
		if !bytes.Contains(body, []byte("dot segment")) {
			t.Errorf("PUT %s: message does not name dot segments: %s", path, body)
		}
	}
	if keys := upstream.ListKeys(t, p.UpBucket); len(keys) != 0 {
		t.Fatalf("refused keys left objects upstream: %q", keys)
	}
	// Dots that are not whole segments are ordinary key bytes.
	r := rawReq{Method: "PUT", Path: b + "/a/.b/..c/.../d..", Body: []byte("fine")}
	if resp, body := p.do(t, r.bytes(t, p.Addr)); resp.StatusCode != 200 {
		t.Fatalf("PUT of a key with dots inside segments: %d %s", resp.StatusCode, body)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "a/.b/..c/.../d.."); string(got) != "fine" {
		t.Fatalf("object = %q", got)
	}
}

// Two Authorization headers are refused with 400 InvalidArgument before any verification: which
// one a verifier, a logger or the upstream would read is not defined.
func TestSecurityDuplicateAuthorizationRefused(t *testing.T) {
	p, tw := startTripwireProxy(t)
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/dup", Body: []byte("x")}
	wire := r.bytes(t, p.Addr)
	auth := regexp.MustCompile(`(?m)^Authorization: [^\r]*`).Find(wire)
	if auth == nil {
		t.Fatal("no Authorization in the signed request")
	}
	for name, extra := range map[string]string{
		"same value":  string(auth),
		"other value": "Authorization: AWS4-HMAC-SHA256 Credential=AKIDOTHER/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64),
		"lower case":  "authorization: " + strings.TrimPrefix(string(auth), "Authorization: "),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := p.do(t, injectHeaders(wire, extra))
			wantS3Error(t, resp, body, 400, "InvalidArgument")
			if !bytes.Contains(body, []byte("Only one Authorization header")) {
				t.Errorf("message: %s", body)
			}
		})
	}
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("refused requests opened %d upstream connections; want 0", n)
	}
}

// injectHeaders inserts header lines (each "Name: value") into a request's wire bytes after it was
// signed, as a middlebox or a tampering client would.
func injectHeaders(wire []byte, lines ...string) []byte {
	i := bytes.Index(wire, []byte("\r\n\r\n"))
	var out []byte
	out = append(out, wire[:i+2]...)
	for _, l := range lines {
		out = append(out, l+"\r\n"...)
	}
	return append(out, wire[i+2:]...)
}
