package jwtauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi/uploadr/jwtauth"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// jwksServer serves a JWK set the test changes; it counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	fail    bool
	fetches atomic.Int32
}

func startJWKS(t *testing.T) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(fail bool, keys ...map[string]string) {
	s.mu.Lock()
	s.keys, s.fail = keys, fail
	s.mu.Unlock()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PrivateKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PrivateKey) map[string]string {
	pub, _ := k.PublicKey.Bytes() // 0x04 || X || Y
	n := (len(pub) - 1) / 2
	return map[string]string{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(pub[1 : 1+n]), "y": b64(pub[1+n:])}
}

func sign(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func claims(kv ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "iss": "https://idp.test", "aud": "uploads",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
			continue
		}
		c[kv[i].(string)] = kv[i+1]
	}
	return c
}

func newVerifier(t *testing.T, cfg jwtauth.Config) *jwtauth.Verifier {
	t.Helper()
	cfg.Issuer, cfg.Audience = "https://idp.test", "uploads"
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return now }
	}
	v, err := jwtauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHS256(t *testing.T) {
	v := newVerifier(t, jwtauth.Config{Algorithms: []string{"HS256"}, Secret: secret, Leeway: 30 * time.Second})
	tok := sign(t, jwt.SigningMethodHS256, secret, "", claims("scope", "up"))
	for range 2 { // the second comes from the cache
		sub, c, err := v.VerifyToken([]byte(tok))
		if err != nil || sub != "alice" || c["scope"] != "up" {
			t.Fatalf("VerifyToken = %q, %v, %v; want alice with scope up", sub, c, err)
		}
	}
}

func TestRefusals(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	v := newVerifier(t, jwtauth.Config{Algorithms: []string{"RS256"}, PublicKeyPEM: pubPEM, Leeway: 30 * time.Second})
	hs := newVerifier(t, jwtauth.Config{Algorithms: []string{"HS256"}, Secret: secret})
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims())
	cases := []struct {
		name string
		v    *jwtauth.Verifier
		tok  string
		want error
	}{
		{"valid", v, sign(t, jwt.SigningMethodRS256, rk, "", claims()), nil},
		{"expired within leeway", v, sign(t, jwt.SigningMethodRS256, rk, "", claims("exp", now.Add(-20*time.Second).Unix())), nil},
		{"expired", v, sign(t, jwt.SigningMethodRS256, rk, "", claims("exp", now.Add(-time.Minute).Unix())), jwtauth.ErrExpired},
		{"not yet valid", v, sign(t, jwt.SigningMethodRS256, rk, "", claims("nbf", now.Add(time.Minute).Unix())), jwtauth.ErrNotYetValid},
		{"issued in the future", v, sign(t, jwt.SigningMethodRS256, rk, "", claims("iat", now.Add(time.Minute).Unix())), jwtauth.ErrIssuedInFuture},
		{"wrong issuer", v, sign(t, jwt.SigningMethodRS256, rk, "", claims("iss", "https://evil.test")), jwtauth.ErrIssuer},
		{"wrong audience", v, sign(t, jwt.SigningMethodRS256, rk, "", claims("aud", "downloads")), jwtauth.ErrAudience},
		{"missing exp", v, sign(t, jwt.SigningMethodRS256, rk, "", claims("exp", nil)), jwtauth.ErrMissingExp},
		{"missing sub", v, sign(t, jwt.SigningMethodRS256, rk, "", claims("sub", nil)), jwtauth.ErrMissingSubject},
		{"bad signature", v, sign(t, jwt.SigningMethodRS256, other, "", claims()), jwtauth.ErrSignature},
		{"alg none", v, none, jwtauth.ErrAlgorithm},
		{"alg none, HS verifier", hs, none, jwtauth.ErrAlgorithm},
		{"HS256 signed with the RSA public key", v, sign(t, jwt.SigningMethodHS256, pubPEM, "", claims()), jwtauth.ErrAlgorithm},
		{"RS256 alg not configured", hs, sign(t, jwt.SigningMethodRS256, rk, "", claims()), jwtauth.ErrAlgorithm},
		{"HS256 wrong secret", hs, sign(t, jwt.SigningMethodHS256, []byte("another secret, 32 bytes long!!!"), "", claims()), jwtauth.ErrSignature},
		{"malformed", v, "a.b", jwtauth.ErrMalformed},
	}
	for _, c := range cases {
		_, _, err := c.v.VerifyToken([]byte(c.tok))
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: got %v; want %v", c.name, err, c.want)
		}
		if err != nil && len(c.tok) > 8 && strings.Contains(err.Error(), c.tok[len(c.tok)-8:]) {
			t.Errorf("%s: error %q quotes the token", c.name, err)
		}
	}
}

