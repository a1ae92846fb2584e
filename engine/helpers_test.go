package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// sdkClient is an aws-sdk-go-v2 client for the proxy built the way users build it
// (config.LoadDefaultConfig: default checksums on).
func (p *proxy) sdkClient(t *testing.T) *s3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(clientAK, clientSK, "")),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(p.Endpoint)
		o.UsePathStyle = true
	})
}

func (p *proxy) clientEnv() s3test.ClientEnv {
	return s3test.ClientEnv{Endpoint: p.Endpoint, AccessKey: clientAK, SecretKey: clientSK, Region: "us-east-1"}
}

// rawReq describes a hand-made request; sign signs it with the SDK's signer (the oracle).
type rawReq struct {
	Method  string
	Path    string // already percent-encoded, e.g. /bucket/key
	Query   string
	Header  http.Header
	Body    []byte
	Payload string // x-amz-content-sha256; "" = hex sha256 of Body
	NoSign  bool
	AK, SK  string
	Time    time.Time
	Region  string // of the credential scope; "" = us-east-1
	Chunked bool   // Transfer-Encoding: chunked (unsigned) instead of Content-Length; Body is sent as is
}

// bytes renders the request as wire bytes, signed unless NoSign.
func (r *rawReq) bytes(t *testing.T, host string) []byte {
	t.Helper()
	if r.Header == nil {
		r.Header = http.Header{}
	}
	u := &url.URL{Scheme: "http", Host: host}
	if err := setEscapedPath(u, r.Path); err != nil {
		t.Fatal(err)
	}
	u.RawQuery = r.Query
	req, err := http.NewRequest(r.Method, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL = u
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if !r.NoSign {
		payload := r.Payload
		if payload == "" {
			sum := sha256.Sum256(r.Body)
			payload = hex.EncodeToString(sum[:])
		}
		req.Header.Set("X-Amz-Content-Sha256", payload)
		ak, sk := r.AK, r.SK
		if ak == "" {
			ak, sk = clientAK, clientSK
		}
		tm := r.Time
		if tm.IsZero() {
			tm = time.Now()
		}
		if _, ok := r.Header["Content-Length"]; !ok && !r.Chunked && (r.Method == "PUT" || len(r.Body) > 0) {
			req.ContentLength = int64(len(r.Body))
		}
		region := r.Region
		if region == "" {
			region = "us-east-1"
		}
		s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, req, payload, "s3", region, tm); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	b.WriteString(r.Method + " " + r.Path)
	if r.Query != "" {
		b.WriteString("?" + r.Query)
	}
	b.WriteString(" HTTP/1.1\r\nHost: " + host + "\r\n")
	if r.Chunked {
		b.WriteString("Transfer-Encoding: chunked\r\n")
	} else if _, ok := r.Header["Content-Length"]; !ok && (r.Method == "PUT" || len(r.Body) > 0) {
		b.WriteString("Content-Length: " + itoa(len(r.Body)) + "\r\n")
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	b.Write(r.Body)
	return b.Bytes()
}

func setEscapedPath(u *url.URL, p string) error {
	dec, err := url.PathUnescape(p)
	if err != nil {
		return err
	}
	u.Path = dec
	u.RawPath = p
	return nil
}

func itoa(n int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + formatInt(n)) }

func formatInt(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// do sends wire bytes on a new connection and reads one response.
func (p *proxy) do(t *testing.T, wire []byte) (*http.Response, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	// Write concurrently: the proxy may answer (and stop reading) before the body is complete.
	go func() { _, _ = c.Write(wire) }()
	return readResponse(t, bufio.NewReader(c))
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	resp.Body.Close()
	return resp, body
}

var (
	codeRE  = regexp.MustCompile(`<Code>([^<]*)</Code>`)
	reqIDRE = regexp.MustCompile(`<RequestId>([0-9A-F]{16})</RequestId>`)
)

// wantS3Error asserts an S3 XML error with status and code, a RequestId in the document equal to
// the x-amz-request-id header.
func wantS3Error(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d; want %d (body %s)", resp.StatusCode, status, body)
	}
	m := codeRE.FindSubmatch(body)
	if m == nil || string(m[1]) != code {
		t.Errorf("code = %q; want %q (body %s)", m, code, body)
	}
	id := reqIDRE.FindSubmatch(body)
	if id == nil {
		t.Errorf("no RequestId in %s", body)
	} else if h := resp.Header.Get("x-amz-request-id"); h != string(id[1]) {
		t.Errorf("x-amz-request-id = %q; want %q", h, id[1])
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/xml" {
		t.Errorf("Content-Type = %q; want application/xml", ct)
	}
}
