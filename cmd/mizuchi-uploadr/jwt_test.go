package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// jwtConfigYAML is a one-bucket config accepting SigV4 or a JWT (ES256 from a JWKS, or HS256).
func jwtConfigYAML(addr, admin, upBucket, endpoint, jwks string) string {
	return fmt.Sprintf(`server: {address: %q, event_loops: 2}
metrics: {enabled: true, address: %q}
buckets:
  - name: uploads
    s3: {bucket: %s, region: us-east-1, endpoint: %q, access_key: "${UP_AK}", secret_key: "${UP_SK}"}
    auth:
      sigv4: {credentials: [{access_key: %s, secret_key: "${CLIENT_SK}"}]}
      jwt:
        algorithms: [ES256, HS256]
        jwks_url: %q
        secret: "${JWT_SECRET}"
        issuer: "https://idp.test"
        audience: uploads
        leeway: 5s
        token_sources: [{header: Authorization, prefix: "Bearer "}, {query: token}]
`, addr, admin, upBucket, endpoint, clientAK, jwks)
}

// The binary with an auth.jwt bucket: ready once its JWKS was fetched; curl uploads with a
// bearer token and with ?token=; the access log says principal=alice auth=jwt and never holds the
// token; the metric counts jwt; -check warns about an unreachable JWKS and passes.
func TestJWTProcess(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "jwt")
	k, idp := startJWKS(t)
	defer idp.Close()

	dir := publicTempDir(t)
	addr := fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(jwtConfigYAML(addr, admin, "jwt", up.Endpoint, idp.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	envv := append(os.Environ(), "UP_AK="+up.AccessKey, "UP_SK="+up.SecretKey, "CLIENT_SK="+clientSK,
		"JWT_SECRET=process-test-jwt-secret-0123456789")
	cmd := exec.Command(binPath, "-config", path)
	cmd.Env = envv
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("proxy did not exit after SIGTERM")
		}
	}
	defer func() {
		stop()
		if t.Failed() {
			t.Logf("proxy stderr:\n%s", stderr.String())
		}
	}()
	r := &running{cmd: cmd, addr: addr, admin: admin}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy not ready")
		}
	}

	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "alice", "iss": "https://idp.test",
		"aud": "uploads", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	jwtUploads(t, r, up, dir, tok)
	stop()
	log := stdout.String()
	if strings.Count(log, "principal=alice") != 2 || strings.Count(log, "auth=jwt") != 2 {
		t.Errorf("access log: want 2 lines with principal=alice auth=jwt:\n%s", log)
	}
	if strings.Contains(log+stderr.String(), tok[strings.LastIndexByte(tok, '.')+1:]) {
		t.Error("a token's signature was logged")
	}
	checkJWKSReachability(t, path, envv, addr, admin, up.Endpoint)
}

// startJWKS serves a JWKS holding one ES256 key (kid k1) and returns the key and the server.
func startJWKS(t *testing.T) (*ecdsa.PrivateKey, *httptest.Server) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := k.PublicKey.Bytes()
	enc := base64.RawURLEncoding.EncodeToString
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"keys":[{"kty":"EC","kid":"k1","crv":"P-256","x":%q,"y":%q}]}`, enc(pub[1:33]), enc(pub[33:]))
	}))
	return k, idp
}

// jwtUploads: curl uploads through r with tok as a bearer token and as ?token= (both stored
// upstream), a tampered token is AccessDenied, and the metric counts two jwt authentications.
func jwtUploads(t *testing.T, r *running, up *s3test.Server, dir, tok string) {
	t.Helper()
	addr := r.addr
	// No kid: a JWKS holding a single key verifies a token without one.
	file := filepath.Join(dir, "body.txt")
	if err := os.WriteFile(file, []byte("uploaded with a bearer token"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		key  string
		args []string
	}{
		{"bearer.txt", []string{"-H", "Authorization: Bearer " + tok, "http://" + addr + "/uploads/bearer.txt"}},
		{"query.txt", []string{"http://" + addr + "/uploads/query.txt?token=" + tok}},
	} {
		out, err := exec.Command("curl", append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}", "-T", file}, c.args...)...).CombinedOutput()
		if err != nil || string(out) != "200" {
			t.Fatalf("curl %s: %v %s", c.key, err, out)
		}
		if got, _ := up.GetObject(t, "jwt", c.key); string(got) != "uploaded with a bearer token" {
			t.Fatalf("%s stored %q", c.key, got)
		}
	}
	out, _ := exec.Command("curl", "-sS", "-T", file, "-H", "Authorization: Bearer "+tok[:len(tok)-4]+"AAAA",
		"http://"+addr+"/uploads/bad.txt").CombinedOutput()
	if !strings.Contains(string(out), "<Code>AccessDenied</Code>") || !strings.Contains(string(out), "Invalid token") {
		t.Errorf("tampered token: %s", out)
	}
	if n := r.metric(t, `mizuchi_authenticated_requests_total{method="jwt"}`); n != 2 {
		t.Errorf("jwt authentications = %v; want 2", n)
	}
}

// checkJWKSReachability: -check with a reachable JWKS passes quietly; an unreachable one is a
// warning, not a failure; the proxy run with it listens but is not ready, and /readyz says why.
// It rewrites the config at path.
func checkJWKSReachability(t *testing.T, path string, envv []string, addr, admin, endpoint string) {
	t.Helper()
	// -check: a reachable JWKS passes quietly; an unreachable one is a warning, not a failure.
	chk := exec.Command(binPath, "-check", "-config", path)
	chk.Env = envv
	if out, err := chk.CombinedOutput(); err != nil || strings.Contains(string(out), "warning") ||
		!strings.Contains(string(out), "(auth sigv4 or jwt)") {
		t.Errorf("-check with a live JWKS: %v %s", err, out)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + l.Addr().String() + "/jwks"
	l.Close()
	if err := os.WriteFile(path, []byte(jwtConfigYAML(addr, admin, "jwt", endpoint, dead)), 0o644); err != nil {
		t.Fatal(err)
	}
	chk = exec.Command(binPath, "-check", "-config", path)
	chk.Env = envv
	if out, err := chk.CombinedOutput(); err != nil || !strings.Contains(string(out), "warning: bucket uploads: auth.jwt: jwks "+dead) {
		t.Errorf("-check with an unreachable JWKS: %v %s", err, out)
	}
	// Run with the unreachable JWKS: listening, but not ready, and /readyz says why.
	run := exec.Command(binPath, "-config", path)
	run.Env = envv
	run.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = run.Process.Kill(); _ = run.Wait() }()
	var why string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 && strings.Contains(string(b), "auth.jwt") {
			why = string(b)
			break
		}
	}
	if !strings.Contains(why, "bucket uploads: auth.jwt: jwks "+dead) {
		t.Errorf("/readyz with an unreachable JWKS: %q; want 503 naming the bucket and the JWKS", why)
	}
}
