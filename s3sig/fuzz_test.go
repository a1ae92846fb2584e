package s3sig_test

import (
	"bytes"
	"testing"

	"github.com/mizuchi/uploadr/s3sig"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=" + sig64,
		"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=" + sig64,
		"AWS4-HMAC-SHA256   Signature=" + sig64 + " ,SignedHeaders=host;x-amz-date,\tCredential=a/b/20130524/r/s3/aws4_request ",
		"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 Credential=,,,=,",
		"AWS4-HMAC-SHA256 Credential=////, SignedHeaders=;;, Signature=",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		var a s3sig.Authorization
		orig := bytes.Clone(v)
		err := s3sig.ParseAuthorization(v, &a)
		if !bytes.Equal(v, orig) {
			t.Fatalf("ParseAuthorization modified its input")
		}
		if err != nil {
			return
		}
		if len(a.AccessKey) == 0 || len(a.Date) != 8 || len(a.Region) == 0 || len(a.Service) == 0 ||
			len(a.SignedHeaders) == 0 || len(a.Signature) != 64 {
			t.Fatalf("accepted %q with fields %q", v, a)
		}
		// Re-assembling the parsed fields parses to the same fields.
		re := []byte("AWS4-HMAC-SHA256 Credential=")
		re = append(re, a.AccessKey...)
		re = append(re, '/')
		re = append(re, a.Date...)
		re = append(re, '/')
		re = append(re, a.Region...)
		re = append(re, '/')
		re = append(re, a.Service...)
		re = append(re, "/aws4_request, SignedHeaders="...)
		re = append(re, a.SignedHeaders...)
		re = append(re, ", Signature="...)
		re = append(re, a.Signature...)
		var b s3sig.Authorization
		if err := s3sig.ParseAuthorization(re, &b); err != nil {
			t.Fatalf("re-assembled %q: %v", re, err)
		}
		if !bytes.Equal(a.AccessKey, b.AccessKey) || !bytes.Equal(a.Region, b.Region) ||
			!bytes.Equal(a.Service, b.Service) || !bytes.Equal(a.SignedHeaders, b.SignedHeaders) ||
			!bytes.Equal(a.Signature, b.Signature) || !bytes.Equal(a.Date, b.Date) {
			t.Fatalf("re-assembled %q parsed to %q; first parse %q", re, b, a)
		}
	})
}

func FuzzCanonicalURI(f *testing.F) {
	for _, s := range []string{
		"/test.txt", "/test$file.text", "/a%20b", "/a+b", "/%c3%a9", "//x//y/./../", "/%", "/%zz", "/%2F%2f",
		"", "/日本/😀", "/a%2520b", "/\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		dec, derr := s3sig.AppendPercentDecode(nil, raw)
		canon, cerr := s3sig.CanonicalURI(nil, raw)
		if (derr == nil) != (cerr == nil) {
			t.Fatalf("decode error %v but canonical URI error %v", derr, cerr)
		}
		if derr != nil {
			return
		}
		if len(raw) > 0 {
			if enc := s3sig.AppendURIEncode(nil, dec, true); !bytes.Equal(enc, canon) {
				t.Fatalf("CanonicalURI(%q) = %q; encode(decode) = %q", raw, canon, enc)
			}
		}
		// Stable: canonicalising the canonical form changes nothing.
		again, err := s3sig.CanonicalURI(nil, canon)
		if err != nil || !bytes.Equal(again, canon) {
			t.Fatalf("CanonicalURI(%q) = %q, %v; want it unchanged", canon, again, err)
		}
		// Encoding is reversible and keeps only unreserved bytes, '/' and %XX.
		back, err := s3sig.AppendPercentDecode(nil, s3sig.AppendURIEncode(nil, dec, false))
		if err != nil || !bytes.Equal(back, dec) {
			t.Fatalf("decode(encode(%q)) = %q, %v", dec, back, err)
		}
		for i := 0; i < len(canon); i++ {
			c := canon[i]
			ok := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
				c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == '%'
			if !ok {
				t.Fatalf("CanonicalURI(%q) = %q holds byte %q", raw, canon, c)
			}
		}
		// The query form never panics and is stable too.
		q, err := s3sig.CanonicalQuery(nil, raw)
		if err == nil {
			q2, err := s3sig.CanonicalQuery(nil, q)
			if err != nil || !bytes.Equal(q, q2) {
				t.Fatalf("CanonicalQuery(%q) = %q; again %q, %v", raw, q, q2, err)
			}
		}
	})
}
