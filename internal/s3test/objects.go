package s3test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// callTimeout bounds each helper's S3 calls. The helpers do not use t.Context: it is already
// cancelled while t.Cleanup functions run, and checking the server from a cleanup is legitimate.
const callTimeout = 2 * time.Minute

// Client returns an aws-sdk-go-v2 S3 client for the server: static root credentials, the server's
// region, BaseEndpoint = Endpoint, path-style addressing, retries off. It is built with s3.New, not
// config.LoadDefaultConfig, so it reads nothing from the environment or ~/.aws and sends no default
// checksums (it is the harness's own view of the server, not an imitation of a user's client). The
// same client is returned on every call; it is safe for concurrent use.
func (s *Server) Client() *s3.Client {
	s.clientOnce.Do(func() {
		o := s3.Options{
			Region:       s.Region,
			BaseEndpoint: aws.String(s.Endpoint),
			UsePathStyle: true,
			Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
			Retryer:      aws.NopRetryer{},
		}
		if s.RootCAs != nil { // StartTLS: trust the server's CA
			o.HTTPClient = &http.Client{Transport: s.transport(true)}
		}
		s.client = s3.New(o)
	})
	return s.client
}

func callContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), callTimeout)
}

// CreateBucket creates the bucket (S3 names: 3 to 63 characters) or fails the test.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: CreateBucket %q: %v", name, err)
	}
}

// GetObject returns the object's body and its metadata as HeadObject reports it (ETag, size,
// Content-Type, user metadata, stored checksums: the HEAD is sent with ChecksumMode ENABLED). It
// fails the test if the object is missing or either call fails.
func (s *Server) GetObject(t testing.TB, bucket, key string) (body []byte, out *s3.HeadObjectOutput) {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	head, err := s.Client().HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       aws.String(bucket),
		Key:          aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	})
	if err != nil {
		t.Fatalf("s3test: HeadObject %s/%s: %v", bucket, key, err)
	}
	get, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("s3test: GetObject %s/%s: %v", bucket, key, err)
	}
	defer get.Body.Close()
	body, err = io.ReadAll(get.Body)
	if err != nil {
		t.Fatalf("s3test: GetObject %s/%s: reading body: %v", bucket, key, err)
	}
	return body, head
}

// ObjectExists reports whether HeadObject finds the object. A 404 (no such key, and also no such
// bucket: a HEAD response has no body to tell them apart) is false; any other error fails the test.
func (s *Server) ObjectExists(t testing.TB, bucket, key string) bool {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	_, err := s.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return false
	}
	t.Fatalf("s3test: HeadObject %s/%s: %v", bucket, key, err)
	return false
}

// ListKeys returns every key in the bucket, sorted, following ListObjectsV2 continuation tokens.
// It fails the test on error.
func (s *Server) ListKeys(t testing.TB, bucket string) []string {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	keys := []string{}
	p := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("s3test: ListObjectsV2 %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys
}

// ListMultipartUploads returns the bucket's in-progress multipart uploads (all pages). It fails the
// test on error.
func (s *Server) ListMultipartUploads(t testing.TB, bucket string) []types.MultipartUpload {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	var ups []types.MultipartUpload
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)}
	for {
		out, err := s.Client().ListMultipartUploads(ctx, in)
		if err != nil {
			t.Fatalf("s3test: ListMultipartUploads %s: %v", bucket, err)
		}
		ups = append(ups, out.Uploads...)
		if !aws.ToBool(out.IsTruncated) {
			return ups
		}
		if aws.ToString(out.NextKeyMarker) == aws.ToString(in.KeyMarker) &&
			aws.ToString(out.NextUploadIdMarker) == aws.ToString(in.UploadIdMarker) {
			t.Fatalf("s3test: ListMultipartUploads %s: truncated page without progress", bucket)
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// GetObjectTagging returns the object's tag set as a map (empty, not nil, when it has no tags). It
// fails the test on error.
func (s *Server) GetObjectTagging(t testing.TB, bucket, key string) map[string]string {
	t.Helper()
	ctx, cancel := callContext()
	defer cancel()
	out, err := s.Client().GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("s3test: GetObjectTagging %s/%s: %v", bucket, key, err)
	}
	tags := make(map[string]string, len(out.TagSet))
	for _, tg := range out.TagSet {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	return tags
}
