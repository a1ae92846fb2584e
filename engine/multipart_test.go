package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/internal/s3test"
)

func TestMultipartAWSCLICopy(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		data := s3test.RandomBytes(20<<20+5, 77) // aws cli switches to 8 MiB parts above 8 MiB
		file := s3test.TempFile(t, data)
		if out, errOut, err := s3test.RunAWS(t, p.clientEnv(), "s3", "cp", file, "s3://"+p.Bucket+"/mp/cli"); err != nil {
			t.Fatalf("aws s3 cp: %v\n%s\n%s", err, out, errOut)
		}
		got, head := upstream.GetObject(t, p.UpBucket, "mp/cli")
		if !bytes.Equal(got, data) {
			t.Fatal("multipart object differs")
		}
		if etag := aws.ToString(head.ETag); !strings.HasSuffix(strings.Trim(etag, `"`), "-3") {
			t.Errorf("ETag %s; want a 3-part multipart ETag", etag)
		}
		if ups := upstream.ListMultipartUploads(t, p.UpBucket); len(ups) != 0 {
			t.Errorf("%d uploads left over", len(ups))
		}
	})
}

func TestMultipartSDKLowLevel(t *testing.T) {
	p := startProxy(t)
	cl := p.sdkClient(t)
	ctx := context.Background()
	key := "mp/sdk low level"
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
		ContentType: aws.String("application/x-mp"), Metadata: map[string]string{"m": "1"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	parts := [][]byte{s3test.RandomBytes(5<<20, 1), s3test.RandomBytes(5<<20, 2), s3test.RandomBytes(1234, 3)}
	var done []types.CompletedPart
	for i, body := range parts {
		out, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
			UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatalf("part %d: %v", i+1, err)
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	lp, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(p.Bucket), Key: aws.String(key), UploadId: cr.UploadId, MaxParts: aws.Int32(2)})
	if err != nil {
		t.Fatalf("list parts: %v", err)
	}
	if len(lp.Parts) != 2 || !aws.ToBool(lp.IsTruncated) || aws.ToInt64(lp.Parts[0].Size) != 5<<20 {
		t.Errorf("list parts page: %d parts, truncated %v", len(lp.Parts), aws.ToBool(lp.IsTruncated))
	}
	lp2, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(p.Bucket), Key: aws.String(key), UploadId: cr.UploadId,
		PartNumberMarker: lp.NextPartNumberMarker})
	if err != nil || len(lp2.Parts) != 1 || aws.ToInt32(lp2.Parts[0].PartNumber) != 3 {
		t.Fatalf("list parts second page: %v %+v", err, lp2)
	}
	if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	got, head := upstream.GetObject(t, p.UpBucket, key)
	if !bytes.Equal(got, bytes.Join(parts, nil)) {
		t.Fatal("completed object differs")
	}
	if aws.ToString(head.ContentType) != "application/x-mp" || head.Metadata["m"] != "1" {
		t.Errorf("headers from Create lost: %q %v", aws.ToString(head.ContentType), head.Metadata)
	}

	// Abort leaves neither upload nor object.
	cr2, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String("mp/aborted")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(p.Bucket), Key: aws.String("mp/aborted"),
		UploadId: cr2.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(parts[2])}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String("mp/aborted"), UploadId: cr2.UploadId}); err != nil {
		t.Fatalf("abort: %v", err)
	}
	for _, u := range upstream.ListMultipartUploads(t, p.UpBucket) {
		if aws.ToString(u.UploadId) == upstreamID(t, p.Bucket, "mp/aborted", aws.ToString(cr2.UploadId)) {
			t.Errorf("aborted upload still listed")
		}
	}
	if upstream.ObjectExists(t, p.UpBucket, "mp/aborted") {
		t.Error("aborted upload left an object")
	}
}

func TestMultipartTooSmallPartRelayed(t *testing.T) {
	p := startProxy(t)
	env := p.clientEnv()
	run := func(args ...string) map[string]any {
		out, errOut, err := s3test.RunAWS(t, env, args...)
		if err != nil {
			t.Fatalf("aws %v: %v\n%s\n%s", args, err, out, errOut)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(out), &m)
		return m
	}
	cr := run("s3api", "create-multipart-upload", "--bucket", p.Bucket, "--key", "mp/small")
	id := fmt.Sprint(cr["UploadId"])
	upstreamID(t, p.Bucket, "mp/small", id) // the aws cli stores and sends back the proxy's token
	var parts []string
	for i := 1; i <= 2; i++ {
		f := s3test.TempFile(t, s3test.RandomBytes(1000, int64(i)))
		up := run("s3api", "upload-part", "--bucket", p.Bucket, "--key", "mp/small", "--upload-id", id,
			"--part-number", fmt.Sprint(i), "--body", f)
		parts = append(parts, fmt.Sprintf(`{"ETag":%q,"PartNumber":%d}`, up["ETag"], i))
	}
	lp := run("s3api", "list-parts", "--bucket", p.Bucket, "--key", "mp/small", "--upload-id", id)
	if ps, _ := lp["Parts"].([]any); len(ps) != 2 {
		t.Fatalf("list-parts: %v", lp)
	}
	_, errOut, err := s3test.RunAWS(t, env, "s3api", "complete-multipart-upload", "--bucket", p.Bucket, "--key", "mp/small",
		"--upload-id", id, "--multipart-upload", `{"Parts":[`+strings.Join(parts, ",")+`]}`)
	if err == nil || !strings.Contains(errOut, "EntityTooSmall") {
		t.Fatalf("complete with 1000-byte parts: err %v, stderr %s; want EntityTooSmall", err, errOut)
	}
	run("s3api", "abort-multipart-upload", "--bucket", p.Bucket, "--key", "mp/small", "--upload-id", id)
	if ups := upstream.ListMultipartUploads(t, p.UpBucket); len(ups) != 0 {
		t.Errorf("%d uploads left over", len(ups))
	}
}
