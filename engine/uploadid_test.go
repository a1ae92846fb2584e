package engine_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/uploadid"
)

// Upload ids bound to their creator, end to end against versitygw.

const (
	otherAK = "AKIDMIZUCHIOTHERCLIENT"
	otherSK = "other/secret+key=for-tests-only"
)

var (
	secretNew = []byte("upload-id-secret-new-0123456789ab")
	secretOld = []byte("upload-id-secret-old-0123456789ab")
)

// withOtherClient adds a second client credential to the bucket.
func withOtherClient() proxyOpt {
	return func(o *engine.Options) { o.Buckets[0].Credentials[otherAK] = otherSK }
}

// withSecrets sets Options.UploadIDSecrets.
func withSecrets(s ...[]byte) proxyOpt {
	return func(o *engine.Options) { o.UploadIDSecrets = s }
}

// sameBucketAs makes the proxy serve p's client-facing bucket from p's upstream bucket: another
// node of the same deployment.
func sameBucketAs(p *proxy) proxyOpt {
	return func(o *engine.Options) {
		o.Buckets[0].Name = p.Bucket
		o.Buckets[0].Upstream.Bucket = p.UpBucket
	}
}

// sdkClientAs is proxy p's SDK client signing with ak/sk.
func (p *proxy) sdkClientAs(t *testing.T, ak, sk string) *s3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(ak, sk, "")),
		config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(p.Endpoint)
		o.UsePathStyle = true
	})
}

