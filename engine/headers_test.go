package engine

import "testing"

func TestMustBeSigned(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"x-amz-meta-a", true},
		{"X-Amz-Meta-A", true},
		{"x-amz-tagging", true},
		{"x-amz-website-redirect-location", true},
		{"X-AMZ-ACL", true},
		{"x-amz-server-side-encryption", true},
		{"x-amz-date", true},
		{"x-amz-security-token", true},
		{"x-amz-decoded-content-length", true},
		{"x-amz-content-sha256", false}, // the canonical request covers it anyway
		{"X-Amz-Content-Sha256", false},
		{"x-amz-", true},
		{"x-amz", false},
		{"x-amzn-trace-id", false},
		{"content-type", false},
		{"user-agent", false},
		{"authorization", false},
	} {
		if got := mustBeSigned([]byte(tt.name)); got != tt.want {
			t.Errorf("mustBeSigned(%q) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestSignedListHas(t *testing.T) {
	for _, tt := range []struct {
		list, name string
		want       bool
	}{
		{"host;x-amz-content-sha256;x-amz-date", "host", true},
		{"host;x-amz-content-sha256;x-amz-date", "x-amz-date", true},
		{"host;x-amz-content-sha256;x-amz-date", "X-Amz-Date", true},
		{"host;x-amz-content-sha256;x-amz-date", "x-amz-content-sha256", true},
		{"Host;X-Amz-Meta-A", "x-amz-meta-a", true},
		{"host;x-amz-date", "x-amz", false},
		{"host;x-amz-date", "x-amz-date2", false},
		{"host;x-amz-date", "ost", false},
		{"host;x-amz-date", "", false},
		{"host;x-amz-meta-ab", "x-amz-meta-a", false},
		{"host", "host;x", false},
		{"", "host", false},
	} {
		if got := signedListHas([]byte(tt.list), []byte(tt.name)); got != tt.want {
			t.Errorf("signedListHas(%q, %q) = %v; want %v", tt.list, tt.name, got, tt.want)
		}
	}
}

func TestForwardHeader(t *testing.T) {
	signed := []byte("content-md5;host;user-agent;x-amz-content-sha256;x-amz-date;x-amz-meta-a;x-custom")
	for _, tt := range []struct {
		name string
		want bool
	}{
		// Signed by the client: forwarded.
		{"x-amz-meta-a", true},
		{"X-Amz-Meta-A", true},
		{"x-custom", true},
		{"User-Agent", true},
		{"Content-MD5", true},
		// Standard headers S3 accepts unsigned: forwarded either way.
		{"Content-Length", true},
		{"Content-Type", true},
		{"content-encoding", true},
		{"Cache-Control", true},
		{"Content-Disposition", true},
		{"Content-Language", true},
		{"Expires", true},
		{"If-Match", true},
		{"If-None-Match", true},
		{"x-amz-content-sha256", true},
		// Neither signed nor on the list: dropped.
		{"x-amz-meta-b", false},
		{"x-amz-tagging", false},
		{"X-Forwarded-For", false},
		{"Cookie", false},
		{"Origin", false},
		{"If-Modified-Since", false},
		{"Range", false},
		{"x-custom2", false},
	} {
		if got := forwardHeader([]byte(tt.name), signed); got != tt.want {
			t.Errorf("forwardHeader(%q, signed) = %v; want %v", tt.name, got, tt.want)
		}
	}
	// auth: none: no client signature, everything is forwarded as before.
	for _, name := range []string{"x-amz-meta-b", "x-amz-tagging", "X-Forwarded-For", "User-Agent"} {
		if !forwardHeader([]byte(name), nil) {
			t.Errorf("forwardHeader(%q, nil) = false; want true (auth none)", name)
		}
	}
	// An empty list (a signature that could not be read) forwards only the unsigned-OK table.
	if forwardHeader([]byte("x-custom"), []byte{}) || !forwardHeader([]byte("Content-Type"), []byte{}) {
		t.Error("forwardHeader with an empty list")
	}
}
