// Package container holds the container image of the proxy (Containerfile, build.sh) and the test
// that builds it with podman, runs it and uploads through it.
package container

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/internal/s3test"
	"github.com/mizuchi/uploadr/internal/testca"
)

const (
	clientAK = "AKIDCONTAINERTEST"
	clientSK = "container-test-secret"
	imageUID = "65532"
)

// podmanRun flags this kernel needs (TESTBED.md, podman 4.3): crun cannot start containers here.
var runtimeFlags = []string{"--runtime", "runc", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"}

// podman runs podman with a deadline and returns its stdout; a failure fails the test with stderr.
func podman(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	out, err := tryPodman(timeout, args...)
	if err != nil {
		t.Fatalf("podman %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func tryPodman(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "podman", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// images are built once per test binary: the release binary (make release) once, then one image per
// CA bundle; TestMain removes them.
var images struct {
	mu   sync.Mutex
	dist string            // make release output for the host's architecture
	err  error             // of make release
	tags map[string]string // CA bundle path ("" = the build machine's) -> image tag
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, tag := range images.tags {
		if _, err := tryPodman(time.Minute, "rmi", "--force", tag); err != nil {
			fmt.Fprintf(os.Stderr, "removing image %s: %v\n", tag, err)
			code = 1
		}
	}
	if images.dist != "" {
		os.RemoveAll(images.dist)
	}
	os.Exit(code)
}

// buildImage returns the image built by deploy/container/build.sh from `make release` for the
// host's architecture, with the build machine's CA bundle.
func buildImage(t *testing.T) string { return buildImageWith(t, "") }

// buildImageWith is buildImage with the CA bundle caBundle (build.sh's CA_BUNDLE); "" = the build
// machine's /etc/ssl/certs/ca-certificates.crt.
func buildImageWith(t *testing.T, caBundle string) string {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is not installed: run scripts/setup.sh (it installs podman and runc)")
	}
	images.mu.Lock()
	defer images.mu.Unlock()
	if images.dist == "" && images.err == nil {
		images.dist, images.err = release()
	}
	if images.err != nil {
		t.Fatal(images.err)
	}
	if tag, ok := images.tags[caBundle]; ok {
		return tag
	}
	tag := "localhost/mizuchi-uploadr-test:" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./build.sh", "-a", runtime.GOARCH, "-t", tag, images.dist)
	cmd.Env = os.Environ()
	if caBundle != "" {
		cmd.Env = append(cmd.Env, "CA_BUNDLE="+caBundle)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		_, _ = tryPodman(time.Minute, "rmi", "--force", tag)
		t.Fatalf("build.sh: %v\n%s", err, out)
	}
	if images.tags == nil {
		images.tags = map[string]string{}
	}
	images.tags[caBundle] = tag
	return tag
}

// release runs `make release` for the host's architecture into a new directory.
func release() (string, error) {
	dist, err := os.MkdirTemp("", "mizuchi-dist-")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "make", "-C", "../..", "release", "DIST="+dist,
		"RELEASE_PLATFORMS=linux/"+runtime.GOARCH).CombinedOutput()
	if err != nil {
		os.RemoveAll(dist)
		return "", fmt.Errorf("make release: %v\n%s", err, out)
	}
	return dist, nil
}

// TestImageContents checks the image: what it holds (the binary, the CA bundle, the licenses, and
// nothing else), its non-root numeric user, ports, entrypoint and default command.
func TestImageContents(t *testing.T) {
	tag := buildImage(t)
	var info []struct {
		Architecture string
		Config       struct {
			User         string
			ExposedPorts map[string]struct{}
			Entrypoint   []string
			Cmd          []string
		}
	}
	if err := json.Unmarshal([]byte(podman(t, time.Minute, "image", "inspect", tag)), &info); err != nil || len(info) != 1 {
		t.Fatalf("podman image inspect: %v (%d images)", err, len(info))
	}
	c := info[0].Config
	if c.User != imageUID+":"+imageUID {
		t.Errorf("user %q; want %s:%s (numeric, not root)", c.User, imageUID, imageUID)
	}
	if info[0].Architecture != runtime.GOARCH {
		t.Errorf("architecture %q; want %q", info[0].Architecture, runtime.GOARCH)
	}
	for _, p := range []string{"8080/tcp", "9090/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed (%v)", p, c.ExposedPorts)
		}
	}
	if got := strings.Join(c.Entrypoint, " "); got != "/usr/local/bin/mizuchi-uploadr" {
		t.Errorf("entrypoint %q", got)
	}
	if got := strings.Join(c.Cmd, " "); got != "-config /etc/mizuchi-uploadr/config.yaml" {
		t.Errorf("cmd %q", got)
	}

	// The file system, from an export of a container created (not started) from the image.
	name := "mizuchi-contents-" + randomHex(4)
	podman(t, time.Minute, "create", "--name", name, tag)
	defer tryPodman(time.Minute, "rm", "--force", name)
	tarball := podman(t, 2*time.Minute, "export", name)
	files := map[string]int64{}
	tr := tar.NewReader(strings.NewReader(tarball))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			files["/"+strings.TrimPrefix(h.Name, "/")] = h.Size
			if h.Mode&0o004 == 0 {
				t.Errorf("%s is not world-readable (mode %o): user %s cannot read it", h.Name, h.Mode, imageUID)
			}
		}
	}
	ca, err := os.Stat("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{
		"/usr/local/bin/mizuchi-uploadr":                          -1,
		"/etc/ssl/certs/ca-certificates.crt":                      ca.Size(),
		"/usr/share/doc/mizuchi-uploadr/LICENSE":                  -1,
		"/usr/share/doc/mizuchi-uploadr/THIRD-PARTY-LICENSES.txt": -1,
	}
	for f, size := range want {
		got, ok := files[f]
		switch {
		case !ok:
			t.Errorf("image lacks %s", f)
		case size >= 0 && got != size:
			t.Errorf("%s is %d bytes; the build machine's is %d", f, got, size)
		}
	}
	for f := range files {
		if _, ok := want[f]; !ok {
			t.Errorf("image holds an unexpected file %s", f)
		}
	}
}

