package engine_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"

	"github.com/mizuchi/uploadr/internal/s3test"
)

func wantMultipartObject(t *testing.T, p *proxy, key string, body []byte) {
	t.Helper()
	got, head := upstream.GetObject(t, p.UpBucket, key)
	if !bytes.Equal(got, body) {
		t.Fatalf("%s: stored object differs (%d of %d bytes)", key, len(got), len(body))
	}
	if etag := strings.Trim(aws.ToString(head.ETag), `"`); !strings.Contains(etag, "-") {
		t.Errorf("%s: ETag %s is not a multipart ETag", key, etag)
	}
	noUploadsLeft(t, p.UpBucket)
}

// aws-sdk-go-v2's transfermanager with its default configuration: 8 MiB parts, per-part CRC32,
// checksums in CompleteMultipartUpload.
func TestMultipartTransferManager(t *testing.T) {
	p := startProxy(t)
	body := s3test.RandomBytes(40<<20+11, 40)
	tm := transfermanager.New(p.sdkClient(t))
	if _, err := tm.UploadObject(context.Background(), &transfermanager.UploadObjectInput{
		Bucket: aws.String(p.Bucket), Key: aws.String("tm/object"), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("UploadObject: %v", err)
	}
	wantMultipartObject(t, p, "tm/object", body)
}

const boto3UploadFile = `
import os, sys, boto3
from boto3.s3.transfer import TransferConfig
s3 = boto3.client("s3", endpoint_url=os.environ["MIZUCHI_ENDPOINT"])
cfg = TransferConfig(multipart_threshold=8*1024*1024, multipart_chunksize=8*1024*1024, max_concurrency=4)
s3.upload_file(sys.argv[3], sys.argv[1], sys.argv[2], Config=cfg)
`

func TestMultipartBoto3UploadFile(t *testing.T) {
	p := startProxy(t)
	body := s3test.RandomBytes(36<<20, 36)
	file := s3test.TempFile(t, body)
	if out, errOut, err := s3test.RunPython(t, p.clientEnv(), boto3UploadFile, p.Bucket, "boto3/upload_file", file); err != nil {
		t.Fatalf("upload_file: %v\n%s\n%s", err, out, errOut)
	}
	wantMultipartObject(t, p, "boto3/upload_file", body)
}

func TestMultipartAWSCLI100MiB(t *testing.T) {
	p := startProxy(t)
	body := s3test.RandomBytes(100<<20, 100)
	file := s3test.TempFile(t, body)
	if out, errOut, err := s3test.RunAWS(t, p.clientEnv(), "s3", "cp", file, "s3://"+p.Bucket+"/cli/100mib"); err != nil {
		t.Fatalf("aws s3 cp: %v\n%s\n%s", err, out, errOut)
	}
	wantMultipartObject(t, p, "cli/100mib", body)
}

// runTool runs a Debian client (installed by scripts/setup.sh) with AWS_CA_BUNDLE removed.
func runTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestMultipartS3cmd(t *testing.T) {
	p := startProxy(t)
	body := s3test.RandomBytes(40<<20, 41) // s3cmd cuts 15 MiB parts
	file := s3test.TempFile(t, body)
	cfg := filepath.Join(t.TempDir(), "s3cfg")
	host := strings.TrimPrefix(p.Endpoint, "http://")
	conf := "[default]\naccess_key = " + clientAK + "\nsecret_key = " + clientSK + "\nhost_base = " + host +
		"\nhost_bucket = " + host + "\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, nil, "s3cmd", "-c", cfg, "--no-check-md5", "put", file, "s3://"+p.Bucket+"/s3cmd/object")
	wantMultipartObject(t, p, "s3cmd/object", body)
	// A small object: one PutObject, whose ETag s3cmd compares with the body's MD5.
	small := s3test.RandomBytes(100000, 42)
	runTool(t, nil, "s3cmd", "-c", cfg, "put", s3test.TempFile(t, small), "s3://"+p.Bucket+"/s3cmd/small")
	if got, _ := upstream.GetObject(t, p.UpBucket, "s3cmd/small"); !bytes.Equal(got, small) {
		t.Fatal("s3cmd small object differs")
	}
}

func TestMultipartRclone(t *testing.T) {
	p := startProxy(t)
	body := s3test.RandomBytes(23<<20, 23)
	file := s3test.TempFile(t, body)
	env := []string{"RCLONE_CONFIG_MZ_TYPE=s3", "RCLONE_CONFIG_MZ_PROVIDER=Other", "RCLONE_CONFIG_MZ_ENDPOINT=" + p.Endpoint,
		"RCLONE_CONFIG_MZ_ACCESS_KEY_ID=" + clientAK, "RCLONE_CONFIG_MZ_SECRET_ACCESS_KEY=" + clientSK,
		"RCLONE_CONFIG_MZ_REGION=us-east-1", "RCLONE_CONFIG_MZ_FORCE_PATH_STYLE=true", "RCLONE_CONFIG=/dev/null"}
	flags := []string{"--s3-no-check-bucket", "--s3-no-head", "--no-check-dest", "--s3-upload-cutoff", "10M", "--s3-chunk-size", "5M"}
	runTool(t, env, "rclone", append([]string{"copyto", file, "mz:" + p.Bucket + "/rclone/object"}, flags...)...)
	wantMultipartObject(t, p, "rclone/object", body)
	small := s3test.RandomBytes(3000, 3)
	runTool(t, env, "rclone", append([]string{"copyto", s3test.TempFile(t, small), "mz:" + p.Bucket + "/rclone/small"}, flags...)...)
	if got, _ := upstream.GetObject(t, p.UpBucket, "rclone/small"); !bytes.Equal(got, small) {
		t.Fatal("rclone small object differs")
	}
}
