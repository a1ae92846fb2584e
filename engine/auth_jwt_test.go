package engine_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/jwtauth"
)

// jwtSecret is the HS256 secret of the JWT tests.
var jwtSecret = []byte("engine-test-secret-0123456789abcdef")

// jwtEnv is an identity provider run by the test: RSA and EC keys it generated, served as a JWKS
// on loopback, and a secret.
type jwtEnv struct {
	rsa  *rsa.PrivateKey
	ec   *ecdsa.PrivateKey
	srv  *httptest.Server
	mu   sync.Mutex
	keys []map[string]string
}

func startJWTEnv(t *testing.T) *jwtEnv {
	t.Helper()
	j := &jwtEnv{}
	j.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	j.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	enc := base64.RawURLEncoding.EncodeToString
	pub, _ := j.ec.PublicKey.Bytes()
	j.keys = []map[string]string{
		{"kty": "RSA", "kid": "rsa-1", "use": "sig", "n": enc(j.rsa.N.Bytes()), "e": enc(big.NewInt(int64(j.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": enc(pub[1:33]), "y": enc(pub[33:])},
	}
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		defer j.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": j.keys})
	}))
	t.Cleanup(j.srv.Close)
	return j
}

// verifier returns a started verifier for HS256, RS256 and ES256 (issuer idp, audience uploads).
func (j *jwtEnv) verifier(t *testing.T) *jwtauth.Verifier {
	t.Helper()
	v, err := jwtauth.New(jwtauth.Config{Algorithms: []string{"HS256", "RS256", "ES256"}, Secret: jwtSecret,
		JWKSURL: j.srv.URL, Issuer: "https://idp.test", Audience: "uploads", Leeway: 5 * time.Second,
		MinRefreshInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { v.Run(ctx, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return v
}

// token signs claims (sub alice, valid for an hour unless overridden; a nil value deletes).
func (j *jwtEnv) token(t *testing.T, alg string, kid string, kv ...any) string {
	t.Helper()
	c := jwt.MapClaims{"sub": "alice", "iss": "https://idp.test", "aud": "uploads", "team": "red",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	var m jwt.SigningMethod
	var key any
	switch alg {
	case "HS256":
		m, key = jwt.SigningMethodHS256, jwtSecret
	case "RS256":
		m, key = jwt.SigningMethodRS256, j.rsa
	case "ES256":
		m, key = jwt.SigningMethodES256, j.ec
	case "none":
		m, key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType
	case "HS256-pubkey": // algorithm confusion: HS256 keyed with the RSA public key's PEM
		der, _ := x509.MarshalPKIXPublicKey(&j.rsa.PublicKey)
		m, key = jwt.SigningMethodHS256, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withJWT makes the proxy's bucket accept bearer tokens (Authorization: Bearer, ?token=) beside
// its SigV4 credentials.
func withJWT(v *jwtauth.Verifier) proxyOpt {
	return func(o *engine.Options) {
		o.Buckets[0].Authenticator = engine.TokenAuthenticator(v, "jwt",
			[]engine.TokenSource{{Header: "Authorization", Prefix: "Bearer "}, {Query: "token"}})
	}
}

// bearerPut sends a PutObject with a token (in the header, or in the query when query is set).
func bearerPut(t *testing.T, p *proxy, key, token string, query bool, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	u := p.Endpoint + "/" + p.Bucket + "/" + key
	if query {
		u += "?token=" + token
	}
	req, err := http.NewRequest("PUT", u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if !query {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Tokens signed with HS256 (secret), RS256 and ES256 (JWKS) upload through the proxy in the
// Authorization header and in the query, inline and spliced; SigV4 keeps working on the same
// bucket; the access log names the token's subject and method, never the token.
func TestJWTUploads(t *testing.T) {
	j := startJWTEnv(t)
	var log syncBuf
	p := startProxy(t, withJWT(j.verifier(t)), func(o *engine.Options) { o.AccessLog = slog.New(slog.NewJSONHandler(&log, nil)) })
	cases := []struct {
		key, alg, kid string
		query         bool
		size          int
	}{
		{"jwt/hs256", "HS256", "", false, 10},
		{"jwt/rs256", "RS256", "rsa-1", false, 10},
		{"jwt/es256-query", "ES256", "ec-1", true, 10},
		{"jwt/rs256-big", "RS256", "rsa-1", false, 1 << 20},
	}
	var tokens []string
	for _, c := range cases {
		tok := j.token(t, c.alg, c.kid)
		tokens = append(tokens, tok)
		body := bytes.Repeat([]byte{'j'}, c.size)
		resp, b := bearerPut(t, p, c.key, tok, c.query, body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.key, resp.StatusCode, b)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, c.key); !bytes.Equal(got, body) {
			t.Fatalf("%s: stored %d bytes; want %d", c.key, len(got), len(body))
		}
	}
	// The same token again (from the verifier's cache).
	if resp, b := bearerPut(t, p, "jwt/again", tokens[1], false, []byte("x")); resp.StatusCode != 200 {
		t.Fatalf("repeated token: %d %s", resp.StatusCode, b)
	}
	// SigV4 on the same bucket.
	if _, err := p.sdkClient(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.Bucket),
		Key: aws.String("jwt/sigv4"), Body: bytes.NewReader([]byte("sig"))}); err != nil {
		t.Fatalf("SigV4 PutObject on a JWT bucket: %v", err)
	}
	waitFor(t, "six access log lines", 5*time.Second, func() bool { return strings.Count(log.String(), "\n") >= 6 })
	jwtLines, sigLines := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		switch {
		case m["principal"] == "alice" && m["auth"] == "jwt":
			jwtLines++
		case m["principal"] == clientAK && m["auth"] == "sigv4":
			sigLines++
		default:
			t.Errorf("access log line: %s", l)
		}
	}
	if jwtLines != 5 || sigLines != 1 {
		t.Errorf("access log: %d jwt lines, %d sigv4 lines; want 5 and 1", jwtLines, sigLines)
	}
	for _, tok := range tokens {
		if strings.Contains(log.String(), tok[strings.LastIndexByte(tok, '.')+1:]) {
			t.Error("the access log holds a token's signature")
		}
	}
}

// A multipart upload authenticated by a token from create to complete.
func TestJWTMultipart(t *testing.T) {
	j := startJWTEnv(t)
	p := startProxy(t, withJWT(j.verifier(t)))
	tok := j.token(t, "ES256", "ec-1")
	do := func(method, query string, body []byte) []byte {
		req, _ := http.NewRequest(method, p.Endpoint+"/"+p.Bucket+"/jwt/mp?"+query, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s ?%s: %d %s", method, query, resp.StatusCode, b)
		}
		if e := resp.Header.Get("ETag"); e != "" {
			return []byte(e)
		}
		return b
	}
	var created struct{ UploadId string }
	if err := xml.Unmarshal(do("POST", "uploads", nil), &created); err != nil || created.UploadId == "" {
		t.Fatalf("CreateMultipartUpload: %v %q", err, created.UploadId)
	}
	etag := do("PUT", "partNumber=1&uploadId="+created.UploadId, []byte("part one"))
	do("POST", "uploadId="+created.UploadId, []byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>`+
		string(etag)+`</ETag></Part></CompleteMultipartUpload>`))
	if got, _ := upstream.GetObject(t, p.UpBucket, "jwt/mp"); string(got) != "part one" {
		t.Fatalf("stored %q", got)
	}
}

// Every bad token is refused with 403 AccessDenied naming the reason, never quoting the token,
// and nothing reaches the upstream.
func TestJWTRefusalsNeverReachUpstream(t *testing.T) {
	j := startJWTEnv(t)
	tw := startTripwire(t)
	p := startProxy(t, withJWT(j.verifier(t)), func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = tw.Endpoint })
	cases := []struct {
		name, token string
		want        string
	}{
		{"expired", j.token(t, "RS256", "rsa-1", "exp", time.Now().Add(-time.Minute).Unix()), "token is expired"},
		{"not yet valid", j.token(t, "RS256", "rsa-1", "nbf", time.Now().Add(time.Minute).Unix()), "token is not valid yet"},
		{"wrong issuer", j.token(t, "ES256", "ec-1", "iss", "https://evil.test"), "wrong issuer"},
		{"wrong audience", j.token(t, "ES256", "ec-1", "aud", "downloads"), "wrong audience"},
		{"missing exp", j.token(t, "HS256", "", "exp", nil), "no exp claim"},
		{"alg none", j.token(t, "none", ""), "algorithm is not allowed"},
		{"HS256 keyed with the RSA public key", j.token(t, "HS256-pubkey", "rsa-1"), "signature is invalid"},
		{"bad signature", tamper(j.token(t, "RS256", "rsa-1")), "signature is invalid"},
		{"unknown kid", j.token(t, "RS256", "rsa-9"), "unknown key"},
		{"RS256 token naming the EC key", j.token(t, "RS256", "ec-1"), "does not match its key"},
		{"malformed", "not-a-jwt", "malformed"},
	}
	for _, c := range cases {
		for _, query := range []bool{false, true} {
			resp, body := bearerPut(t, p, "refused", c.token, query, []byte("x"))
			if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
				t.Errorf("%s: %d %s; want 403 AccessDenied", c.name, resp.StatusCode, body)
				continue
			}
			if msg := errorMessage(t, body); !strings.Contains(msg, c.want) {
				t.Errorf("%s: message %q; want it to say %q", c.name, msg, c.want)
			}
			if len(c.token) > 20 && strings.Contains(string(body), c.token[len(c.token)-20:]) {
				t.Errorf("%s: the answer quotes the token", c.name)
			}
		}
	}
	// An empty token, and no credential at all.
	for _, query := range []bool{false, true} {
		resp, body := bearerPut(t, p, "refused", "", query, []byte("x"))
		wantS3Error(t, resp, body, 403, "AccessDenied")
	}
	resp, body := p.do(t, []byte("PUT /"+p.Bucket+"/anon HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"))
	wantS3Error(t, resp, body, 403, "AccessDenied")
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("%d connections reached the upstream", n)
	}
}

// Key rotation without a restart: a token naming a new kid is refused until the refresh it
// triggers brings the key in; a token of a removed key is refused afterwards.
func TestJWTKeyRotation(t *testing.T) {
	j := startJWTEnv(t)
	p := startProxy(t, withJWT(j.verifier(t)))
	old := j.token(t, "RS256", "rsa-1")
	if resp, b := bearerPut(t, p, "rot/old", old, false, []byte("1")); resp.StatusCode != 200 {
		t.Fatalf("old key: %d %s", resp.StatusCode, b)
	}
	k2, _ := rsa.GenerateKey(rand.Reader, 2048)
	enc := base64.RawURLEncoding.EncodeToString
	j.mu.Lock()
	j.keys = []map[string]string{{"kty": "RSA", "kid": "rsa-2", "n": enc(k2.N.Bytes()), "e": enc(big.NewInt(int64(k2.E)).Bytes())}}
	j.mu.Unlock()
	j.rsa = k2
	fresh := j.token(t, "RS256", "rsa-2")
	waitFor(t, "the new key", 5*time.Second, func() bool {
		resp, _ := bearerPut(t, p, "rot/new", fresh, false, []byte("2"))
		return resp.StatusCode == 200
	})
	resp, body := bearerPut(t, p, "rot/old2", old, false, []byte("1"))
	if resp.StatusCode != 403 || !strings.Contains(errorMessage(t, body), "unknown key") {
		t.Fatalf("token of the removed key: %d %s; want 403 unknown key", resp.StatusCode, body)
	}
}

// Headers: a token request forwards x-amz-* headers (no client signature binds them; see
// auth_token.go), while a SigV4 request on the same bucket keeps the SignedHeaders rules: an
// unsigned x-amz-* header is refused and other unsigned headers are dropped.
func TestJWTHeaders(t *testing.T) {
	j := startJWTEnv(t)
	c := startCapture(t)
	p := startProxy(t, withJWT(j.verifier(t)), func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = c.Endpoint })
	tok := j.token(t, "HS256", "")
	resp, body := bearerPut(t, p, "hdr", tok, false, []byte("x"), "X-Amz-Meta-Team", "red", "X-Custom", "1")
	if resp.StatusCode != 200 {
		t.Fatalf("token PUT: %d %s", resp.StatusCode, body)
	}
	h := c.last(t)
	if h.Get("X-Amz-Meta-Team") != "red" || h.Get("X-Custom") != "1" {
		t.Errorf("token request: headers not forwarded: %v", h)
	}
	for k, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, tok[:20]) {
				t.Errorf("the token went upstream in %s", k)
			}
		}
	}
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/sig", Body: []byte("x")}
	resp, body = p.do(t, injectHeaders(r.bytes(t, p.Addr), "x-amz-meta-unsigned: 1"))
	wantS3Error(t, resp, body, 403, "AccessDenied")
	r = rawReq{Method: "PUT", Path: "/" + p.Bucket + "/sig", Body: []byte("x")}
	resp, body = p.do(t, injectHeaders(r.bytes(t, p.Addr), "X-Unsigned-Custom: 1"))
	if resp.StatusCode != 200 {
		t.Fatalf("SigV4 PUT: %d %s", resp.StatusCode, body)
	}
	if v := c.last(t).Get("X-Unsigned-Custom"); v != "" {
		t.Errorf("SigV4 request on a JWT bucket: unsigned X-Unsigned-Custom was forwarded")
	}
}

// tamper changes one character in the middle of a token's signature.
func tamper(tok string) string {
	i := len(tok) - 20
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}
