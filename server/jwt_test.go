package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const jwtSample = `buckets:
  - name: uploads
    s3: {bucket: my-bucket, endpoint: "http://127.0.0.1:7070", access_key: uak, secret_key: usk}
    auth:
      sigv4: {credentials: [{access_key: cak, secret_key: csk}]}
      jwt:
        algorithms: [HS256, ES256]
        %s
        secret: "${JWT_SECRET}"
        issuer: "https://idp.example"
        audience: uploads
        leeway: 30s
        token_sources: [{header: Authorization, prefix: "Bearer "}, {query: token}]
`

var jwtEnvVars = map[string]string{"JWT_SECRET": "0123456789abcdef0123456789abcdef"}

func jwtConfig(t *testing.T, keyLine string) (*Config, error) {
	t.Helper()
	c, err := ParseConfig([]byte(fmt.Sprintf(jwtSample, keyLine)), env(jwtEnvVars))
	if err != nil {
		return nil, err
	}
	c.Normalize()
	return c, c.Validate()
}

// The documented auth.jwt block parses, validates and becomes a bucket that accepts a token or
// SigV4: a token Authenticator beside the client credentials.
func TestJWTConfig(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pemFile := t.TempDir() + "/idp.pem"
	writeFile(t, pemFile, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	for _, line := range []string{`jwks_url: "https://idp.example/.well-known/jwks.json"`, "public_key_file: " + pemFile} {
		c, err := jwtConfig(t, line)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		j := c.Buckets[0].Auth.JWT
		if j == nil || j.Secret != jwtEnvVars["JWT_SECRET"] || time.Duration(j.Leeway) != 30*time.Second || len(j.TokenSources) != 2 || j.TokenSources[1].Query != "token" {
			t.Fatalf("%s: auth.jwt = %+v", line, j)
		}
		o, err := c.EngineOptions(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := o.Buckets[0]
		if _, ok := b.Authenticator.(*jwtAuthenticator); !ok || b.Credentials["cak"] != "csk" {
			t.Errorf("%s: engine bucket: authenticator %T, credentials %v", line, b.Authenticator, b.Credentials)
		}
	}
	// JWT only: no sigv4 credentials needed.
	y := strings.Replace(fmt.Sprintf(jwtSample, ""), "      sigv4: {credentials: [{access_key: cak, secret_key: csk}]}\n", "", 1)
	y = strings.Replace(y, "[HS256, ES256]", "[HS256]", 1)
	c, err := ParseConfig([]byte(y), env(jwtEnvVars))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatalf("jwt-only bucket: %v", err)
	}
}

// Every problem of an auth.jwt block is reported with its bucket and key.
func TestJWTConfigErrors(t *testing.T) {
	cases := []struct{ edit, want string }{
		{"jwks_uri: x", `unknown key "jwks_uri" in buckets[0].auth.jwt`},
		{"", "jwks_url or public_key_file: required"},
		{"public_key_file: /nonexistent.pem", "auth.jwt.public_key_file"},
		{`jwks_url: "ftp://idp"`, "http or https"},
	}
	for _, c := range cases {
		_, err := jwtConfig(t, c.edit)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v; want an error with %q", c.edit, err, c.want)
		}
	}
	for _, c := range []struct{ from, to, want string }{
		{"[HS256, ES256]", "[HS256, none]", `"none" is not one of`},
		{`"${JWT_SECRET}"`, "short", "at least 32 bytes"},
		{"{header: Authorization,", "{header: X-Token,", "only Authorization"},
		{"{query: token}", "{query: uploadId}", "an S3 parameter"},
	} {
		y := strings.Replace(fmt.Sprintf(jwtSample, `jwks_url: "https://idp"`), c.from, c.to, 1)
		cfg, err := ParseConfig([]byte(y), env(jwtEnvVars))
		if err == nil {
			cfg.Normalize()
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `bucket "uploads": auth.jwt`) {
			t.Errorf("%s -> %s: %v; want an error with %q", c.from, c.to, err, c.want)
		}
	}
}

// An unreachable JWKS is a readiness failure at run time and a warning for -check; once it
// answers, both clear.
func TestJWKSReadinessAndCheck(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String() + "/jwks.json"
	l.Close()
	c, err := jwtConfig(t, `jwks_url: "`+dead+`"`)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.CheckWarnings(); len(w) != 1 || !strings.Contains(w[0], `bucket uploads: auth.jwt: jwks `+dead) {
		t.Errorf("CheckWarnings with an unreachable JWKS = %q", w)
	}
	o, _ := c.EngineOptions(nil, nil)
	r := &jwksRunner{log: slog.New(slog.DiscardHandler)}
	r.start(jwtAuthenticators(o))
	defer r.stop()
	if bad := r.ready(); len(bad) != 1 || !strings.Contains(bad[0], "bucket uploads") {
		t.Errorf("ready with an unreachable JWKS = %q", bad)
	}

	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := k.PublicKey.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":%q,"y":%q}]}`, enc(pub[1:33]), enc(pub[33:]))
	}))
	defer srv.Close()
	c, err = jwtConfig(t, `jwks_url: "`+srv.URL+`"`)
	if err != nil {
		t.Fatal(err)
	}
	if w := c.CheckWarnings(); len(w) != 0 {
		t.Errorf("CheckWarnings with a live JWKS = %q", w)
	}
	o, _ = c.EngineOptions(nil, nil)
	r.start(jwtAuthenticators(o)) // a reload: the new buckets' refreshers replace the old ones
	waitFor(t, func() bool { return len(r.ready()) == 0 })
}

// A reload fetches the new buckets' JWKS before they take requests and replaces the refreshers.
func TestJWTReload(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := k.PublicKey.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"keys":[{"kty":"EC","kid":"a","crv":"P-256","x":%q,"y":%q}]}`, enc(pub[1:33]), enc(pub[33:]))
	}))
	defer srv.Close()
	if _, err := jwtConfig(t, `public_key_file: /dev/null`); err == nil || !strings.Contains(err.Error(), "public_key_file /dev/null is empty") {
		t.Fatalf("an empty public key file: %v", err)
	}
	c, err := ParseConfig([]byte(sample), env(sampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	s, err := New(c, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.jwks.stop()
	if bad := s.jwks.ready(); len(bad) != 0 {
		t.Fatalf("no jwt bucket: %q", bad)
	}
	if err := s.Reload(func() (*Config, error) { return jwtConfig(t, `jwks_url: "`+srv.URL+`"`) }); err != nil {
		t.Fatal(err)
	}
	if bad := s.jwks.ready(); len(bad) != 0 {
		t.Fatalf("after a reload to a jwt bucket with a live JWKS: %q", bad)
	}
}
