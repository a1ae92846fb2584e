package jwtauth

import (
	"testing"
	"time"
)

// parseJWKS never panics, and a set it returns holds only usable keys.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},{"kty":"OKP","crv":"Ed25519","x":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := parseJWKS(b)
		if err == nil && len(ks.keys) == 0 {
			t.Fatal("a key set without keys was accepted")
		}
		for kid, k := range ks.keysOrNil() {
			if k.key == nil {
				t.Fatalf("kid %q: nil key", kid)
			}
		}
	})
}

func (s *keySet) keysOrNil() map[string]jwk {
	if s == nil {
		return nil
	}
	return s.keys
}

// VerifyToken never panics and never accepts a token it was not given a key for.
func FuzzVerifyToken(f *testing.F) {
	f.Add([]byte("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwiZXhwIjo5OTk5OTk5OTk5fQ."))
	f.Add([]byte("eyJhbGciOiJIUzI1NiJ9.e30.AAAA"))
	v, err := New(Config{Algorithms: []string{"HS256", "RS256"}, Secret: []byte("fuzz-secret-0123456789abcdef0123"),
		JWKSURL: "http://127.0.0.1:1/jwks", Now: func() time.Time { return time.Unix(1e9, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok []byte) {
		if sub, _, err := v.VerifyToken(tok); err == nil {
			t.Fatalf("accepted a fuzzed token (sub %q)", sub)
		}
	})
}