// TestImageServesUploads runs the image with podman (host network) in front of a versitygw the test
// started, uploads through it with aws-sdk-go-v2 (LoadDefaultConfig: default checksums), checks the
// objects on versitygw, that the proxy runs as the image's user and spliced the large body, and
// that `podman stop` (SIGTERM) drains and exits 0.
func TestImageServesUploads(t *testing.T) {
	tag := buildImage(t)
	up := s3test.Start(t)
	up.CreateBucket(t, "container-bucket")
	c := runProxy(t, tag, up, up.Endpoint)

	// The process in the container runs as the image's numeric user.
	pid := strings.TrimSpace(podman(t, time.Minute, "inspect", "--format", "{{.State.Pid}}", c.name))
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)\s+(\d+)`).FindSubmatch(status); m == nil || string(m[1]) != imageUID || string(m[2]) != imageUID {
		t.Errorf("container process uid line %q; want %s", m, imageUID)
	}

	client := sdkClient(t, "http://"+c.addr)
	for _, obj := range []struct {
		key  string
		size int
	}{{"small/hello.txt", 4 << 10}, {"large/blob.bin", 8 << 20}} {
		body := s3test.RandomBytes(obj.size, int64(obj.size))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String(obj.key), Body: bytes.NewReader(body)})
		cancel()
		if err != nil {
			t.Fatalf("PutObject %s through the container: %v", obj.key, err)
		}
		got, _ := up.GetObject(t, "container-bucket", obj.key)
		if !bytes.Equal(got, body) {
			t.Errorf("%s on versitygw: %d bytes, not the %d uploaded", obj.key, len(got), len(body))
		}
	}
	// A wrong secret is refused by the proxy in the container, and nothing reaches versitygw.
	bad := sdkClientAs(t, "http://"+c.addr, clientAK, "not-the-secret")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err = bad.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String("refused"), Body: strings.NewReader("x")})
	cancel()
	if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("PutObject with a wrong secret: %v; want SignatureDoesNotMatch", err)
	}
	if up.ObjectExists(t, "container-bucket", "refused") {
		t.Error("a refused upload reached versitygw")
	}
	// The 8 MiB body was spliced inside the container (runc's default seccomp profile allows it);
	// the bytes that came with the head are written from the buffer, the rest is spliced.
	if n := metric(t, c.admin, `mizuchi_transfer_bytes_total\{[^}]*mode="splice"[^}]*\}`); n < 7<<20 {
		t.Errorf("spliced bytes %v; want the bulk of the 8 MiB body", n)
	}

	// podman stop sends SIGTERM: the proxy drains and exits 0.
	podman(t, time.Minute, "stop", "--time", "30", c.name)
	code := strings.TrimSpace(podman(t, time.Minute, "inspect", "--format", "{{.State.ExitCode}}", c.name))
	if code != "0" {
		t.Errorf("exit code after podman stop: %s; want 0 (drained)", code)
	}
}

// TestImageTrustsItsCABundle shows that the proxy in the image verifies https upstreams against
// the CA bundle the image carries: an image built with a test CA as its bundle uploads through a TLS
// front of versitygw whose certificate that CA signed (no s3.ca_file), and the image with the build
// machine's bundle refuses the same upstream (503 ServiceUnavailable, nothing stored).
func TestImageTrustsItsCABundle(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "tls-bucket")
	front, caFile := startTLSFront(t, up.Addr)
	for _, tc := range []struct {
		name     string
		caBundle string
		ok       bool
	}{{"test CA bundle", caFile, true}, {"build machine's bundle", "", false}} {
		t.Run(tc.name, func(t *testing.T) {
			c := runProxy(t, buildImageWith(t, tc.caBundle), up, front)
			key := "tls/" + strings.ReplaceAll(tc.name, " ", "-")
			body := s3test.RandomBytes(300<<10, 7)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := sdkClient(t, "http://"+c.addr).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String(key), Body: bytes.NewReader(body)})
			cancel()
			if tc.ok {
				if err != nil {
					t.Fatalf("PutObject through the container to the https upstream: %v", err)
				}
				if got, _ := up.GetObject(t, "tls-bucket", key); !bytes.Equal(got, body) {
					t.Errorf("%s differs on versitygw", key)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "ServiceUnavailable") {
				t.Errorf("PutObject to an upstream the bundle does not trust: %v; want 503 ServiceUnavailable", err)
			}
			if up.ObjectExists(t, "tls-bucket", key) {
				t.Errorf("%s reached versitygw through an untrusted upstream", key)
			}
		})
	}
}

// startTLSFront terminates TLS on a loopback port with a certificate of a new CA and forwards each
// connection to backend: an https upstream. It returns the endpoint and the CA's PEM file.
func startTLSFront(t *testing.T, backend string) (string, string) {
	t.Helper()
	ca, err := testca.New(testca.Spec{CommonName: "mizuchi container test CA", Validity: time.Hour, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				go func() { _, _ = io.Copy(b, c); _ = b.(*net.TCPConn).CloseWrite() }()
				_, _ = io.Copy(c, b)
			}()
		}
	}()
	return "https://" + l.Addr().String(), caFile
}

// container is a proxy running in a container.
type container struct {
	name, addr, admin string
}

// runProxy runs the image with podman on the host network: one bucket "uploads" in front of
// up's bucket at endpoint (up's own, or a front of it), the secrets as environment variables. It
// waits until /readyz answers 200; the container is removed when the test ends.
func runProxy(t *testing.T, tag string, up *s3test.Server, endpoint string) container {
	t.Helper()
	dir, err := os.MkdirTemp("", "mizuchi-container-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := container{
		name:  "mizuchi-test-" + randomHex(4),
		addr:  fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
		admin: fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
	}
	bucket := "container-bucket"
	if strings.HasPrefix(endpoint, "https://") {
		bucket = "tls-bucket"
	}
	cfg := fmt.Sprintf(`server:
  address: %q
  drain_timeout: 10s
