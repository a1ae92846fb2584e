package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestPutGetWithClient(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.CreateBucket(t, "bkt")
	data := RandomBytes(300<<10, 1)
	ctx := context.Background()
	if _, err := s.Client().PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String("bkt"),
		Key:         aws.String("dir/obj"),
		Body:        bytes.NewReader(data),
		ContentType: aws.String("application/x-test"),
		Metadata:    map[string]string{"color": "blue"},
		Tagging:     aws.String("team=edge&tier=1"),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	body, head := s.GetObject(t, "bkt", "dir/obj")
	if !bytes.Equal(body, data) {
		t.Fatalf("GetObject body: got %d bytes, want the %d put", len(body), len(data))
	}
	if got, want := aws.ToInt64(head.ContentLength), int64(len(data)); got != want {
		t.Errorf("ContentLength: got %d; want %d", got, want)
	}
	if got, want := aws.ToString(head.ContentType), "application/x-test"; got != want {
		t.Errorf("ContentType: got %q; want %q", got, want)
	}
	if got, want := head.Metadata["color"], "blue"; got != want {
		t.Errorf("Metadata[color]: got %q; want %q", got, want)
	}
	if got, want := fmt.Sprint(s.GetObjectTagging(t, "bkt", "dir/obj")), "map[team:edge tier:1]"; got != want {
		t.Errorf("GetObjectTagging: got %s; want %s", got, want)
	}
	if !s.ObjectExists(t, "bkt", "dir/obj") {
		t.Errorf("ObjectExists(dir/obj): got false; want true")
	}
	if s.ObjectExists(t, "bkt", "nope") {
		t.Errorf("ObjectExists(nope): got true; want false")
	}
	if got, want := fmt.Sprint(s.ListKeys(t, "bkt")), "[dir/obj]"; got != want {
		t.Errorf("ListKeys: got %s; want %s", got, want)
	}
}

func TestListKeysPages(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.CreateBucket(t, "many")
	want := make([]string, 1005) // more than one ListObjectsV2 page (1000 keys)
	errs := make([]error, len(want))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(want); i += 4 {
				want[i] = fmt.Sprintf("k%04d", i)
				_, errs[i] = s.Client().PutObject(context.Background(), &s3.PutObjectInput{
					Bucket: aws.String("many"), Key: aws.String(want[i]), Body: strings.NewReader(""),
				})
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if got := s.ListKeys(t, "many"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ListKeys: got %d keys (%v...); want %d", len(got), got[:min(3, len(got))], len(want))
	}
}

func TestRunAWSPutObject(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.CreateBucket(t, "cli")
	data := RandomBytes(1<<20+17, 2)
	stdout, stderr, err := RunAWS(t, s.Env(), "s3api", "put-object", "--bucket", "cli", "--key", "from/aws",
		"--body", TempFile(t, data), "--tagging", "via=cli")
	if err != nil {
		t.Fatalf("aws s3api put-object: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "ETag") {
		t.Errorf("aws stdout: got %q; want the PutObject result with an ETag", stdout)
	}
	body, _ := s.GetObject(t, "cli", "from/aws")
	if !bytes.Equal(body, data) {
		t.Fatalf("GetObject body: got %d bytes, want the %d put by aws", len(body), len(data))
	}
	if got := s.GetObjectTagging(t, "cli", "from/aws")["via"]; got != "cli" {
		t.Errorf("tag via: got %q; want %q", got, "cli")
	}

	// A failing command reports an *exec.ExitError and the server's complaint on stderr.
	bad := s.Env()
	bad.SecretKey = "wrong" + bad.SecretKey[5:]
	_, stderr, err = RunAWS(t, bad, "s3api", "put-object", "--bucket", "cli", "--key", "bad", "--body", TempFile(t, data[:10]))
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("aws with a wrong secret: got err %v; want an *exec.ExitError", err)
	}
	if !strings.Contains(stderr, "SignatureDoesNotMatch") {
		t.Errorf("aws with a wrong secret: stderr %q; want SignatureDoesNotMatch", stderr)
	}
}

const boto3Put = `
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["MIZUCHI_ENDPOINT"])
with open(sys.argv[3], "rb") as f:
    r = s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=f.read())
print(r["ETag"])
`

func TestRunPythonBoto3PutObject(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.CreateBucket(t, "py-bkt")
	data := RandomBytes(2<<20, 3)
	stdout, stderr, err := RunPython(t, s.Env(), boto3Put, "py-bkt", "from/boto3", TempFile(t, data))
	if err != nil {
		t.Fatalf("python3 boto3 put_object: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	body, head := s.GetObject(t, "py-bkt", "from/boto3")
	if !bytes.Equal(body, data) {
		t.Fatalf("GetObject body: got %d bytes, want the %d put by boto3", len(body), len(data))
	}
	if got, want := strings.TrimSpace(stdout), aws.ToString(head.ETag); got != want {
		t.Errorf("ETag: boto3 printed %s; HeadObject says %s", got, want)
	}
}

// envLines splits a client's printed environment into lines, the values of AWS_CONFIG_FILE and
// AWS_SHARED_CREDENTIALS_FILE (temporary paths) cut off.
func envLines(stdout string) []string {
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if strings.HasPrefix(l, "AWS_CONFIG_FILE=") || strings.HasPrefix(l, "AWS_SHARED_CREDENTIALS_FILE=") {
			l, _, _ = strings.Cut(l, "=")
		}
		got = append(got, l)
	}
	return got
}

// Not parallel: t.Setenv.
func TestClientEnvironment(t *testing.T) {
	t.Setenv("AWS_PROFILE", "leaky") // the test's AWS_* variables must not reach the client
	t.Setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem")
	t.Setenv("MIZUCHI_ENDPOINT", "http://leaky")
	e := ClientEnv{Endpoint: "http://127.0.0.1:1", AccessKey: "AK", SecretKey: "SK",
		Extra: []string{"MIZUCHI_X=1", "AWS_DEFAULT_REGION=eu-west-3"}}
	const script = `
import os
for k in sorted(os.environ):
    if k.startswith("AWS_") or k.startswith("MIZUCHI_"):
        print(k + "=" + os.environ[k])
print("config=" + open(os.environ["AWS_CONFIG_FILE"]).read().replace("\n", "|"))
print("credentials=" + open(os.environ["AWS_SHARED_CREDENTIALS_FILE"]).read())
`
	stdout, stderr, err := RunPython(t, e, script)
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, stderr)
	}
	got := envLines(stdout)
	want := []string{
		"AWS_ACCESS_KEY_ID=AK",
		"AWS_CONFIG_FILE",
		"AWS_DEFAULT_REGION=eu-west-3",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_SECRET_ACCESS_KEY=SK",
		"AWS_SHARED_CREDENTIALS_FILE",
		"MIZUCHI_ENDPOINT=http://127.0.0.1:1",
		"MIZUCHI_X=1",
		"config=[default]|s3 =|    addressing_style = path|",
		"credentials=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("client environment:\ngot  %q\nwant %q", got, want)
	}
}

