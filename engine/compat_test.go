package engine_test

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// An Expect value other than 100-continue is ignored, as S3 ignores it: the request goes through,
// and no 100 Continue is sent for it (inline and streamed bodies).
func TestExpectOtherIgnored(t *testing.T) {
	p := startProxy(t)
	for _, tc := range []struct {
		name, expect string
		size         int
	}{
		{"inline", "200-ok", 1000},
		{"stream", "foo; bar=1", 300 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("e"), tc.size)
			key := "expect/" + tc.name
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: body,
				Header: http.Header{"Expect": {tc.expect}}}
			c := dial(t, p.Addr)
			go func() { _, _ = c.Write(r.bytes(t, p.Addr)) }()
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(line, "HTTP/1.1 200") {
				t.Fatalf("first line = %q; want HTTP/1.1 200 (no 417, no 100 Continue)", line)
			}
			if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, body) {
				t.Fatalf("stored %d bytes; want %d", len(got), len(body))
			}
		})
	}
}

// Content-Encoding: aws-chunked with a non-streaming x-amz-content-sha256 is an ordinary body, as
// S3 takes it: stored as sent, with aws-chunked dropped from the stored Content-Encoding.
func TestAWSChunkedEncodingPlainBody(t *testing.T) {
	p := startProxy(t)
	for _, tc := range []struct {
		name, payload, encoding, want string
		size                          int
		signEncoding                  bool
	}{
		{"hex alone", "", "aws-chunked", "", 1000, true},
		{"unsigned payload with gzip", "UNSIGNED-PAYLOAD", "aws-chunked,gzip", "gzip", 1000, true},
		{"hex gzip middle unsigned header", "", "gzip, AWS-Chunked , br", "gzip,br", 1000, false},
		{"stream", "UNSIGNED-PAYLOAD", "identity, aws-chunked", "identity", 200 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("c"), tc.size)
			key := "awschunked/" + strings.ReplaceAll(tc.name, " ", "-")
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: body, Payload: tc.payload,
				Header: http.Header{}}
			wire := r.bytes(t, p.Addr)
			if tc.signEncoding {
				r.Header.Set("Content-Encoding", tc.encoding)
				wire = r.bytes(t, p.Addr)
			} else { // added after signing: S3 accepts Content-Encoding unsigned
				wire = bytes.Replace(wire, []byte("\r\n\r\n"), []byte("\r\nContent-Encoding: "+tc.encoding+"\r\n\r\n"), 1)
			}
			resp, rb := p.do(t, wire)
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d (%s); want 200", resp.StatusCode, rb)
			}
			got, head := upstream.GetObject(t, p.UpBucket, key)
			if !bytes.Equal(got, body) {
				t.Fatalf("stored %d bytes; want the %d sent", len(got), len(body))
			}
			if enc := aws.ToString(head.ContentEncoding); enc != tc.want {
				t.Errorf("stored Content-Encoding = %q; want %q", enc, tc.want)
			}
		})
	}
}

// Above the multipart threshold such a body is auto-chunked like any plain body, and the upload
// created upstream carries no aws-chunked coding either.
func TestAWSChunkedEncodingPlainBodyAutoChunked(t *testing.T) {
	p := startProxy(t, withAutoChunk("", 6<<20, 5<<20, 2))
	body := s3test.RandomBytes(11<<20, 11)
	hdr := http.Header{"Content-Encoding": {"gzip,aws-chunked"}}
	resp, rb := putStream(t, p, "awschunked/auto", body, hdr, "UNSIGNED-PAYLOAD")
	if resp.StatusCode != 200 {
		t.Fatalf("status = %d (%s); want 200", resp.StatusCode, rb)
	}
	got, head := upstream.GetObject(t, p.UpBucket, "awschunked/auto")
	if !bytes.Equal(got, body) {
		t.Fatalf("stored %d bytes; want %d", len(got), len(body))
	}
	if enc := aws.ToString(head.ContentEncoding); enc != "gzip" {
		t.Errorf("stored Content-Encoding = %q; want gzip", enc)
	}
	if etag := aws.ToString(head.ETag); !strings.Contains(etag, "-") {
		t.Errorf("ETag %s: not auto-chunked", etag)
	}
}
