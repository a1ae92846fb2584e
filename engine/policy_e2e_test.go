package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
	"github.com/mizuchi/uploadr/policy"
)

// Bucket policy end to end: through the proxy to versitygw, and against a tripwire upstream to
// show that refusals send nothing upstream and read no body.

// testPolicy: keys under users/<access key>/, objects and parts up to 1 MiB, images and PDFs,
// STANDARD only, a crc32, crc32c or sha256 digest with every body, parts 1..3, no overwrite.
func testPolicy(t *testing.T, maxSize int64) *policy.Policy {
	t.Helper()
	pol, err := policy.Compile([]policy.RuleSet{{
		MaxObjectSize:         maxSize,
		AllowedContentTypes:   []string{"image/*", "application/pdf"},
		KeyTemplate:           "users/{principal}/*",
		NoOverwrite:           true,
		RequireChecksum:       []string{"crc32", "crc32c", "sha256"},
		AllowedStorageClasses: []string{"STANDARD"},
		MaxParts:              3,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func withPolicy(pol *policy.Policy) proxyOpt {
	return func(o *engine.Options) { o.Buckets[0].Policy = pol }
}

func TestPolicyRefusalsNeverReachUpstream(t *testing.T) {
	tw := startTripwire(t)
	p := startProxy(t, withPolicy(testPolicy(t, 1<<20)), func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = tw.Endpoint })
	own := "/" + p.Bucket + "/users/" + clientAK + "/"
	png := http.Header{"Content-Type": {"image/png"}}
	hdr := func(kv ...string) http.Header {
		h := png.Clone()
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	cases := []struct {
		name   string
		req    rawReq
		status int
		code   string
		rule   string
	}{
		{"other key", rawReq{Method: "PUT", Path: "/" + p.Bucket + "/users/other/a.png", Header: png, Body: []byte("x")}, 403, "AccessDenied", "key_template"},
		{"too large", rawReq{Method: "PUT", Path: own + "a.png", Header: hdr("Content-Length", "1048577"), Payload: "UNSIGNED-PAYLOAD"}, 400, "EntityTooLarge", "max_object_size"},
		{"content type", rawReq{Method: "PUT", Path: own + "a.html", Header: http.Header{"Content-Type": {"text/html"}}, Body: []byte("x")}, 403, "AccessDenied", "allowed_content_types"},
		{"storage class", rawReq{Method: "PUT", Path: own + "a.png", Header: hdr("X-Amz-Storage-Class", "GLACIER"), Body: []byte("x")}, 403, "AccessDenied", "allowed_storage_classes"},
		{"no checksum", rawReq{Method: "PUT", Path: own + "a.png", Header: png, Body: []byte("x"), Payload: "UNSIGNED-PAYLOAD"}, 403, "AccessDenied", "require_checksum"},
		{"create type", rawReq{Method: "POST", Path: own + "big.txt", Query: "uploads=", Header: http.Header{"Content-Type": {"text/plain"}}}, 403, "AccessDenied", "allowed_content_types"},
		{"part 4", rawReq{Method: "PUT", Path: own + "big.png", Query: "partNumber=4&uploadId=abc", Body: []byte("x")}, 403, "AccessDenied", "max_parts"},
		{"part too large", rawReq{Method: "PUT", Path: own + "big.png", Query: "partNumber=1&uploadId=abc", Header: http.Header{"Content-Length": {"1048577"}}, Payload: "UNSIGNED-PAYLOAD"}, 400, "EntityTooLarge", "max_object_size"},
		{"complete other key", rawReq{Method: "POST", Path: "/" + p.Bucket + "/big.png", Query: "uploadId=abc",
			Body: []byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>`)}, 403, "AccessDenied", "key_template"},
		{"abort other key", rawReq{Method: "DELETE", Path: "/" + p.Bucket + "/big.png", Query: "uploadId=abc"}, 403, "AccessDenied", "key_template"},
		{"list parts other key", rawReq{Method: "GET", Path: "/" + p.Bucket + "/big.png", Query: "uploadId=abc"}, 403, "AccessDenied", "key_template"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var resp *http.Response
			var body []byte
			if tc.req.Body == nil && tc.req.Header.Get("Content-Length") != "" {
				// A declared body never sent: the answer must come on the head alone.
				resp, body = headOnly(t, p.Addr, tc.req.bytes(t, p.Addr))
			} else {
				resp, body = p.do(t, tc.req.bytes(t, p.Addr))
			}
			wantS3Error(t, resp, body, tc.status, tc.code)
			if !bytes.Contains(body, []byte(tc.rule)) {
				t.Errorf("message %s does not name the rule %s", body, tc.rule)
			}
		})
	}
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("policy refusals opened %d upstream connections", n)
	}
}

// headOnly sends a head whose body it never sends and reads the answer.
func headOnly(t *testing.T, addr string, head []byte) (*http.Response, []byte) {
	t.Helper()
	c := dial(t, addr)
	if _, err := c.Write(head); err != nil {
		t.Fatal(err)
	}
	return readResponse(t, bufio.NewReader(c))
}

// A client that sends the head only, with Expect: 100-continue, gets the policy's refusal as the
// first thing on the wire (no 100 Continue): not one body byte was sent, so none was read, and
// nothing went upstream.
func TestPolicyExpectContinueZeroBodyBytes(t *testing.T) {
	tw := startTripwire(t)
	p := startProxy(t, withPolicy(testPolicy(t, 1<<20)), func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = tw.Endpoint })
	for _, tc := range []struct {
		name, path, size, status string
	}{
		{"too large", "/users/" + clientAK + "/big.png", "104857600", "400"},
		{"other key", "/users/other/a.png", "1000", "403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + tc.path, Payload: "UNSIGNED-PAYLOAD",
				Header: http.Header{"Expect": {"100-continue"}, "Content-Length": {tc.size}, "Content-Type": {"image/png"},
					"X-Amz-Checksum-Crc32c": {"AAAAAA=="}}}
			c := dial(t, p.Addr)
			if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(line, "HTTP/1.1 "+tc.status) {
				t.Fatalf("first line = %q; want %s before any 100 Continue", line, tc.status)
			}
		})
	}
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("upstream contacted %d times", n)
	}
}

// Allowed requests go through; no_overwrite makes a second PutObject of a key fail with the
// upstream's 412, the first object intact, in both transfer modes (inline and streamed bodies).
func TestPolicyAllowedAndNoOverwrite(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		if err := lastEngine.UpdateBuckets(policyBuckets(t, p, 16<<20, 0)); err != nil {
			t.Fatal(err)
		}
		own := "/" + p.Bucket + "/users/" + clientAK + "/"
		for _, size := range []int{10, 3 << 20} {
			key := "users/" + clientAK + "/nov-" + itoa(size) + ".png"
			first := s3test.RandomBytes(size, 1)
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Header: http.Header{"Content-Type": {"image/png"}}, Body: first}
			if resp, b := p.do(t, r.bytes(t, p.Addr)); resp.StatusCode != 200 {
				t.Fatalf("first PUT (%d bytes): %d %s", size, resp.StatusCode, b)
			}
			r.Body = s3test.RandomBytes(size, 2)
			resp, b := p.do(t, r.bytes(t, p.Addr))
			want412(t, resp, b)
			if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, first) {
				t.Fatalf("%s overwritten despite no_overwrite", key)
			}
		}
		// A client's own If-None-Match cannot lift it.
		r := rawReq{Method: "PUT", Path: own + "nov-10.png", Header: http.Header{"Content-Type": {"image/png"}, "If-None-Match": {`"nope"`}}, Body: []byte("x")}
		resp, b := p.do(t, r.bytes(t, p.Addr))
		want412(t, resp, b)
	})
}

// policyBuckets is p's bucket with testPolicy(maxSize) and auto-chunking above threshold (0 = off).
func policyBuckets(t *testing.T, p *proxy, maxSize, threshold int64) []engine.Bucket {
	return []engine.Bucket{{
		Name: p.Bucket,
		Upstream: engine.Upstream{Endpoint: upstream.Endpoint, Bucket: p.UpBucket, Region: upstream.Region,
			AccessKey: upstream.AccessKey, SecretKey: upstream.SecretKey},
		Credentials: map[string]string{clientAK: clientSK},
		Policy:      testPolicy(t, maxSize),
		Upload:      engine.UploadOptions{MultipartThreshold: threshold, PartSize: 5 << 20},
	}}
}

// A multipart upload by the SDK within the policy completes; a second one of the same key fails
// at CompleteMultipartUpload with the upstream's 412 (If-None-Match: * added by the proxy).
func TestPolicyMultipartNoOverwrite(t *testing.T) {
	p := startProxy(t)
	if err := lastEngine.UpdateBuckets(policyBuckets(t, p, 16<<20, 0)); err != nil {
		t.Fatal(err)
	}
	c := p.sdkClient(t)
	ctx := context.Background()
	key := "users/" + clientAK + "/mp.png"
	upload := func(seed int64) error {
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
			ContentType: aws.String("image/png"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		part, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(p.Bucket), Key: aws.String(key), UploadId: cr.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(s3test.RandomBytes(1000, seed)), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
		if err != nil {
			t.Fatalf("upload part: %v", err)
		}
		_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(key), UploadId: cr.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag, ChecksumCRC32C: part.ChecksumCRC32C}}}})
		return err
	}
	if err := upload(1); err != nil {
		t.Fatalf("first upload: %v", err)
	}
	err := upload(2)
	if err == nil || !strings.Contains(err.Error(), "412") && !strings.Contains(err.Error(), "PreconditionFailed") {
		t.Fatalf("second upload of the same key: %v; want 412 PreconditionFailed", err)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, s3test.RandomBytes(1000, 1)) {
		t.Fatal("object overwritten despite no_overwrite")
	}
}

// An auto-chunked PutObject under no_overwrite: the proxy's own Complete carries If-None-Match: *.
func TestPolicyAutoChunkNoOverwrite(t *testing.T) {
	p := startProxy(t)
	if err := lastEngine.UpdateBuckets(policyBuckets(t, p, 16<<20, 5<<20)); err != nil {
		t.Fatal(err)
	}
	key := "users/" + clientAK + "/auto.png"
	first := s3test.RandomBytes(6<<20, 1)
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Header: http.Header{"Content-Type": {"image/png"}}, Body: first}
	if resp, b := p.do(t, r.bytes(t, p.Addr)); resp.StatusCode != 200 {
		t.Fatalf("first PUT: %d %s", resp.StatusCode, b)
	}
	r.Body = s3test.RandomBytes(6<<20, 2)
	resp, b := p.do(t, r.bytes(t, p.Addr))
	want412(t, resp, b)
	if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, first) {
		t.Fatal("object overwritten despite no_overwrite")
	}
}

// want412 asserts the upstream's 412 PreconditionFailed, relayed as it came.
func want412(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != 412 || !bytes.Contains(body, []byte("<Code>PreconditionFailed</Code>")) {
		t.Errorf("got %d %s; want 412 PreconditionFailed", resp.StatusCode, body)
	}
}

// The net.Listener transport (Engine.Serve) applies the same policy: a refusal on the head, and
// no_overwrite on inline, streamed and auto-chunked PutObjects.
func TestPolicyServeNetListener(t *testing.T) {
	p := startProxy(t)
	if err := lastEngine.UpdateBuckets(policyBuckets(t, p, 16<<20, 5<<20)); err != nil {
		t.Fatal(err)
	}
	q := serveOn(t, lastEngine, p)
	r := rawReq{Method: "PUT", Path: "/" + q.Bucket + "/users/other/a.png", Header: http.Header{"Content-Type": {"image/png"}}, Body: []byte("x")}
	resp, b := q.do(t, r.bytes(t, q.Addr))
	wantS3Error(t, resp, b, 403, "AccessDenied")
	for _, size := range []int{10, 3 << 20, 6 << 20} {
		key := "users/" + clientAK + "/serve-" + itoa(size) + ".png"
		first := s3test.RandomBytes(size, 1)
		r := rawReq{Method: "PUT", Path: "/" + q.Bucket + "/" + key, Header: http.Header{"Content-Type": {"image/png"}}, Body: first}
		if resp, b := q.do(t, r.bytes(t, q.Addr)); resp.StatusCode != 200 {
			t.Fatalf("first PUT (%d bytes): %d %s", size, resp.StatusCode, b)
		}
		r.Body = s3test.RandomBytes(size, 2)
		resp, b := q.do(t, r.bytes(t, q.Addr))
		want412(t, resp, b)
		if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, first) {
			t.Fatalf("%s overwritten despite no_overwrite", key)
		}
	}
}

// aws-sdk-go-v2 with its defaults (CRC32 checksums) satisfies require_checksum [crc32, ...]; a
// policy requiring only sha1 refuses the same upload with the rule named.
func TestPolicySDKDefaultChecksums(t *testing.T) {
	p := startProxy(t)
	if err := lastEngine.UpdateBuckets(policyBuckets(t, p, 16<<20, 0)); err != nil {
		t.Fatal(err)
	}
	c := p.sdkClient(t)
	ctx := context.Background()
	key := "users/" + clientAK + "/sdk.png"
	body := s3test.RandomBytes(100<<10, 3)
	put := func(k string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(k),
			ContentType: aws.String("image/png"), Body: bytes.NewReader(body)})
		return err
	}
	if err := put(key); err != nil {
		t.Fatalf("SDK PutObject within the policy: %v", err)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, body) {
		t.Fatal("object differs")
	}
	sha1Only, err := policy.Compile([]policy.RuleSet{{RequireChecksum: []string{"sha1"}}})
	if err != nil {
		t.Fatal(err)
	}
	bs := policyBuckets(t, p, 16<<20, 0)
	bs[0].Policy = sha1Only
	if err := lastEngine.UpdateBuckets(bs); err != nil {
		t.Fatal(err)
	}
	if err := put(key + ".2"); err == nil || !strings.Contains(err.Error(), "require_checksum") {
		t.Fatalf("SDK PutObject without a sha1: %v; want AccessDenied naming require_checksum", err)
	}
}