func TestListMultipartUploads(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.CreateBucket(t, "mpu")
	ctx := context.Background()
	if got := s.ListMultipartUploads(t, "mpu"); len(got) != 0 {
		t.Fatalf("ListMultipartUploads on a new bucket: got %d uploads; want 0", len(got))
	}
	cr, err := s.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String("mpu"), Key: aws.String("big"),
	})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	ups := s.ListMultipartUploads(t, "mpu")
	if len(ups) != 1 || aws.ToString(ups[0].UploadId) != aws.ToString(cr.UploadId) || aws.ToString(ups[0].Key) != "big" {
		t.Fatalf("ListMultipartUploads after Create: got %s; want one upload %s of key big", describe(ups), aws.ToString(cr.UploadId))
	}
	if _, err := s.Client().AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String("mpu"), Key: aws.String("big"), UploadId: cr.UploadId,
	}); err != nil {
		t.Fatalf("AbortMultipartUpload: %v", err)
	}
	if got := s.ListMultipartUploads(t, "mpu"); len(got) != 0 {
		t.Fatalf("ListMultipartUploads after Abort: got %s; want none", describe(got))
	}
	if s.ObjectExists(t, "mpu", "big") {
		t.Errorf("ObjectExists(big) after Abort: got true; want false")
	}
}

func describe(ups []types.MultipartUpload) string {
	var b strings.Builder
	for _, u := range ups {
		fmt.Fprintf(&b, "[%s %s] ", aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
	return fmt.Sprintf("%d: %s", len(ups), b.String())
}

// Two servers started at the same time are independent: different ports, keys and data.
func TestParallelServers(t *testing.T) {
	t.Parallel()
	var (
		mu      sync.Mutex
		servers []*Server
		both    sync.WaitGroup
	)
	both.Add(2)
	t.Run("group", func(t *testing.T) {
		for _, name := range []string{"a", "b"} {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				s := Start(t)
				mu.Lock()
				servers = append(servers, s)
				mu.Unlock()
				both.Done()
				both.Wait() // both are running now
				// The same bucket name on both: a shared server would answer BucketAlreadyOwnedByYou.
				s.CreateBucket(t, "same-name")
				if _, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{
					Bucket: aws.String("same-name"), Key: aws.String("from-" + name), Body: strings.NewReader(name),
				}); err != nil {
					t.Fatalf("PutObject: %v", err)
				}
				if got, want := fmt.Sprint(s.ListKeys(t, "same-name")), "[from-"+name+"]"; got != want {
					t.Errorf("ListKeys: got %s; want %s", got, want)
				}
			})
		}
	})
	if len(servers) != 2 {
		t.Fatalf("started %d servers; want 2", len(servers))
	}
	a, b := servers[0], servers[1]
	if a.Addr == b.Addr || a.Endpoint == b.Endpoint {
		t.Errorf("addresses: got %s and %s; want different", a.Addr, b.Addr)
	}
	if a.AccessKey == b.AccessKey || a.SecretKey == b.SecretKey || a.DataDir == b.DataDir {
		t.Errorf("keys or data dirs shared between servers: %s/%s %s/%s", a.AccessKey, b.AccessKey, a.DataDir, b.DataDir)
	}
	for _, s := range servers { // stopped by the subtests' cleanups
		if _, err := http.Get(s.Endpoint + "/health"); err == nil {
			t.Errorf("server %s still answers after its test ended", s.Addr)
		}
	}
}

