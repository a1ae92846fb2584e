package main

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// A 120 MiB PutObject to a bucket with a 50 MiB threshold and 16 MiB parts becomes an 8-part
// multipart upload whose part bodies went through splice.
func TestAutoChunkedPutSplices(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "auto")
	r := startBinaryUpload(t, up, "auto", "{multipart_threshold: 50MiB, part_size: 16MiB, concurrent_parts: 4}", nil, nil)
	const size = 120 << 20
	status, body := streamPut(t, r.addr, "big", size)
	if status != 200 {
		t.Fatalf("PUT: %d %s", status, body)
	}
	out, err := up.Client().HeadObject(context.Background(), headInput("auto", "big"))
	if err != nil || aws.ToInt64(out.ContentLength) != size || !strings.HasSuffix(strings.Trim(aws.ToString(out.ETag), `"`), "-8") {
		t.Fatalf("upstream object: %v %+v", err, out)
	}
	if n := r.metric(t, "mizuchi_autochunked_puts_total"); n != 1 {
		t.Errorf("mizuchi_autochunked_puts_total = %v", n)
	}
	if n := r.metric(t, "mizuchi_multipart_parts_sent_total"); n != 8 {
		t.Errorf("mizuchi_multipart_parts_sent_total = %v; want 8", n)
	}
	if n := r.metric(t, "mizuchi_multipart_uploads_completed_total"); n != 1 {
		t.Errorf("mizuchi_multipart_uploads_completed_total = %v", n)
	}
	if spliced := r.metric(t, `mizuchi_transfer_bytes_total{mode="splice"}`); spliced < size-(1<<20) {
		t.Errorf("spliced %.0f of %d bytes", spliced, size)
	}
	if ups := up.ListMultipartUploads(t, "auto"); len(ups) != 0 {
		t.Errorf("%d uploads left over", len(ups))
	}
}

// aws s3 cp of 1 GiB (128 parts of 8 MiB) through the binary.
func TestAWSCLICopyOneGiB(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "cli")
	r := startBinary(t, up, "cli", nil, nil)
	f, err := os.CreateTemp("", "gib-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	if _, err := f.ReadFrom(&limited{r: &pattern{}, n: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	env := s3test.ClientEnv{Endpoint: "http://" + r.addr, AccessKey: clientAK, SecretKey: clientSK}
	if out, errOut, err := s3test.RunAWS(t, env, "s3", "cp", f.Name(), "s3://uploads/gib"); err != nil {
		t.Fatalf("aws s3 cp: %v\n%s\n%s", err, out, errOut)
	}
	out, err := up.Client().HeadObject(context.Background(), headInput("cli", "gib"))
	if err != nil || aws.ToInt64(out.ContentLength) != 1<<30 {
		t.Fatalf("upstream object: %v %+v", err, out)
	}
	if hwm := vmHWM(t, r.cmd.Process.Pid); hwm >= 64<<20 {
		t.Errorf("peak RSS %d MiB; want < 64 MiB", hwm>>20)
	}
}

type limited struct {
	r *pattern
	n int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, _ := l.r.Read(p)
	l.n -= int64(n)
	return n, nil
}
