package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mizuchi/uploadr/internal/browsertest"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// Uploads from a real browser: headless Chromium (internal/browsertest) opens a page on one
// loopback origin, and the page's scripts upload to the proxy binary on another origin, so
// Chromium's own CORS checks (preflights included) decide what may be sent and read. The objects
// are checked on versitygw byte for byte.

// browserJWTSecret is the HS256 key the bucket verifies bearer tokens with.
const browserJWTSecret = "browser-test-jwt-secret-0123456789abcdef"

// browserEnv is the proxy binary (bucket "uploads": SigV4, HS256 bearer tokens, CORS rules that
// allow Page's origin) in front of versitygw, a Chromium, the page's origin with a backend that
// signs URLs (GET /sign) and another origin no rule allows.
type browserEnv struct {
	Up       *s3test.Server
	UpBucket string
	Proxy    *running
	Endpoint string // the proxy, "http://127.0.0.1:PORT"
	Browser  *browsertest.Browser
	Page     *browsertest.Origin // allowed by the bucket's CORS rules
	Other    *browsertest.Origin // allowed by none
}

// startBrowserEnv starts it all; extraBucketYAML is appended to the bucket's entry (indented by
// four spaces, as the bucket's keys are).
func startBrowserEnv(t *testing.T, extraBucketYAML string) *browserEnv {
	t.Helper()
	be := &browserEnv{Up: s3test.Start(t), UpBucket: "browser"}
	be.Up.CreateBucket(t, be.UpBucket)
	be.Page = browsertest.NewOrigin(t)
	be.Other = browsertest.NewOrigin(t)
	be.Page.Handle("/sign", http.HandlerFunc(be.sign))

	dir := publicTempDir(t)
	addr := fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
	cfg := fmt.Sprintf(`server: {address: %q, event_loops: 2}
metrics: {enabled: true, address: %q}
buckets:
  - name: uploads
    s3: {bucket: %s, region: us-east-1, endpoint: %q, access_key: "${UP_AK}", secret_key: "${UP_SK}"}
    auth:
      sigv4: {credentials: [{access_key: %s, secret_key: "${CLIENT_SK}"}]}
      jwt: {algorithms: [HS256], secret: "${JWT_SECRET}", audience: uploads}
    cors:
      - allowed_origins: [%q]
        allowed_methods: [PUT, POST, DELETE]
        allowed_headers: ["*"]
        expose_headers: [ETag, x-amz-version-id, x-amz-checksum-crc32]
        max_age_seconds: 3000
`, addr, admin, be.UpBucket, be.Up.Endpoint, clientAK, be.Page.URL) + extraBucketYAML
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, "-config", path)
	cmd.Env = append(os.Environ(), "UP_AK="+be.Up.AccessKey, "UP_SK="+be.Up.SecretKey, "CLIENT_SK="+clientSK,
		"JWT_SECRET="+browserJWTSecret)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	be.Proxy = &running{cmd: cmd, addr: addr, admin: admin, stderr: &stderr}
	be.Endpoint = "http://" + addr
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("proxy did not exit after SIGTERM")
		}
		if t.Failed() {
			t.Logf("proxy stderr:\n%s", stderr.String())
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy not ready:\n%s", stderr.String())
		}
	}
	be.Browser = browsertest.Start(t)
	return be
}

// Presign returns a URL for method on key (and the raw query, "" for none) of bucket "uploads",
// signed with the client's credentials for 5 minutes (UNSIGNED-PAYLOAD), as a backend hands out.
func (be *browserEnv) Presign(t testing.TB, method, key, query string) string {
	t.Helper()
	u, err := be.presign(method, key, query)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (be *browserEnv) presign(method, key, query string) (string, error) {
	u, err := url.Parse(be.Endpoint + "/uploads/" + key)
	if err != nil {
		return "", err
	}
	if query != "" {
		query += "&"
	}
	u.RawQuery = query + "X-Amz-Expires=300"
	req, err := http.NewRequest(method, u.String(), nil)
	if err != nil {
		return "", err
	}
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSK},
		req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now())
	return signed, err
}

// sign is the page origin's backend: GET /sign?method=M&key=K&query=Q answers a presigned URL.
func (be *browserEnv) sign(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	u, err := be.presign(q.Get("method"), q.Get("key"), q.Get("query"))
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	_, _ = w.Write([]byte(u))
}

// Preflights returns the proxy's count of CORS preflights answered, allowed or refused.
func (be *browserEnv) Preflights(t testing.TB, result string) float64 {
	t.Helper()
	return be.Proxy.metric(t.(*testing.T), `mizuchi_cors_preflights_total{result="`+result+`"}`)
}