func TestStartMain(t *testing.T) {
	t.Parallel()
	s, stop, err := StartMain()
	if err != nil {
		t.Fatalf("StartMain: %v", err)
	}
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") || s.Endpoint != "http://"+s.Addr || s.Region != "us-east-1" {
		t.Errorf("Server: got Endpoint %q Addr %q Region %q", s.Endpoint, s.Addr, s.Region)
	}
	resp, err := http.Get(s.Endpoint + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health: %v %v; want 200", resp, err)
	}
	resp.Body.Close()
	s.CreateBucket(t, "main")
	stop()
	stop() // idempotent
	select {
	case <-s.proc.exited:
	default:
		t.Fatalf("versitygw still running after stop")
	}
	if _, err := os.Stat(s.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data dir after stop: Stat err %v; want not exist", err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after stop", s.Addr)
	}
}

// rawPut sends a signed UNSIGNED-PAYLOAD PUT that declares declared bytes, writes sent of them, then
// closes the connection: with a RST (SO_LINGER 0) when reset, else with a normal FIN.
func rawPut(t *testing.T, s *Server, path string, declared, sent int, reset bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.Endpoint+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(declared)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	creds := aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", "s3", s.Region, time.Now()); err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.RequestURI(), req.Host, declared)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")

	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.TCPConn)
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatalf("write head: %v", err)
	}
	if _, err := conn.Write(RandomBytes(sent, 4)); err != nil {
		t.Fatalf("write body: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // let the server read what was sent
	if reset {
		if err := conn.SetLinger(0); err != nil {
			t.Fatalf("SetLinger(0): %v", err)
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TESTBED: a client that vanishes mid-body must look like an error to versitygw, not like the end of
// the body. A FIN makes versitygw store the truncated body; a RST leaves no object at all.
func TestUnsignedPayloadResetLeavesNoObject(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.CreateBucket(t, "rst")
	const declared, sent = 10 << 20, 1 << 20
	rawPut(t, s, "/rst/reset", declared, sent, true)
	rawPut(t, s, "/rst/fin", declared, sent, false) // control: proves the check would see an object

	deadline := time.Now().Add(10 * time.Second)
	for !s.ObjectExists(t, "rst", "fin") {
		if time.Now().After(deadline) {
			t.Fatalf("control: the FIN-closed PUT left no object after 10 s; TESTBED says versitygw stores the truncated body")
		}
		time.Sleep(20 * time.Millisecond)
	}
	body, _ := s.GetObject(t, "rst", "fin")
	if len(body) != sent || !bytes.Equal(body, RandomBytes(sent, 4)) {
		t.Errorf("control: FIN-closed PUT stored %d bytes; want the %d sent", len(body), sent)
	}
	time.Sleep(300 * time.Millisecond) // the RST request was sent first; give it more time to (not) appear
	if s.ObjectExists(t, "rst", "reset") {
		t.Errorf("ObjectExists(reset): got true; want false: a RST mid-body must leave no object")
	}
	if got, want := fmt.Sprint(s.ListKeys(t, "rst")), "[fin]"; got != want {
		t.Errorf("ListKeys: got %s; want %s", got, want)
	}
}

func TestVersitygwPath(t *testing.T) {
	t.Parallel()
	p, err := VersitygwPath()
	if err != nil {
		t.Fatalf("VersitygwPath: %v", err)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, ".tools", "bin", "versitygw"); p != want {
		t.Errorf("VersitygwPath: got %s; want %s", p, want)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("repoRoot %s has no go.mod: %v", root, err)
	}
}

func TestCheckVersitygw(t *testing.T) {
	t.Parallel()
	good, err := VersitygwPath()
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable() // a Go binary, but not versitygw
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noexec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, errHas string
	}{
		{"pinned versitygw", good, ""},
		{"missing", filepath.Join(dir, "missing"), "no such file"},
		{"not executable", noexec, "not executable"},
		{"not a Go binary", text, "text"},
		{"other Go binary", self, "want github.com/versity/versitygw v1.8.0"},
	} {
		err := versitygwTool.check(tc.path)
		switch {
		case tc.errHas == "" && err != nil:
			t.Errorf("%s: got %v; want nil", tc.name, err)
		case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
			t.Errorf("%s: got %v; want an error containing %q", tc.name, err, tc.errHas)
		}
	}
}