// derivedSealer is the Sealer of a proxy without UploadIDSecrets in front of versitygw (or of a
// tripwire: startProxy gives every bucket versitygw's credentials).
func derivedSealer(t *testing.T) *uploadid.Sealer {
	t.Helper()
	s, err := uploadid.New(uploadid.DeriveKey([]byte(upstream.SecretKey)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// upstreamID is the upstream upload id in the token a proxy without UploadIDSecrets gave clientAK
// for bucket and key.
func upstreamID(t *testing.T, bucket, key, token string) string {
	t.Helper()
	id, err := derivedSealer(t).Open(nil, []byte(token), &uploadid.Binding{Principal: clientAK, Bucket: bucket, Key: []byte(key)})
	if err != nil {
		t.Fatalf("token %q does not open: %v", token, err)
	}
	return string(id)
}

// tokenFor is the token such a proxy gives clientAK for an upstream id of bucket and key.
func tokenFor(t *testing.T, bucket, key, upID string) string {
	t.Helper()
	tok, err := derivedSealer(t).Seal(nil, []byte(upID), &uploadid.Binding{Principal: clientAK, Bucket: bucket, Key: []byte(key)})
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// wantNoSuchUpload checks err is S3's 404 NoSuchUpload.
func wantNoSuchUpload(t *testing.T, what string, err error) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "NoSuchUpload" {
		t.Errorf("%s: err = %v; want NoSuchUpload", what, err)
	}
}

func part(n int) []byte { return bytes.Repeat([]byte{byte('a' + n)}, 5<<20) }

type upload struct {
	c         *s3.Client
	bucket    string
	key, id   string
	completed []types.CompletedPart
}

func createUpload(t *testing.T, c *s3.Client, bucket, key string) *upload {
	t.Helper()
	out, err := c.CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	return &upload{c: c, bucket: bucket, key: key, id: aws.ToString(out.UploadId)}
}

func (u *upload) put(t *testing.T, c *s3.Client, n int) error {
	t.Helper()
	return u.putBody(c, n, part(n))
}

// putSmall sends part n with a one-byte body: for requests the proxy refuses (a client that does
// not wait for 100 Continue gets a reset instead of the answer when its body is large).
func (u *upload) putSmall(c *s3.Client, n int) error { return u.putBody(c, n, []byte("x")) }

func (u *upload) putBody(c *s3.Client, n int, body []byte) error {
	out, err := c.UploadPart(context.Background(), &s3.UploadPartInput{Bucket: aws.String(u.bucket), Key: aws.String(u.key),
		UploadId: aws.String(u.id), PartNumber: aws.Int32(int32(n)), Body: bytes.NewReader(body)})
	if err == nil {
		u.completed = append(u.completed, types.CompletedPart{PartNumber: aws.Int32(int32(n)), ETag: out.ETag})
	}
	return err
}

func (u *upload) list(c *s3.Client) (*s3.ListPartsOutput, error) {
	return c.ListParts(context.Background(), &s3.ListPartsInput{Bucket: aws.String(u.bucket), Key: aws.String(u.key), UploadId: aws.String(u.id)})
}

func (u *upload) complete(c *s3.Client) error {
	_, err := c.CompleteMultipartUpload(context.Background(), &s3.CompleteMultipartUploadInput{Bucket: aws.String(u.bucket),
		Key: aws.String(u.key), UploadId: aws.String(u.id), MultipartUpload: &types.CompletedMultipartUpload{Parts: u.completed}})
	return err
}

func (u *upload) abort(c *s3.Client) error {
	_, err := c.AbortMultipartUpload(context.Background(), &s3.AbortMultipartUploadInput{Bucket: aws.String(u.bucket),
		Key: aws.String(u.key), UploadId: aws.String(u.id)})
	return err
}

// wantObject checks the upstream object is parts 1..n.
func wantObject(t *testing.T, upBucket, key string, n int) {
	t.Helper()
	var want []byte
	for i := 1; i <= n; i++ {
		want = append(want, part(i)...)
	}
	got, _ := upstream.GetObject(t, upBucket, key)
	if !bytes.Equal(got, want) {
		t.Errorf("object %s: %d bytes; want parts 1..%d (%d bytes)", key, len(got), n, len(want))
	}
}

// TestUploadIDBoundToCreator: another client credential of the same bucket cannot add a part to,
// list, complete or abort an upload it did not create, nor can anyone use an altered id or the
// id for another key; the creator's upload is untouched and completes.
func TestUploadIDBoundToCreator(t *testing.T) {
	p := startProxy(t, withOtherClient())
	alice, bob := p.sdkClient(t), p.sdkClientAs(t, otherAK, otherSK)
	u := createUpload(t, alice, p.Bucket, "dir/alice.bin")

	// The client holds a token; the upstream holds the id the token carries.
	upID := upstreamID(t, p.Bucket, u.key, u.id)
	found := false
	for _, m := range upstream.ListMultipartUploads(t, p.UpBucket) {
		found = found || aws.ToString(m.UploadId) == upID
		if aws.ToString(m.UploadId) == u.id {
			t.Errorf("the upstream knows the client's token %q", u.id)
		}
	}
	if !found {
		t.Fatalf("upstream id %q not among the upstream's uploads", upID)
	}
	if err := u.put(t, alice, 1); err != nil {
		t.Fatal(err)
	}

	refused := metrics.GetOrCreateCounter(`mizuchi_upload_id_refused_total`).Get()
	stolen := &upload{bucket: u.bucket, key: u.key, id: u.id, completed: u.completed}
	wantNoSuchUpload(t, "other principal's UploadPart", stolen.putSmall(bob, 2))
	_, err := stolen.list(bob)
	wantNoSuchUpload(t, "other principal's ListParts", err)
	wantNoSuchUpload(t, "other principal's Complete", stolen.complete(bob))
	wantNoSuchUpload(t, "other principal's Abort", stolen.abort(bob))

	otherKey := &upload{bucket: u.bucket, key: "dir/other.bin", id: u.id, completed: u.completed}
	wantNoSuchUpload(t, "UploadPart for another key", otherKey.putSmall(alice, 2))
	wantNoSuchUpload(t, "Complete for another key", otherKey.complete(alice))
	for _, bad := range []string{u.id[:len(u.id)-1], alter(u.id), upID} {
		forged := &upload{bucket: u.bucket, key: u.key, id: bad, completed: u.completed}
		wantNoSuchUpload(t, "UploadPart with "+bad, forged.putSmall(alice, 2))
		_, err := forged.list(alice)
		wantNoSuchUpload(t, "ListParts with "+bad, err)
		wantNoSuchUpload(t, "Abort with "+bad, forged.abort(alice))
	}
	// The loop counts a refusal just after writing it: wait for the last one.
	deadline := time.Now().Add(5 * time.Second)
	got := metrics.GetOrCreateCounter(`mizuchi_upload_id_refused_total`).Get() - refused
	for ; got < 15 && time.Now().Before(deadline); got = metrics.GetOrCreateCounter(`mizuchi_upload_id_refused_total`).Get() - refused {
		runtime.Gosched()
	}
	if got != 15 {
		t.Errorf("mizuchi_upload_id_refused_total grew by %d; want 15", got)
	}

	// Nothing of that reached the upload: one part, still open; ListParts answers with the token.
	lp, err := u.list(alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 1 || aws.ToString(lp.UploadId) != u.id {
		t.Fatalf("ListParts: %d parts, UploadId %q; want 1 part and the token %q", len(lp.Parts), aws.ToString(lp.UploadId), u.id)
	}
	if err := u.put(t, alice, 2); err != nil {
		t.Fatal(err)
	}
	if err := u.complete(alice); err != nil {
		t.Fatal(err)
	}
	wantObject(t, p.UpBucket, u.key, 2)
}

// alter changes one character of a token in the middle (its MAC or the id it carries).
func alter(tok string) string {
	b := []byte(tok)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestUploadIDOtherPrincipalNeverUpstream: a valid token of another principal is refused before
// anything goes upstream (the tripwire sees no connection).
func TestUploadIDOtherPrincipalNeverUpstream(t *testing.T) {
	tw := startTripwire(t)
	p := startProxy(t, withOtherClient(), withSecrets(secretNew),
		func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = tw.Endpoint })
	s, _ := uploadid.New(secretNew)
	tok, err := s.Seal(nil, []byte("upstream-upload-1"), &uploadid.Binding{Principal: clientAK, Bucket: p.Bucket, Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	bob := p.sdkClientAs(t, otherAK, otherSK)
	u := &upload{bucket: p.Bucket, key: "k", id: string(tok), completed: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: aws.String(`"x"`)}}}
	wantNoSuchUpload(t, "UploadPart", u.putSmall(bob, 2))
	_, err = u.list(bob)
	wantNoSuchUpload(t, "ListParts", err)
	wantNoSuchUpload(t, "Complete", u.complete(bob))
	wantNoSuchUpload(t, "Abort", u.abort(bob))
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("refused upload ids opened %d upstream connections; want 0", n)
	}
}

// TestUploadIDRotation: after the secret is rotated (new first, previous kept), an upload created
// under the previous secret continues and completes; new uploads are sealed with the new secret,
// which a node that still has only the previous one refuses.
func TestUploadIDRotation(t *testing.T) {
	before := startProxy(t, withSecrets(secretOld))
	u := createUpload(t, before.sdkClient(t), before.Bucket, "rotated.bin")
	if err := u.put(t, u.c, 1); err != nil {
		t.Fatal(err)
	}
	after := startProxy(t, sameBucketAs(before), withSecrets(secretNew, secretOld))
	c := after.sdkClient(t)
	if err := u.put(t, c, 2); err != nil {
		t.Fatalf("UploadPart with a token of the previous secret: %v", err)
	}
	if lp, err := u.list(c); err != nil || len(lp.Parts) != 2 {
		t.Fatalf("ListParts after rotation: %v", err)
	}
	if err := u.complete(c); err != nil {
		t.Fatal(err)
	}
	wantObject(t, before.UpBucket, u.key, 2)

	fresh := createUpload(t, c, before.Bucket, "fresh.bin")
	wantNoSuchUpload(t, "a node without the new secret", fresh.putSmall(u.c, 2))
	if err := fresh.abort(c); err != nil {
		t.Fatal(err)
	}
	retired := startProxy(t, sameBucketAs(before), withSecrets(secretNew))
	old := createUpload(t, u.c, before.Bucket, "old.bin")
	wantNoSuchUpload(t, "the previous secret once retired", old.putSmall(retired.sdkClient(t), 2))
	if err := old.abort(u.c); err != nil {
		t.Fatal(err)
	}
}

// TestUploadIDTwoNodes: two engines sharing a configuration (explicit secrets, or none: the key
// derived from the upstream secret) take parts of one upload alternately, and either completes it.
func TestUploadIDTwoNodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []proxyOpt
	}{{"secrets", []proxyOpt{withSecrets(secretNew, secretOld)}}, {"derived", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			a := startProxy(t, tc.opts...)
			b := startProxy(t, append([]proxyOpt{sameBucketAs(a)}, tc.opts...)...)
			ca, cb := a.sdkClient(t), b.sdkClient(t)
			u := createUpload(t, ca, a.Bucket, "two/nodes.bin") // b serves a's bucket (sameBucketAs)
			for n, c := range []*s3.Client{ca, cb, ca} {
				if err := u.put(t, c, n+1); err != nil {
					t.Fatalf("part %d: %v", n+1, err)
				}
			}
			lp, err := u.list(cb)
			if err != nil || len(lp.Parts) != 3 || aws.ToString(lp.UploadId) != u.id {
				t.Fatalf("ListParts on the other node: %v", err)
			}
			if err := u.complete(cb); err != nil {
				t.Fatal(err)
			}
			wantObject(t, a.UpBucket, u.key, 3)
		})
	}
}

