package engine_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// A key with a "." or ".." segment, raw or percent-encoded, is refused with 400 InvalidArgument
// before anything goes upstream, and no object appears under any spelling of it.
func TestSecurityDotSegmentKeysRefused(t *testing.T) {
	p := startProxy(t)
	b := "/" + p.Bucket
	for _, path := range []string{
		b + "/a/../b",
		b + "/a/%2e%2E/b",
		b + "/a/.%2e/b",
		b + "/..",
		b + "/.",
		b + "/%2e%2e%2f" + p.UpBucket + "%2fx",
		b + "/a%2F..%2Fb",
		b + "/a%5C..%5Cb",
	} {
		r := rawReq{Method: "PUT", Path: path, Body: []byte("escaped")}
		resp, body := p.do(t, r.bytes(t, p.Addr))
		wantS3Error(t, resp, body, 400, "InvalidArgument")
		if !bytes.Contains(body, []byte("dot segment")) {
			t.Errorf("PUT %s: message does not name dot segments: %s", path, body)
		}
	}
	if keys := upstream.ListKeys(t, p.UpBucket); len(keys) != 0 {
		t.Fatalf("refused keys left objects upstream: %q", keys)
	}
	// Dots that are not whole segments are ordinary key bytes.
	r := rawReq{Method: "PUT", Path: b + "/a/.b/..c/.../d..", Body: []byte("fine")}
	if resp, body := p.do(t, r.bytes(t, p.Addr)); resp.StatusCode != 200 {
		t.Fatalf("PUT of a key with dots inside segments: %d %s", resp.StatusCode, body)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "a/.b/..c/.../d.."); string(got) != "fine" {
		t.Fatalf("object = %q", got)
	}
}

// Two Authorization headers are refused with 400 InvalidArgument before any verification: which
// one a verifier, a logger or the upstream would read is not defined.
func TestSecurityDuplicateAuthorizationRefused(t *testing.T) {
	p, tw := startTripwireProxy(t)
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/dup", Body: []byte("x")}
	wire := r.bytes(t, p.Addr)
	auth := regexp.MustCompile(`(?m)^Authorization: [^\r]*`).Find(wire)
	if auth == nil {
		t.Fatal("no Authorization in the signed request")
	}
	for name, extra := range map[string]string{
		"same value":  string(auth),
		"other value": "Authorization: AWS4-HMAC-SHA256 Credential=AKIDOTHER/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64),
		"lower case":  "authorization: " + strings.TrimPrefix(string(auth), "Authorization: "),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := p.do(t, injectHeaders(wire, extra))
			wantS3Error(t, resp, body, 400, "InvalidArgument")
			if !bytes.Contains(body, []byte("Only one Authorization header")) {
				t.Errorf("message: %s", body)
			}
		})
	}
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("refused requests opened %d upstream connections; want 0", n)
	}
}

// The headers a tampering middlebox adds to a correctly signed request.
var injected = []string{
	"x-amz-meta-injected: yes-injected",
	"x-amz-tagging: evil=injected",
	"x-amz-website-redirect-location: /injected-redirect",
}

// x-amz-* headers the client did not sign are refused with 403 AccessDenied before anything goes
// upstream (S3's answer), on the inline and the detached path; without them the same request
// stores an object that carries none of them.
func TestSecurityUnsignedAmzHeadersRefused(t *testing.T) {
	p := startProxy(t)
	for _, size := range []int{5, 100 << 10} { // inline; detached (above inline_body_max)
		key := fmt.Sprintf("unsigned-%d", size)
		body := s3test.RandomBytes(size, int64(size))
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: body,
			Header: http.Header{"X-Amz-Meta-Signed": {"ok"}}}
		wire := r.bytes(t, p.Addr)
		resp, rb := p.do(t, injectHeaders(wire, injected...))
		wantS3Error(t, resp, rb, 403, "AccessDenied")
		if !bytes.Contains(rb, []byte("There were headers present in the request which were not signed")) {
			t.Errorf("message: %s", rb)
		}
		if bytes.Contains(rb, []byte("injected")) {
			t.Errorf("the error document echoes a header value: %s", rb)
		}
		if upstream.ObjectExists(t, p.UpBucket, key) {
			t.Fatalf("%s: an object was stored from a request with unsigned x-amz-* headers", key)
		}

		resp, rb = p.do(t, wire)
		if resp.StatusCode != 200 {
			t.Fatalf("%s without the injected headers: %d %s", key, resp.StatusCode, rb)
		}
		got, head := upstream.GetObject(t, p.UpBucket, key)
		if !bytes.Equal(got, body) {
			t.Fatalf("%s: body differs", key)
		}
		if _, ok := head.Metadata["injected"]; ok || head.Metadata["signed"] != "ok" {
			t.Errorf("%s: metadata = %v; want only signed=ok", key, head.Metadata)
		}
		if v := aws.ToString(head.WebsiteRedirectLocation); v != "" {
			t.Errorf("%s: website redirect = %q", key, v)
		}
		if tags := upstream.GetObjectTagging(t, p.UpBucket, key); len(tags) != 0 {
			t.Errorf("%s: tags = %v", key, tags)
		}
	}
}