// fetchResult is what bt.put and bt.result return, or bt.attempt's error.
type fetchResult struct {
	Status  int               `json:"status"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
	Error   string            `json:"error"`
}

// putScript is a page script that PUTs n bytes made by bt.bytes(n, seed) to url with headers.
func putScript(u string, n int, seed uint32, headers map[string]string) string {
	h := "{"
	for k, v := range headers {
		h += strconv.Quote(k) + ":" + strconv.Quote(v) + ","
	}
	h += "}"
	return fmt.Sprintf("return bt.attempt(() => bt.put(%s, bt.bytes(%d, %d), %s));", strconv.Quote(u), n, seed, h)
}

// checkStored asserts that key holds exactly the n bytes of Bytes(n, seed) on versitygw.
func (be *browserEnv) checkStored(t *testing.T, key string, n int, seed uint32) {
	t.Helper()
	got, _ := be.Up.GetObject(t, be.UpBucket, key)
	if !bytes.Equal(got, browsertest.Bytes(n, seed)) {
		t.Errorf("%s: versitygw holds %d bytes that differ from the page's %d", key, len(got), n)
	}
}

// (a) A presigned PUT URL (aws-sdk-go-v2's PresignClient) used by a page on an allowed origin:
// preflighted, stored, and the exposed ETag is readable by the script.
func TestBrowserPresignedPut(t *testing.T) {
	be := startBrowserEnv(t, "")
	cl := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(be.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(clientAK, clientSK, "")})
	key := "browser/presigned put.bin"
	req, err := s3.NewPresignClient(cl).PresignPutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String(key)},
		s3.WithPresignExpires(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	before := be.Preflights(t, "allowed")
	const n, seed = 300_000, 1
	got := browsertest.Eval[fetchResult](t, be.Browser, be.Page.URL+"/", putScript(req.URL, n, seed, nil))
	if got.Status != 200 {
		t.Fatalf("presigned PUT from the page: %+v", got)
	}
	be.checkStored(t, key, n, seed)
	_, head := be.Up.GetObject(t, be.UpBucket, key)
	if got.Headers["etag"] == "" || got.Headers["etag"] != aws.ToString(head.ETag) {
		t.Errorf("ETag the script read: %q; versitygw's %q", got.Headers["etag"], aws.ToString(head.ETag))
	}
	if after := be.Preflights(t, "allowed"); after-before != 1 {
		t.Errorf("allowed preflights: %v more; want 1 (the page must be cross-origin)", after-before)
	}
}

// (c) A fetch PUT with Authorization: Bearer <jwt> from an allowed origin.
func TestBrowserBearerToken(t *testing.T) {
	be := startBrowserEnv(t, "")
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "browser-user", "aud": "uploads",
		"exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(browserJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	before := be.Preflights(t, "allowed")
	key := "browser/bearer.bin"
	const n, seed = 2 << 20, 2
	got := browsertest.Eval[fetchResult](t, be.Browser, be.Page.URL+"/",
		putScript(be.Endpoint+"/uploads/"+key, n, seed, map[string]string{"Authorization": "Bearer " + tok}))
	if got.Status != 200 || got.Headers["etag"] == "" {
		t.Fatalf("bearer PUT from the page: %+v", got)
	}
	be.checkStored(t, key, n, seed)
	if after := be.Preflights(t, "allowed"); after-before != 1 {
		t.Errorf("allowed preflights: %v more; want 1", after-before)
	}
	// A tampered token: the proxy's 403 reaches the script (it carries the CORS headers), which
	// can read S3's error code.
	got = browsertest.Eval[fetchResult](t, be.Browser, be.Page.URL+"/",
		putScript(be.Endpoint+"/uploads/browser/tampered.bin", 10, 3, map[string]string{"Authorization": "Bearer " + tok + "x"}))
	if got.Status != 403 || !strings.Contains(got.Body, "<Code>AccessDenied</Code>") {
		t.Errorf("tampered token: %+v; want 403 AccessDenied readable by the script", got)
	}
	if be.Up.ObjectExists(t, be.UpBucket, "browser/tampered.bin") {
		t.Errorf("a tampered token stored an object")
	}
}

// multipartScript uploads a 20 MiB file made in the page as a multipart upload (8 MiB parts)
// with URLs the page's backend presigns: CreateMultipartUpload, each UploadPart (the ETag read
// from the exposed header), CompleteMultipartUpload.
const multipartScript = `
const file = new File([bt.bytes(20 << 20, SEED)], "big.bin");
const sign = async (method, query) =>
  (await fetch("/sign?method=" + method + "&key=" + encodeURIComponent(KEY) + "&query=" + encodeURIComponent(query))).text();
let r = await fetch(await sign("POST", "uploads"), {method: "POST"});
const created = await r.text();
if (r.status !== 200) return {step: "create", status: r.status, body: created};
const uploadId = new DOMParser().parseFromString(created, "application/xml").getElementsByTagName("UploadId")[0].textContent;
const q = "uploadId=" + encodeURIComponent(uploadId);
const partSize = 8 << 20, parts = [];
for (let n = 1, off = 0; off < file.size; n++, off += partSize) {
  r = await fetch(await sign("PUT", "partNumber=" + n + "&" + q), {method: "PUT", body: file.slice(off, off + partSize)});
  if (r.status !== 200) return {step: "part " + n, status: r.status, body: await r.text()};
  parts.push({n, etag: r.headers.get("ETag")});
}
const doc = "<CompleteMultipartUpload>" +
  parts.map(p => "<Part><PartNumber>" + p.n + "</PartNumber><ETag>" + p.etag + "</ETag></Part>").join("") +
  "</CompleteMultipartUpload>";
r = await fetch(await sign("POST", q), {method: "POST", body: doc});
return {step: "complete", status: r.status, body: await r.text(), etags: parts.map(p => p.etag), etag: r.headers.get("ETag")};
`

// (d) A multipart upload of a 20 MiB file made in the page, through presigned
// CreateMultipartUpload, UploadPart and CompleteMultipartUpload URLs.
func TestBrowserMultipart(t *testing.T) {
	be := startBrowserEnv(t, "")
	key := "browser/multipart.bin"
	const seed = 4
	before := be.Preflights(t, "allowed")
	script := "const KEY = " + strconv.Quote(key) + ", SEED = " + strconv.Itoa(seed) + ";\n" + multipartScript
	got := browsertest.Eval[struct {
		Step   string   `json:"step"`
		Status int      `json:"status"`
		Body   string   `json:"body"`
		ETags  []string `json:"etags"`
		ETag   *string  `json:"etag"`
	}](t, be.Browser, be.Page.URL+"/", script)
	if got.Step != "complete" || got.Status != 200 || !strings.Contains(got.Body, "<CompleteMultipartUploadResult") {
		t.Fatalf("multipart from the page: %+v", got)
	}
	if len(got.ETags) != 3 {
		t.Errorf("part ETags the script read: %q; want 3", got.ETags)
	}
	for _, e := range got.ETags {
		if e == "" {
			t.Errorf("an UploadPart ETag was not readable: %q", got.ETags)
		}
	}
	be.checkStored(t, key, 20<<20, seed)
	// The three PUTs are preflighted. Create and Complete are POSTs without a body or with a
	// text/plain one, CORS "simple requests" sent without a preflight: the script could read
	// their answers only because those carried Access-Control-Allow-Origin.
	if after := be.Preflights(t, "allowed"); after-before != 3 {
		t.Errorf("allowed preflights: %v more; want 3", after-before)
	}
}

// A page on an origin no rule allows: the preflight is refused, Chromium's CORS check blocks
// the PUT (the script sees a TypeError), and nothing is stored.
func TestBrowserDisallowedOrigin(t *testing.T) {
	be := startBrowserEnv(t, "")
	key := "browser/disallowed.bin"
	before := be.Preflights(t, "refused")
	got := browsertest.Eval[fetchResult](t, be.Browser, be.Other.URL+"/", putScript(be.Presign(t, "PUT", key, ""), 1000, 5, nil))
	if got.Error != "TypeError: Failed to fetch" {
		t.Errorf("PUT from a disallowed origin: %+v; want the browser's TypeError", got)
	}
	if after := be.Preflights(t, "refused"); after-before != 1 {
		t.Errorf("refused preflights: %v more; want 1", after-before)
	}
	if be.Up.ObjectExists(t, be.UpBucket, key) {
		t.Errorf("a PUT from a disallowed origin stored %s", key)
	}
	// The same URL from the allowed origin works: the refusal was the origin's.
	got = browsertest.Eval[fetchResult](t, be.Browser, be.Page.URL+"/", putScript(be.Presign(t, "PUT", key, ""), 1000, 5, nil))
	if got.Status != 200 {
		t.Fatalf("the same PUT from the allowed origin: %+v", got)
	}
	be.checkStored(t, key, 1000, 5)
}