metrics: {enabled: true, address: %q}
log: {format: json}
buckets:
  - name: uploads
    s3: {bucket: %s, region: us-east-1, endpoint: %q, access_key: "${UP_AK}", secret_key: "${UP_SK}"}
    auth: {sigv4: {credentials: [{access_key: %s, secret_key: "${CLIENT_SK}"}]}}
`, c.addr, c.admin, bucket, endpoint, clientAK)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"run", "--detach", "--pull", "never", "--name", c.name, "--network", "host"}, runtimeFlags...)
	args = append(args, "--volume", cfgPath+":/etc/mizuchi-uploadr/config.yaml:ro",
		"--env", "UP_AK="+up.AccessKey, "--env", "UP_SK="+up.SecretKey, "--env", "CLIENT_SK="+clientSK, tag)
	podman(t, 2*time.Minute, args...)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := tryPodman(time.Minute, "logs", c.name)
			t.Logf("container logs:\n%s", logs)
		}
		if _, err := tryPodman(time.Minute, "rm", "--force", "--time", "2", c.name); err != nil {
			t.Errorf("removing container %s: %v", c.name, err)
		}
	})
	waitReady(t, c.name, c.admin)
	return c
}

// waitReady polls /readyz until it answers 200 (at most 30 s), failing early when the container
// exits.
func waitReady(t *testing.T, name, admin string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if state, _ := tryPodman(30*time.Second, "inspect", "--format", "{{.State.Status}}", name); strings.TrimSpace(state) == "exited" {
			t.Fatalf("the container exited before it was ready")
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz at %s not 200 after 30s (last: %v)", admin, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metric returns the value of the first /metrics line whose series matches re.
func metric(t *testing.T, admin, re string) float64 {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + re + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no series %s in /metrics", re)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func sdkClient(t *testing.T, endpoint string) *s3.Client {
	return sdkClientAs(t, endpoint, clientAK, clientSK)
}

// sdkClientAs is an aws-sdk-go-v2 client built as users build it (LoadDefaultConfig: default
// checksums), path-style, retries off.
func sdkClientAs(t *testing.T, endpoint, ak, sk string) *s3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