// Every operation refuses an unsigned x-amz-* header on the loop: nothing reaches the upstream.
func TestSecurityUnsignedAmzHeadersEveryOperation(t *testing.T) {
	p, tw := startTripwireProxy(t)
	k := "/" + p.Bucket + "/key"
	complete := []byte(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"x"</ETag></Part></CompleteMultipartUpload>`)
	for name, r := range map[string]rawReq{
		"PutObject":               {Method: "PUT", Path: k, Body: []byte("x")},
		"CreateMultipartUpload":   {Method: "POST", Path: k, Query: "uploads="},
		"UploadPart":              {Method: "PUT", Path: k, Query: "partNumber=1&uploadId=abc", Body: []byte("x")},
		"CompleteMultipartUpload": {Method: "POST", Path: k, Query: "uploadId=abc", Body: complete},
		"AbortMultipartUpload":    {Method: "DELETE", Path: k, Query: "uploadId=abc"},
		"ListParts":               {Method: "GET", Path: k, Query: "uploadId=abc"},
	} {
		t.Run(name, func(t *testing.T) {
			for _, h := range injected {
				resp, body := p.do(t, injectHeaders(r.bytes(t, p.Addr), h))
				wantS3Error(t, resp, body, 403, "AccessDenied")
			}
			// Upper case names are the same headers.
			resp, body := p.do(t, injectHeaders(r.bytes(t, p.Addr), "X-AMZ-ACL: public-read"))
			wantS3Error(t, resp, body, 403, "AccessDenied")
		})
	}
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("refused requests opened %d upstream connections; want 0", n)
	}
}

// capture is an upstream that records each request's headers and answers 200 with an ETag.
type capture struct {
	Endpoint string
	mu       sync.Mutex
	heads    []http.Header
}

func startCapture(t *testing.T) *capture {
	t.Helper()
	c := &capture{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		c.mu.Lock()
		c.heads = append(c.heads, r.Header.Clone())
		c.mu.Unlock()
		w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
		w.WriteHeader(200)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	c.Endpoint = "http://" + l.Addr().String()
	return c
}

func (c *capture) last(t *testing.T) http.Header {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.heads) == 0 {
		t.Fatal("nothing reached the upstream")
	}
	return c.heads[len(c.heads)-1]
}

// Upstream, the proxy forwards what the client signed plus the standard headers S3 accepts
// unsigned; other unsigned headers are dropped, not refused. With auth: none (no client
// signature) every end-to-end header goes through as before.
func TestSecurityForwardsOnlySignedHeaders(t *testing.T) {
	unsigned := []string{
		"Content-Type: text/x-unsigned",
		"Cache-Control: no-store",
		"Content-Disposition: inline",
		"Content-Language: fr",
		"Expires: Thu, 01 Jan 2037 00:00:00 GMT",
		"If-None-Match: *",
		"User-Agent: unsigned-agent",
		"X-Forwarded-For: 10.9.8.7",
		"Cookie: session=1",
		"Origin: http://evil.example",
		"X-Unsigned-Custom: 1",
	}
	forwarded := []string{"Content-Type", "Cache-Control", "Content-Disposition", "Content-Language", "Expires",
		"If-None-Match", "X-Amz-Meta-Signed", "X-Signed-Custom"}
	dropped := []string{"User-Agent", "X-Forwarded-For", "Cookie", "Origin", "X-Unsigned-Custom"}
	for _, size := range []int{3, 100 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := startCapture(t)
			p := startProxy(t, func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = c.Endpoint })
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/fwd", Body: make([]byte, size),
				Header: http.Header{"X-Amz-Meta-Signed": {"ok"}, "X-Signed-Custom": {"1"}}}
			resp, body := p.do(t, injectHeaders(r.bytes(t, p.Addr), unsigned...))
			if resp.StatusCode != 200 {
				t.Fatalf("PUT: %d %s", resp.StatusCode, body)
			}
			h := c.last(t)
			for _, n := range forwarded {
				if h.Get(n) == "" {
					t.Errorf("%s was not forwarded: %v", n, h)
				}
			}
			for _, n := range dropped {
				if v := h.Get(n); v != "" {
					t.Errorf("unsigned %s was forwarded: %q", n, v)
				}
			}
		})
	}
	t.Run("auth none", func(t *testing.T) {
		c := startCapture(t)
		p := startProxy(t, func(o *engine.Options) {
			o.Buckets[0].Upstream.Endpoint = c.Endpoint
			o.Buckets[0].AuthNone = true
			o.Buckets[0].Credentials = nil
		})
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/none", Body: []byte("x"), NoSign: true,
			Header: http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}}
		resp, body := p.do(t, injectHeaders(r.bytes(t, p.Addr), append([]string{"x-amz-meta-trusted: 1"}, unsigned...)...))
		if resp.StatusCode != 200 {
			t.Fatalf("PUT: %d %s", resp.StatusCode, body)
		}
		h := c.last(t)
		for _, n := range append([]string{"X-Amz-Meta-Trusted", "X-Forwarded-For", "X-Unsigned-Custom"}, forwarded[:6]...) {
			if h.Get(n) == "" {
				t.Errorf("auth none: %s was not forwarded", n)
			}
		}
	})
}

// errorMessage is the Message of an S3 error document, unescaped.
func errorMessage(t *testing.T, body []byte) string {
	t.Helper()
	var doc struct{ Message string }
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("error document %s: %v", body, err)
	}
	return doc.Message
}

// authFailures reads the auth-failure counter of one reason (process-wide: tests run one at a time).
func authFailures(reason string) uint64 {
	return metrics.GetOrCreateCounter(`mizuchi_auth_failures_total{reason="` + reason + `"}`).Get()
}

// A signature whose credential scope names a region the bucket does not accept is refused with
// 400 AuthorizationHeaderMalformed and S3's message, counted as an auth failure, and stores
// nothing; a second configured region is accepted.
func TestSecuritySigningRegion(t *testing.T) {
	t.Run("default: the upstream's region", func(t *testing.T) {
		p := startProxy(t)
		before := authFailures("AuthorizationHeaderMalformed")
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/wrong-region", Body: []byte("x"), Region: "eu-west-1"}
		resp, body := p.do(t, r.bytes(t, p.Addr))
		wantS3Error(t, resp, body, 400, "AuthorizationHeaderMalformed")
		if want := "the region 'eu-west-1' is wrong; expecting '" + upstream.Region + "'"; !strings.Contains(errorMessage(t, body), want) {
			t.Errorf("message does not say %q: %s", want, body)
		}
		if got := authFailures("AuthorizationHeaderMalformed") - before; got != 1 {
			t.Errorf("auth failures counted: %d; want 1", got)
		}
		if upstream.ObjectExists(t, p.UpBucket, "wrong-region") {
			t.Fatal("an object was stored from a request signed for another region")
		}
		r.Region = upstream.Region
		if resp, body := p.do(t, r.bytes(t, p.Addr)); resp.StatusCode != 200 {
			t.Fatalf("signed for %s: %d %s", upstream.Region, resp.StatusCode, body)
		}
	})
	t.Run("two regions", func(t *testing.T) {
		p := startProxy(t, func(o *engine.Options) {
			o.Buckets[0].SigningRegions = []string{upstream.Region, "eu-central-1"}
		})
		for _, region := range []string{"eu-central-1", upstream.Region} {
			key := "region-" + region
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: []byte(region), Region: region}
			if resp, body := p.do(t, r.bytes(t, p.Addr)); resp.StatusCode != 200 {
				t.Fatalf("signed for %s: %d %s", region, resp.StatusCode, body)
			}
			if got, _ := upstream.GetObject(t, p.UpBucket, key); string(got) != region {
				t.Errorf("%s: object = %q", key, got)
			}
		}
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/region-other", Body: []byte("x"), Region: "ap-south-1"}
		resp, body := p.do(t, r.bytes(t, p.Addr))
		wantS3Error(t, resp, body, 400, "AuthorizationHeaderMalformed")
		if want := "the region 'ap-south-1' is wrong; expecting '" + upstream.Region + "'"; !strings.Contains(errorMessage(t, body), want) {
			t.Errorf("message does not say %q: %s", want, body)
		}
		if upstream.ObjectExists(t, p.UpBucket, "region-other") {
			t.Fatal("an object was stored from a request signed for another region")
		}
	})
}

// injectHeaders inserts header lines (each "Name: value") into a request's wire bytes after it was
// signed, as a middlebox or a tampering client would.
func injectHeaders(wire []byte, lines ...string) []byte {
	i := bytes.Index(wire, []byte("\r\n\r\n"))
	var out []byte
	out = append(out, wire[:i+2]...)
	for _, l := range lines {
		out = append(out, l+"\r\n"...)
	}
	return append(out, wire[i+2:]...)
}