func TestJWKSRotation(t *testing.T) {
	s := startJWKS(t)
	k1, _ := rsa.GenerateKey(rand.Reader, 2048)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s.set(false, rsaJWK("k1", k1))
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	v := newVerifier(t, jwtauth.Config{Algorithms: []string{"RS256", "ES256"}, JWKSURL: s.URL,
		MinRefreshInterval: 10 * time.Second, RefreshInterval: time.Hour,
		Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err := v.Ready(); err == nil {
		t.Fatal("Ready before the first fetch = nil; want an error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { v.Run(ctx, nil); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, func() bool { return v.Ready() == nil })

	t1 := sign(t, jwt.SigningMethodRS256, k1, "k1", claims())
	if sub, _, err := v.VerifyToken([]byte(t1)); err != nil || sub != "alice" {
		t.Fatalf("RS256 via JWKS: %q, %v", sub, err)
	}
	// Rotation: k2 appears, k1 goes. The first token naming k2 is refused and triggers a fetch.
	s.set(false, ecJWK("k2", k2))
	t2 := sign(t, jwt.SigningMethodES256, k2, "k2", claims())
	if _, _, err := v.VerifyToken([]byte(t2)); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatalf("token with a new kid before the refresh: %v; want ErrUnknownKey", err)
	}
	waitFor(t, func() bool { _, _, err := v.VerifyToken([]byte(t2)); return err == nil })
	if _, _, err := v.VerifyToken([]byte(t1)); !errors.Is(err, jwtauth.ErrUnknownKey) {
		t.Fatalf("token of the removed key k1 (cached before): %v; want ErrUnknownKey", err)
	}
	// Unknown kids trigger at most one fetch per MinRefreshInterval.
	n := s.fetches.Load()
	for i := range 20 {
		_, _, _ = v.VerifyToken([]byte(sign(t, jwt.SigningMethodES256, k2, "nope"+itoa(i), claims())))
	}
	time.Sleep(100 * time.Millisecond) // no condition to wait for: nothing must happen
	if got := s.fetches.Load(); got != n {
		t.Fatalf("unknown kids within MinRefreshInterval fetched %d times; want 0", got-n)
	}
	// A failing JWKS keeps the cached keys until MaxKeyAge (1 h by default).
	s.set(true)
	clock.Add(int64(11 * time.Second))
	_, _, _ = v.VerifyToken([]byte(sign(t, jwt.SigningMethodES256, k2, "again", claims())))
	waitFor(t, func() bool { return s.fetches.Load() > n })
	t3 := sign(t, jwt.SigningMethodES256, k2, "k2", claims("exp", now.Add(5*time.Hour).Unix()))
	if _, _, err := v.VerifyToken([]byte(t3)); err != nil {
		t.Fatalf("cached keys while the JWKS fails: %v", err)
	}
	clock.Add(int64(2 * time.Hour))
	if _, _, err := v.VerifyToken([]byte(t3)); !errors.Is(err, jwtauth.ErrNoKeys) {
		t.Fatalf("after MaxKeyAge (a token verified, and cached, before): %v; want ErrNoKeys", err)
	}
	if v.Ready() == nil {
		t.Fatal("Ready after MaxKeyAge with a failing JWKS = nil")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  jwtauth.Config
		want string
	}{
		{jwtauth.Config{}, "algorithms"},
		{jwtauth.Config{Algorithms: []string{"none"}}, "not one of"},
		{jwtauth.Config{Algorithms: []string{"HS256"}}, "secret"},
		{jwtauth.Config{Algorithms: []string{"HS256"}, Secret: []byte("short")}, "32 bytes"},
		{jwtauth.Config{Algorithms: []string{"RS256"}}, "jwks_url or public_key_file"},
		{jwtauth.Config{Algorithms: []string{"RS256"}, JWKSURL: "ftp://x"}, "http or https"},
		{jwtauth.Config{Algorithms: []string{"RS256"}, PublicKeyPEM: []byte("junk")}, "public_key_file"},
	} {
		if _, err := jwtauth.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v; want an error naming %q", c.cfg, err, c.want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met within 5 s")
}

func itoa(i int) string { return string(rune('a' + i)) }

// Every asymmetric family verifies through a JWKS (RSA, EC P-384, OKP Ed25519) and through a
// PEM key; a key whose JWK alg differs from the token's is not used.
func TestAlgorithms(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	epub, _ := ek.PublicKey.Bytes()
	opub, ok, _ := ed25519.GenerateKey(rand.Reader)
	s := startJWKS(t)
	rj := rsaJWK("rsa", rk)
	rj["alg"] = "PS256"
	s.set(false, rj,
		map[string]string{"kty": "EC", "kid": "p384", "crv": "P-384", "x": b64(epub[1:49]), "y": b64(epub[49:])},
		map[string]string{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64(opub)},
		map[string]string{"kty": "oct", "kid": "sym", "k": b64(secret)})
	v := newVerifier(t, jwtauth.Config{Algorithms: []string{"PS256", "RS384", "ES384", "EdDSA"}, JWKSURL: s.URL})
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		m    jwt.SigningMethod
		key  any
		kid  string
		want error
	}{
		{"PS256", jwt.SigningMethodPS256, rk, "rsa", nil},
		{"RS384 with a key marked PS256", jwt.SigningMethodRS384, rk, "rsa", jwtauth.ErrKeyType},
		{"ES384", jwt.SigningMethodES384, ek, "p384", nil},
		{"EdDSA", jwt.SigningMethodEdDSA, ok, "ed", nil},
		{"ES384 naming the Ed25519 key", jwt.SigningMethodES384, ek, "ed", jwtauth.ErrKeyType},
		{"oct keys in a JWKS are ignored", jwt.SigningMethodEdDSA, ok, "sym", jwtauth.ErrUnknownKey},
	} {
		_, _, err := v.VerifyToken([]byte(sign(t, c.m, c.key, c.kid, claims())))
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
	}
	der, _ := x509.MarshalPKIXPublicKey(opub)
	pv := newVerifier(t, jwtauth.Config{Algorithms: []string{"EdDSA"}, PublicKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})})
	if _, _, err := pv.VerifyToken([]byte(sign(t, jwt.SigningMethodEdDSA, ok, "any", claims()))); err != nil {
		t.Errorf("EdDSA with a PEM key: %v", err)
	}
	if err := pv.Ready(); err != nil {
		t.Errorf("Ready with a static key: %v", err)
	}
}