// TestUploadIDListPartsPaged: a paged ListParts keeps its markers and gets the token.
func TestUploadIDListPartsPaged(t *testing.T) {
	p := startProxy(t)
	c := p.sdkClient(t)
	u := createUpload(t, c, p.Bucket, "paged.bin")
	for n := 1; n <= 3; n++ {
		if err := u.put(t, c, n); err != nil {
			t.Fatal(err)
		}
	}
	lp, err := c.ListParts(context.Background(), &s3.ListPartsInput{Bucket: aws.String(u.bucket), Key: aws.String(u.key),
		UploadId: aws.String(u.id), MaxParts: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(lp.Parts) != 2 || !aws.ToBool(lp.IsTruncated) || aws.ToString(lp.NextPartNumberMarker) != "2" || aws.ToString(lp.UploadId) != u.id {
		t.Fatalf("page 1: %d parts, truncated %v, next %q, UploadId %q", len(lp.Parts), aws.ToBool(lp.IsTruncated), aws.ToString(lp.NextPartNumberMarker), aws.ToString(lp.UploadId))
	}
	lp, err = c.ListParts(context.Background(), &s3.ListPartsInput{Bucket: aws.String(u.bucket), Key: aws.String(u.key),
		UploadId: aws.String(u.id), PartNumberMarker: lp.NextPartNumberMarker})
	if err != nil || len(lp.Parts) != 1 || aws.ToInt32(lp.Parts[0].PartNumber) != 3 {
		t.Fatalf("page 2: %v", err)
	}
	if strings.ContainsAny(u.id, "+/=") {
		t.Errorf("token %q is not base64url", u.id)
	}
	if err := u.abort(c); err != nil {
		t.Fatal(err)
	}
}
