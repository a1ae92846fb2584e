package engine

import (
	"net/url"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/uploadid"
)

// The engines of the internal tests have no UploadIDSecrets and one upstream secret: their
// buckets' Sealers use the key derived from it, and so does testSealer.
const testUpstreamSecret = "upstream-secret"

var testSealer, _ = uploadid.New(uploadid.DeriveKey([]byte(testUpstreamSecret)))

// withUploadToken returns query with its uploadId value (percent-encoded, as on the wire) replaced
// by the token a CreateMultipartUpload by principal for path (/bucket/key, path style) would
// have returned for that upstream id. An empty or unsealable value is left as is.
func withUploadToken(tb testing.TB, principal, path, query string) string {
	tb.Helper()
	parts := strings.Split(query, "&")
	for i, kv := range parts {
		k, v, ok := strings.Cut(kv, "=")
		if k != "uploadId" || !ok || v == "" {
			continue
		}
		id, err := url.PathUnescape(v)
		if err != nil {
			continue
		}
		parts[i] = "uploadId=" + testToken(tb, principal, path, id)
	}
	return strings.Join(parts, "&")
}

// testToken seals id for principal and the bucket and key of path (/bucket/key, path style,
// percent-encoded); an id too long to seal comes back as is.
func testToken(tb testing.TB, principal, path, id string) string {
	tb.Helper()
	bucket, rawKey, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	key, err := url.PathUnescape(rawKey)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := testSealer.Seal(nil, []byte(id), &uploadid.Binding{Principal: principal, Bucket: bucket, Key: []byte(key)})
	if err != nil {
		return id
	}
	return string(tok)
}

// openTestToken returns the upstream id token carries for principal, bucket and key.
func openTestToken(principal, bucket, key string, token []byte) (string, error) {
	id, err := testSealer.Open(nil, token, &uploadid.Binding{Principal: principal, Bucket: bucket, Key: []byte(key)})
	return string(id), err
}
