package engine_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
)

// startTripwireProxy runs a proxy whose upstream must never be contacted.
func startTripwireProxy(t *testing.T) (*proxy, *tripwire) {
	t.Helper()
	tw := startTripwire(t)
	p := startProxy(t, func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = tw.Endpoint })
	return p, tw
}

func TestRefusalsNeverReachUpstream(t *testing.T) {
	p, tw := startTripwireProxy(t)
	b := "/" + p.Bucket
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
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
	}{
		{"GetObject", rawReq{Method: "GET", Path: b + "/key"}, 405, "MethodNotAllowed"},
		{"DeleteObject", rawReq{Method: "DELETE", Path: b + "/key"}, 405, "MethodNotAllowed"},
		{"ListObjectsV2", rawReq{Method: "GET", Path: b, Query: "list-type=2"}, 405, "MethodNotAllowed"},
		{"ListObjects slash", rawReq{Method: "GET", Path: b + "/"}, 405, "MethodNotAllowed"},
		{"CreateBucket", rawReq{Method: "PUT", Path: b}, 405, "MethodNotAllowed"},
		{"DeleteBucket", rawReq{Method: "DELETE", Path: b}, 405, "MethodNotAllowed"},
		{"PostObject form", rawReq{Method: "POST", Path: b, Body: []byte("x")}, 405, "MethodNotAllowed"},
		{"DeleteObjects", rawReq{Method: "POST", Path: b, Query: "delete=", Body: []byte("<Delete/>")}, 405, "MethodNotAllowed"},
		{"ListMultipartUploads", rawReq{Method: "GET", Path: b, Query: "uploads="}, 405, "MethodNotAllowed"},
		{"ListBuckets", rawReq{Method: "GET", Path: "/"}, 405, "MethodNotAllowed"},
		{"OPTIONS without Origin", rawReq{Method: "OPTIONS", Path: b + "/key"}, 400, "BadRequest"},
		{"preflight, bucket without CORS rules", rawReq{Method: "OPTIONS", Path: b + "/key", NoSign: true,
			Header: http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"PUT"}}}, 403, "AccessForbidden"},
		{"CopyObject", rawReq{Method: "PUT", Path: b + "/key", Header: hdr("x-amz-copy-source", "/other/key")}, 501, "NotImplemented"},
		{"UploadPartCopy", rawReq{Method: "PUT", Path: b + "/key", Query: "partNumber=1&uploadId=abc", Header: hdr("x-amz-copy-source", "/other/key")}, 501, "NotImplemented"},
		{"PutObjectAcl", rawReq{Method: "PUT", Path: b + "/key", Query: "acl="}, 501, "NotImplemented"},
		{"PutObjectTagging", rawReq{Method: "PUT", Path: b + "/key", Query: "tagging="}, 501, "NotImplemented"},
		{"SelectObjectContent", rawReq{Method: "POST", Path: b + "/key", Query: "select=&select-type=2"}, 501, "NotImplemented"},
		{"GetObjectAcl", rawReq{Method: "GET", Path: b + "/key", Query: "acl="}, 405, "MethodNotAllowed"},
		{"unknown bucket", rawReq{Method: "PUT", Path: "/not-a-bucket/key", Body: []byte("x")}, 403, "AccessDenied"},
		{"unknown bucket GET", rawReq{Method: "GET", Path: "/not-a-bucket/key"}, 403, "AccessDenied"},
		{"anonymous", rawReq{Method: "PUT", Path: b + "/key", Body: []byte("x"), NoSign: true}, 403, "AccessDenied"},
		{"wrong secret", rawReq{Method: "PUT", Path: b + "/key", Body: []byte("x"), AK: clientAK, SK: "wrong"}, 403, "SignatureDoesNotMatch"},
		{"unknown access key", rawReq{Method: "PUT", Path: b + "/key", Body: []byte("x"), AK: "AKIDUNKNOWN", SK: clientSK}, 403, "InvalidAccessKeyId"},
		{"skewed clock", rawReq{Method: "PUT", Path: b + "/key", Body: []byte("x"), Time: time.Now().Add(-20 * time.Minute)}, 403, "RequestTimeTooSkewed"},
		{"ECDSA signed chunks", rawReq{Method: "PUT", Path: b + "/key", Body: []byte("x"), Payload: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
			Header: hdr("Content-Encoding", "aws-chunked", "x-amz-decoded-content-length", "1")}, 501, "NotImplemented"},
		{"bad payload hash", rawReq{Method: "PUT", Path: b + "/key", Body: []byte("x"), Payload: "not-a-hash"}, 400, "InvalidArgument"},
		{"part number 0", rawReq{Method: "PUT", Path: b + "/key", Query: "partNumber=0&uploadId=abc", Body: []byte("x")}, 400, "InvalidArgument"},
		{"part number 10001", rawReq{Method: "PUT", Path: b + "/key", Query: "partNumber=10001&uploadId=abc", Body: []byte("x")}, 400, "InvalidArgument"},
		{"part number without upload", rawReq{Method: "PUT", Path: b + "/key", Query: "partNumber=1", Body: []byte("x")}, 400, "InvalidArgument"},
		{"empty uploadId", rawReq{Method: "DELETE", Path: b + "/key", Query: "uploadId="}, 400, "InvalidArgument"},
		{"presigned", rawReq{Method: "PUT", Path: b + "/key", NoSign: true, Body: []byte("x"),
			Query: "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + clientAK + "%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00"}, 400, "AuthorizationQueryParametersError"},
		{"too large", rawReq{Method: "PUT", Path: b + "/key", Header: hdr("Content-Length", "6000000000")}, 400, "EntityTooLarge"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := p.do(t, tc.req.bytes(t, p.Addr))
			wantS3Error(t, resp, body, tc.status, tc.code)
		})
	}

	// A signed header changed after signing.
	t.Run("tampered header", func(t *testing.T) {
		r := rawReq{Method: "PUT", Path: b + "/key", Body: []byte("x"), Header: hdr("x-amz-meta-a", "1")}
		wire := strings.Replace(string(r.bytes(t, p.Addr)), "X-Amz-Meta-A: 1", "X-Amz-Meta-A: 2", 1)
		resp, body := p.do(t, []byte(wire))
		wantS3Error(t, resp, body, 403, "SignatureDoesNotMatch")
	})
	t.Run("HEAD has no body", func(t *testing.T) {
		c := dial(t, p.Addr)
		br := bufio.NewReader(c)
		fmt.Fprintf(c, "HEAD %s/key HTTP/1.1\r\nHost: x\r\n\r\n", b)
		resp, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 405 || resp.Header.Get("x-amz-request-id") == "" {
			t.Errorf("HEAD: %d %v", resp.StatusCode, resp.Header)
		}
		// No body follows: the next bytes on the connection answer the next request.
		fmt.Fprintf(c, "GET %s/key HTTP/1.1\r\nHost: x\r\n\r\n", b)
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 405") {
			t.Errorf("after HEAD: %q %v; want the next response's status line", line, err)
		}
	})
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("refused requests opened %d upstream connections; want 0", n)
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMalformedHeads(t *testing.T) {
	p, tw := startTripwireProxy(t)
	long := strings.Repeat("a", 20<<10)
	cases := []struct {
		name, wire string
		status     int
		code       string
	}{
		{"garbage", "GARBAGE\r\n\r\n", 400, "BadRequest"},
		{"http2 version", "PUT /" + p.Bucket + "/k HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HttpVersionNotSupported"},
		{"header section too large", "PUT /" + p.Bucket + "/k HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 70<<10) + "\r\n\r\n", 431, "RequestHeaderSectionTooLarge"},
		{"uri too long", "PUT /" + p.Bucket + "/" + long + " HTTP/1.1\r\nHost: x\r\n\r\n", 414, "RequestURITooLong"},
		{"duplicate content-length", "PUT /" + p.Bucket + "/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400, "InvalidArgument"},
		{"conflicting content-length", "PUT /" + p.Bucket + "/k HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400, "InvalidArgument"},
		{"transfer-encoding chunked, no length", "PUT /" + p.Bucket + "/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 411, "MissingContentLength"},
		{"transfer-encoding gzip", "PUT /" + p.Bucket + "/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", 501, "NotImplemented"},
		{"transfer-encoding with content-length", "PUT /" + p.Bucket + "/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 11\r\n\r\n1\r\nx\r\n0\r\n\r\n", 400, "BadRequest"},
		{"no colon", "PUT /" + p.Bucket + "/k HTTP/1.1\r\nHost: x\r\nBroken header\r\n\r\n", 400, "BadRequest"},
		{"missing host", "PUT /" + p.Bucket + "/k HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400, "BadRequest"},
		{"missing content-length", "PUT /" + p.Bucket + "/k HTTP/1.1\r\nHost: x\r\n\r\n", 411, "MissingContentLength"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := p.do(t, []byte(tc.wire))
			wantS3Error(t, resp, body, tc.status, tc.code)
		})
	}
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("malformed requests opened %d upstream connections; want 0", n)
	}
}

// Expect: 100-continue is answered only after authentication: a client with a bad signature gets
// its 403 without ever being invited to send the body.
func TestExpectContinueAfterAuth(t *testing.T) {
	p, tw := startTripwireProxy(t)
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/key", SK: "wrong", AK: clientAK,
		Header: http.Header{"Expect": {"100-continue"}, "Content-Length": {"1000000"}}, Payload: "UNSIGNED-PAYLOAD"}
	c := dial(t, p.Addr)
	if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "HTTP/1.1 403") {
		t.Fatalf("first line = %q; want a 403 (no 100 Continue before authentication)", line)
	}
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("upstream contacted %d times", n)
	}
}

func TestCompleteMalformedXMLNeverReachesUpstream(t *testing.T) {
	p, tw := startTripwireProxy(t)
	for _, doc := range []string{
		"not xml",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
		"<CompleteMultipartUpload></CompleteMultipartUpload>",
		"<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>\"x\"</ETag></Part></CompleteMultipartUpload>",
		"<Other><Part><PartNumber>1</PartNumber><ETag>\"x\"</ETag></Part></Other>",
		"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"x\"</ETag></Part></CompleteMultipartUpload><x/>",
	} {
		r := rawReq{Method: "POST", Path: "/" + p.Bucket + "/key", Query: "uploadId=" + tokenFor(t, p.Bucket, "key", "abc"), Body: []byte(doc)}
		resp, body := p.do(t, r.bytes(t, p.Addr))
		wantS3Error(t, resp, body, 400, "MalformedXML")
	}
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("malformed Complete documents opened %d upstream connections", n)
	}
}
