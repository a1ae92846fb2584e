package engine_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// Real clients of PostObject: boto3's generate_presigned_post (the policy and signature as AWS's
// own SDK makes them) posted with Python requests, and curl -F.

const boto3PresignedPost = `
import os, sys, boto3, requests
from botocore.config import Config
bucket, path = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=os.environ["MIZUCHI_ENDPOINT"], config=Config(signature_version="s3v4"))
post = s3.generate_presigned_post(bucket, "py/${filename}",
    Fields={"Content-Type": "image/png", "success_action_status": "201"},
    Conditions=[{"Content-Type": "image/png"}, {"success_action_status": "201"}, ["content-length-range", 1, 1 << 20]],
    ExpiresIn=600)
with open(path, "rb") as f:
    r = requests.post(post["url"], data=post["fields"], files={"file": ("photo.png", f)})
print(r.status_code, r.headers.get("ETag"))
print(r.text)
with open(path, "rb") as f:
    r = requests.post(post["url"], data=post["fields"], files={"file": ("big.png", f.read() * 8)})
print(r.status_code)
print(r.text)
`

func TestPostObjectBoto3PresignedPost(t *testing.T) {
	p := startProxy(t)
	file := s3test.RandomBytes(200<<10, 11)
	path := filepath.Join(t.TempDir(), "photo.png")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := s3test.RunPython(t, p.clientEnv(), boto3PresignedPost, p.Bucket, path)
	if err != nil {
		t.Fatalf("python: %v\n%s\n%s", err, out, errOut)
	}
	first, second, _ := strings.Cut(out, "\n400\n")
	if !strings.HasPrefix(first, "201 \"") || !strings.Contains(first, "<Key>py/photo.png</Key>") {
		t.Fatalf("boto3 presigned POST: %s", out)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "py/photo.png"); !bytes.Equal(got, file) {
		t.Fatalf("stored %d bytes; want %d", len(got), len(file))
	}
	// 1.6 MB against content-length-range [1, 1 MiB].
	if !strings.Contains(second, "<Code>EntityTooLarge</Code>") {
		t.Fatalf("oversize: %s", out)
	}
	if upstream.ObjectExists(t, p.UpBucket, "py/big.png") {
		t.Fatal("the oversize file was stored")
	}
}

// curl -F sends the form (with Expect: 100-continue above 1 MiB); the policy is signed here.
func TestPostObjectCurl(t *testing.T) {
	p := startProxy(t)
	q := serveOn(t, lastEngine, p)
	auth := postPolicy{Conditions: stdConditions(p.Bucket)}.sign(t)
	dir := t.TempDir()
	for i, px := range []*proxy{p, q} {
		file := s3test.RandomBytes(1<<20-int(i)*1000, int64(20+i)) // > 1 MiB of body: curl waits for 100 Continue
		path := filepath.Join(dir, "curl"+itoa(i)+".png")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"-sS", "-i", "--max-time", "30"}
		for _, f := range append(stdFields("uploads/${filename}"), auth...) {
			args = append(args, "--form-string", f[0]+"="+f[1])
		}
		args = append(args, "-F", "file=@"+path+";type=image/png", px.Endpoint+"/"+p.Bucket)
		out, err := exec.Command("curl", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v\n%s", err, out)
		}
		if !bytes.Contains(out, []byte("HTTP/1.1 100 Continue")) || !bytes.Contains(out, []byte("HTTP/1.1 204 No Content")) {
			t.Fatalf("curl output:\n%s", out)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, "uploads/curl"+itoa(i)+".png"); !bytes.Equal(got, file) {
			t.Fatalf("stored %d bytes; want %d", len(got), len(file))
		}
	}
}
