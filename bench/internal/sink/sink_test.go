package sink

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func startSink(t *testing.T) (*Server, string) {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go s.Serve(ln)
	return s, ln.Addr().String()
}

const auth = "Authorization: AWS4-HMAC-SHA256 Credential=a/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\n"

func TestAnswers(t *testing.T) {
	s, addr := startSink(t)
	body := strings.Repeat("x", 200000)
	tests := []struct {
		name, req  string
		wantStatus int
		wantInBody string
		wantHeader string
	}{
		{"put", "PUT /b/k HTTP/1.1\r\nHost: s\r\n" + auth + "Content-Length: 200000\r\n\r\n" + body, 200, "", "Etag"},
		{"put expect", "PUT /b/k HTTP/1.1\r\nHost: s\r\n" + auth + "Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc", 200, "", "Etag"},
		{"upload part", "PUT /b/k?partNumber=1&uploadId=u HTTP/1.1\r\nHost: s\r\n" + auth + "Content-Length: 1\r\n\r\nx", 200, "", "Etag"},
		{"create mpu", "POST /b/k?uploads HTTP/1.1\r\nHost: s\r\n" + auth + "Content-Length: 0\r\n\r\n", 200, "<UploadId>sink-upload-", ""},
		{"complete", "POST /b/k?uploadId=u HTTP/1.1\r\nHost: s\r\n" + auth + "Content-Length: 5\r\n\r\n<a/>\n", 200, "<CompleteMultipartUploadResult", ""},
		{"list parts", "GET /b/k?uploadId=u HTTP/1.1\r\nHost: s\r\n" + auth + "\r\n", 200, "<ListPartsResult", ""},
		{"abort", "DELETE /b/k?uploadId=u HTTP/1.1\r\nHost: s\r\n" + auth + "\r\n", 204, "", ""},
		{"get object", "GET /b/k HTTP/1.1\r\nHost: s\r\n" + auth + "\r\n", 405, "MethodNotAllowed", ""},
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, tt := range tests { // all on one keep-alive connection
		if _, err := io.WriteString(c, tt.req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if resp.StatusCode == 100 {
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s after 100: %v", tt.name, err)
			}
		}
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.wantStatus || !strings.Contains(string(got), tt.wantInBody) {
			t.Errorf("%s: got %d %q; want %d containing %q", tt.name, resp.StatusCode, got, tt.wantStatus, tt.wantInBody)
		}
		if tt.wantHeader != "" && resp.Header.Get(tt.wantHeader) == "" {
			t.Errorf("%s: no %s header", tt.name, tt.wantHeader)
		}
	}
	if got, want := s.Stats.BodyBytes.Load(), int64(200000+3+1+5); got != want {
		t.Errorf("BodyBytes = %d; want %d", got, want)
	}
}

func TestRefusesUnsigned(t *testing.T) {
	_, addr := startSink(t)
	for _, a := range []string{"", "Authorization: AWS AKID:sig\r\n"} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "PUT /b/k HTTP/1.1\r\nHost: s\r\n"+a+"Content-Length: 1\r\n\r\nx")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 403 {
			t.Errorf("auth %q: got %d; want 403", a, resp.StatusCode)
		}
	}
}
