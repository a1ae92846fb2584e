package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// binPath is the proxy binary built once for the package's process-level tests.
var binPath string

func TestMain(m *testing.M) {
	if os.Getenv("MIZUCHI_PIPE_HOG") != "" {
		hogPipes() // child process: see TestUnprivilegedProxyFallsBackToCopy
		return
	}
	dir, err := os.MkdirTemp("", "mizuchi-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = os.Chmod(dir, 0o755)
	binPath = filepath.Join(dir, "mizuchi-uploadr")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	clientAK = "AKIDPROCESSTEST"
	clientSK = "process-test-secret"
)

// running is a proxy process under test.
type running struct {
	cmd    *exec.Cmd
	addr   string
	admin  string
	stderr *strings.Builder
}

// startBinary writes a config for one bucket in front of up and runs the binary.
func startBinary(t *testing.T, up *s3test.Server, upBucket string, extra []string, cred *syscall.Credential) *running {
	return startBinaryUpload(t, up, upBucket, "", extra, cred)
}

// startBinaryUpload is startBinary with a bucket `upload:` section (YAML flow mapping, may be empty).
func startBinaryUpload(t *testing.T, up *s3test.Server, upBucket, upload string, extra []string, cred *syscall.Credential) *running {
	t.Helper()
	dir := publicTempDir(t)
	addr := fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
	cfg := fmt.Sprintf(`server:
  address: %q
  event_loops: 2
metrics: {enabled: true, address: %q}
buckets:
  - name: uploads
    s3: {bucket: %s, region: us-east-1, endpoint: %q, access_key: "${UP_AK}", secret_key: "${UP_SK}"}
    auth: {sigv4: {credentials: [{access_key: %s, secret_key: "${CLIENT_SK}"}]}}
`, addr, admin, upBucket, up.Endpoint, clientAK)
	if upload != "" {
		cfg += "    upload: " + upload + "\n"
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, append([]string{"-config", path}, extra...)...)
	cmd.Env = append(os.Environ(), "UP_AK="+up.AccessKey, "UP_SK="+up.SecretKey, "CLIENT_SK="+clientSK)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Credential: cred}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &running{cmd: cmd, addr: addr, admin: admin, stderr: &stderr}
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy not ready: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r
}

// metric returns the value of one series from /metrics once no request is in flight: a request's
// counters move when it is recorded, just after its answer was written.
func (r *running) metric(t *testing.T, series string) float64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.scrape(t, "mizuchi_uploads_active") != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return r.scrape(t, series)
}

// scrape returns the value of one series from /metrics now.
func (r *running) scrape(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(line, series+" "), 64)
			return v
		}
	}
	return 0
}

// vmHWM is the peak resident set size of pid in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// streamPut sends a signed UNSIGNED-PAYLOAD PUT of size bytes produced by a fast generator and
// returns the status and body of the answer.
func streamPut(t *testing.T, addr, key string, size int64) (int, string) {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: addr, Path: "/uploads/" + key}
	req, _ := http.NewRequest("PUT", u.String(), nil)
	req.ContentLength = size
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSK}, req,
		"UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var head strings.Builder
	fmt.Fprintf(&head, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", u.EscapedPath(), addr, size)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	go func() {
		_, _ = io.WriteString(c, head.String())
		_, _ = io.CopyN(c, &pattern{}, size)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// pattern is an endless cheap byte source: the byte at offset i is i mod 251.
type pattern struct{ off int }

var patternBlock = func() []byte {
	b := make([]byte, 251*4096)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

func (r *pattern) Read(p []byte) (int, error) {
	n := copy(p, patternBlock[r.off:])
	r.off = (r.off + n) % 251
	return n, nil
}

func patternMD5(size int64) string {
	h := md5.New()
	_, _ = io.CopyN(h, &pattern{}, size)
	return hex.EncodeToString(h.Sum(nil))
}

// A 1 GiB upload streams through the binary with a small, flat RSS, and the splice counter shows the
// body went through splice (as one upstream PUT: the threshold is above it).
func TestOneGiBUploadRSSAndSplice(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "big")
	r := startBinaryUpload(t, up, "big", "{multipart_threshold: 5GiB}", nil, nil)
	const size = 1 << 30
	status, body := streamPut(t, r.addr, "one-gib", size)
	if status != 200 {
		t.Fatalf("PUT 1 GiB: %d %s", status, body)
	}
	hwm := vmHWM(t, r.cmd.Process.Pid)
	t.Logf("proxy peak RSS while moving 1 GiB: %.1f MiB", float64(hwm)/(1<<20))
	if hwm >= 64<<20 {
		t.Errorf("peak RSS %d MiB; want < 64 MiB", hwm>>20)
	}
	spliced := r.metric(t, `mizuchi_transfer_bytes_total{mode="splice"}`)
	if spliced < size-(64<<10) {
		t.Errorf("spliced %.0f bytes of %d", spliced, size)
	}
	out, err := up.Client().HeadObject(context.Background(), headInput("big", "one-gib"))
	if err != nil || aws.ToInt64(out.ContentLength) != size {
		t.Fatalf("upstream object: %v %v", err, out)
	}
	if etag, want := strings.Trim(aws.ToString(out.ETag), `"`), patternMD5(size); etag != want {
		t.Errorf("upstream ETag %s; want MD5 of the body %s", etag, want)
	}
}
