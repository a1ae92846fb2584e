package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// withWildcard adds a "*" entry on the shared versitygw with the client credentials given.
func withWildcard(creds map[string]string) proxyOpt {
	return func(o *engine.Options) {
		w := o.Buckets[0]
		w.Name, w.Upstream.Bucket, w.Credentials = engine.WildcardBucket, "", creds
		o.Buckets = append(o.Buckets, w)
	}
}

// The "*" entry forwards any bucket name to the same-named upstream bucket with its upstream
// credentials and its own client credentials; a named entry takes precedence; names that are not
// valid bucket names get 400 InvalidBucketName; the metrics label is "*".
func TestWildcardBucket(t *testing.T) {
	const wildAK, wildSK = "AKIDMIZUCHIWILDCARD", "wildcard/secret"
	p := startProxy(t, withWildcard(map[string]string{wildAK: wildSK}))
	n := bucketSeq.Add(1)
	one, two := fmt.Sprintf("any-one-%d", n), fmt.Sprintf("any.two.%d", n)
	upstream.CreateBucket(t, one)
	upstream.CreateBucket(t, two)
	// A bucket that exists upstream under the named entry's client-facing name: the named entry
	// wins, so nothing may land there.
	upstream.CreateBucket(t, p.Bucket)

	c := p.sdkClient(t) // clientAK: the named entry's client credential
	wc := s3.New(c.Options(), func(o *s3.Options) {
		o.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: wildAK, SecretAccessKey: wildSK}, nil
		}))
	})
	ctx := context.Background()
	label := `mizuchi_requests_total{bucket="*",operation="PutObject",status="200"}`
	before := metrics.GetOrCreateCounter(label).Get()
	for _, b := range []string{one, two, one} {
		for _, size := range []int{100, 2 << 20} {
			key := fmt.Sprintf("wild/%d", size)
			body := s3test.RandomBytes(size, int64(size))
			if _, err := wc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
				t.Fatalf("PutObject %s/%s: %v", b, key, err)
			}
			if got, _ := upstream.GetObject(t, b, key); !bytes.Equal(got, body) {
				t.Fatalf("%s/%s: stored %d bytes; want %d", b, key, len(got), len(body))
			}
		}
	}
	if got := metrics.GetOrCreateCounter(label).Get() - before; got != 6 {
		t.Errorf("%s grew by %d; want 6", label, got)
	}
	// Multipart through the "*" entry.
	up, err := wc.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(two), Key: aws.String("mp")})
	if err != nil {
		t.Fatalf("CreateMultipartUpload: %v", err)
	}
	part, err := wc.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(two), Key: aws.String("mp"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader("only part")})
	if err != nil {
		t.Fatalf("UploadPart: %v", err)
	}
	if _, err := wc.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(two), Key: aws.String("mp"),
		UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: part.ETag}}}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	if got, _ := upstream.GetObject(t, two, "mp"); string(got) != "only part" {
		t.Fatalf("mp: stored %q", got)
	}

	// The named entry takes precedence: its upstream bucket, its credentials.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String("named"), Body: strings.NewReader("n")}); err != nil {
		t.Fatalf("PutObject to the named bucket: %v", err)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "named"); string(got) != "n" {
		t.Fatalf("named: stored %q in %s", got, p.UpBucket)
	}
	if upstream.ObjectExists(t, p.Bucket, "named") {
		t.Fatal("the named bucket's request went to the same-named upstream bucket")
	}
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/x", Body: []byte("x"), AK: wildAK, SK: wildSK}
	resp, body := p.do(t, r.bytes(t, p.Addr))
	wantS3Error(t, resp, body, 403, "InvalidAccessKeyId") // the "*" entry's credential is not the named entry's

	// The "*" entry authenticates with its own client credentials.
	r = rawReq{Method: "PUT", Path: "/" + one + "/x", Body: []byte("x")} // clientAK
	resp, body = p.do(t, r.bytes(t, p.Addr))
	wantS3Error(t, resp, body, 403, "InvalidAccessKeyId")
	if upstream.ObjectExists(t, one, "x") {
		t.Fatal("a refused request reached the upstream")
	}

	// Invalid bucket names never go upstream.
	for _, name := range []string{"Upper", "a_b", "ab", "a..b", "192.168.1.1", "-ab", strings.Repeat("a", 64)} {
		r = rawReq{Method: "PUT", Path: "/" + name + "/x", Body: []byte("x"), AK: wildAK, SK: wildSK}
		resp, body = p.do(t, r.bytes(t, p.Addr))
		wantS3Error(t, resp, body, 400, "InvalidBucketName")
	}
	// A valid name the upstream lacks: the upstream's answer (404 NoSuchBucket) is relayed.
	r = rawReq{Method: "PUT", Path: "/" + fmt.Sprintf("missing-%d", n) + "/x", Body: []byte("x"), AK: wildAK, SK: wildSK,
		Header: http.Header{}}
	if resp, body = p.do(t, r.bytes(t, p.Addr)); resp.StatusCode != 404 {
		t.Fatalf("missing upstream bucket: %d %s; want 404", resp.StatusCode, body)
	}
}

// Without a "*" entry an unknown bucket stays 403 AccessDenied, whatever its name.
func TestUnknownBucketWithoutWildcard(t *testing.T) {
	p := startProxy(t)
	for _, name := range []string{"other-bucket", "Upper_Case"} {
		r := rawReq{Method: "PUT", Path: "/" + name + "/x", Body: []byte("x")}
		resp, body := p.do(t, r.bytes(t, p.Addr))
		wantS3Error(t, resp, body, 403, "AccessDenied")
	}
}
