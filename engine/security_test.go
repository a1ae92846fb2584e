package engine_test

import (
	"bytes"
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
