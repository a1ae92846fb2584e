//go:build !race

package engine

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/jwtauth"
)

// A request with a token the verifier has cached is authenticated without an allocation and
// without a signature verification, on a bucket that accepts SigV4 as well (in the header and
// in the query).
func TestInLoopTokenAuthAllocs(t *testing.T) {
	now := time.Now()
	secret := []byte("alloc-test-secret-0123456789abcdef")
	v, err := jwtauth.New(jwtauth.Config{Algorithms: []string{"HS256"}, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Buckets: []Bucket{{Name: "b",
		Upstream:      Upstream{Endpoint: "http://127.0.0.1:1", Bucket: "up", AccessKey: "UPAK", SecretKey: "upsk"},
		Credentials:   map[string]string{"AKID": "secret"},
		Authenticator: TokenAuthenticator(v, "jwt", []TokenSource{{Header: "Authorization", Prefix: "Bearer "}, {Query: "token"}})}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, head := range []string{
		"PUT /b/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nContent-Length: 0\r\n\r\n",
		"PUT /b/k?token=" + tok + " HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	} {
		buf := []byte(head)
		var p httpparse.Parser
		req := new(httpparse.Request)
		if err := p.Parse(buf, e.limits, req); err != nil {
			t.Fatal(err)
		}
		h := Head{req: req, buf: buf}
		auth := e.table.Load().buckets[0].auth
		run := func() {
			pr, s3err := auth.Authenticate(&h)
			if s3err != nil || pr.ID != "alice" || pr.Method != "jwt" {
				t.Fatalf("Authenticate = %+v, %v", pr, s3err)
			}
		}
		run() // verifies and caches
		if n := testing.AllocsPerRun(100, run); n != 0 {
			t.Errorf("token authentication with a cached token: %v allocs per run; want 0", n)
		}
	}
}
