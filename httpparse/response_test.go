package httpparse

import (
	"reflect"
	"strings"
	"testing"
)

type wantResp struct {
	minor         uint8
	status        int
	reason        string
	headers       int
	contentLength int64
	chunked       bool
	keepAlive     bool
}

// Answers to a PUT shaped like versitygw's (keep-alive variant), a 200 and an
// S3 XML error; the captured originals are in testdata/versitygw-put-*.http.
const (
	versity200 = "HTTP/1.1 200 OK\r\nServer: VERSITYGW\r\nDate: Thu, 26 Nov 2026 16:32:43 GMT\r\n" +
		"Content-Length: 0\r\nEtag: \"5d41402abc4b2a76b9719d911017c592\"\r\n" +
		"X-Amz-Checksum-Crc32: qpIt0w==\r\n\r\n"
	versity400 = "HTTP/1.1 400 Bad Request\r\nServer: VERSITYGW\r\nDate: Thu, 26 Nov 2026 16:32:43 GMT\r\n" +
		"Content-Type: application/xml\r\nContent-Length: 193\r\n\r\n" +
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidDigest</Code>" +
		"<Message>The Content-MD5 you specified was invalid.</Message><Resource></Resource>" +
		"<RequestId></RequestId><HostId></HostId></Error>"
)

var validResponses = []struct {
	name string
	raw  string
	want wantResp
}{
	{"versitygw 200", versity200, wantResp{1, 200, "OK", 5, 0, false, true}},
	{"versitygw 400", versity400, wantResp{1, 400, "Bad Request", 4, 193, false, true}},
	{"100 continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", wantResp{1, 100, "Continue", 0, -1, false, true}},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", wantResp{1, 200, "OK", 1, -1, true, true}},
	{"gzip, chunked over two lines", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\ntransfer-encoding: Chunked\r\n\r\n", wantResp{1, 200, "OK", 2, -1, true, true}},
	{"chunked with parameter", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", wantResp{1, 200, "OK", 1, -1, true, true}},
	{"no reason, with SP", "HTTP/1.1 204 \r\n\r\n", wantResp{1, 204, "", 0, -1, false, true}},
	{"no reason, no SP", "HTTP/1.1 204\r\n\r\n", wantResp{1, 204, "", 0, -1, false, true}},
	{"reason with spaces and obs-text", "HTTP/1.1 404 Not  Found \xe2\x80\x94\r\n\r\n", wantResp{1, 404, "Not  Found \xe2\x80\x94", 0, -1, false, true}},
	{"close", "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", wantResp{1, 500, "Internal Server Error", 2, 0, false, false}},
	{"1.0 default close", "HTTP/1.0 200 OK\r\n\r\n", wantResp{0, 200, "OK", 0, -1, false, false}},
	{"1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", wantResp{0, 200, "OK", 2, 2, false, true}},
}

func TestParseResponseValid(t *testing.T) {
	for _, tc := range validResponses {
		t.Run(tc.name, func(t *testing.T) {
			buf := []byte(tc.raw)
			var p Parser
			var r Response
			if err := p.ParseResponse(buf, Limits{}, &r); err != nil {
				t.Fatalf("ParseResponse(%q) = %v; want nil", tc.raw, err)
			}
			got := wantResp{r.Minor, r.Status, string(r.Reason.Bytes(buf)), r.NumHeaders, r.ContentLength, r.Chunked, r.KeepAlive}
			if got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
			if wl := strings.Index(tc.raw, "\r\n\r\n") + 4; r.HeadLen != wl {
				t.Errorf("HeadLen = %d; want %d", r.HeadLen, wl)
			}
		})
	}
}

func TestResponseLookup(t *testing.T) {
	buf := []byte(versity200)
	var p Parser
	var r Response
	if err := p.ParseResponse(buf, Limits{}, &r); err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Lookup(buf, "etag"); !ok || string(v.Bytes(buf)) != `"5d41402abc4b2a76b9719d911017c592"` {
		t.Errorf("Lookup(etag) = %q, %v", v.Bytes(buf), ok)
	}
	if _, ok := r.Lookup(buf, "x-amz-version-id"); ok {
		t.Errorf("Lookup(x-amz-version-id) found; want absent")
	}
}

var badResponses = []struct {
	name string
	raw  string
	lim  Limits
	err  error
}{
	{"lower-case version", "http/1.1 200 OK\r\n\r\n", Limits{}, ErrStatusLine},
	{"no SP after version", "HTTP/1.1\r\n\r\n", Limits{}, ErrStatusLine},
	{"version 2", "HTTP/2.0 200 OK\r\n\r\n", Limits{}, ErrVersion},
	{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", Limits{}, ErrStatusLine},
	{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", Limits{}, ErrStatusLine},
	{"status 099", "HTTP/1.1 099 OK\r\n\r\n", Limits{}, ErrStatusLine},
	{"double SP before status", "HTTP/1.1  200 OK\r\n\r\n", Limits{}, ErrStatusLine},
	{"CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", Limits{}, ErrStatusLine},
	{"bare LF status line", "HTTP/1.1 200 OK\n\r\n", Limits{}, ErrBareLF},
	{"bare LF after status", "HTTP/1.1 200\n", Limits{}, ErrBareLF},
	{"CR without LF", "HTTP/1.1 200 OK\rX", Limits{}, ErrBareCR},
	{"obs-fold", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", Limits{}, ErrObsFold},
	{"duplicate CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", Limits{}, ErrDuplicateContentLength},
	{"invalid CL", "HTTP/1.1 200 OK\r\nContent-Length: 1.5\r\n\r\n", Limits{}, ErrInvalidContentLength},
	{"TE and CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, ErrTEWithContentLength},
	{"TE gzip only", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE chunked, gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE empty", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n", Limits{}, ErrTransferCoding},
	{"too many headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("A: b\r\n", MaxHeaders+1) + "\r\n", Limits{}, ErrTooManyHeaders},
	{"head too large", "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("b", 64), Limits{MaxHeadBytes: 64}, ErrHeadTooLarge},
}

func TestParseResponseErrors(t *testing.T) {
	for _, tc := range badResponses {
		t.Run(tc.name, func(t *testing.T) {
			var p Parser
			var r Response
			if err := p.ParseResponse([]byte(tc.raw), tc.lim, &r); err != tc.err {
				t.Fatalf("ParseResponse(%q) = %v; want %v", tc.raw, err, tc.err)
			}
		})
	}
}

func TestParseResponsePrefixes(t *testing.T) {
	var in []string
	for _, tc := range validResponses {
		in = append(in, tc.raw)
	}
	for _, tc := range badResponses {
		if tc.lim == (Limits{}) {
			in = append(in, tc.raw)
		}
	}
	for _, raw := range in {
		buf := []byte(raw)
		var p1 Parser
		var one Response
		wantErr := p1.ParseResponse(buf, Limits{}, &one)
		var p Parser
		var r Response
		var err error
		i := 1
		for ; i <= len(buf); i++ {
			if err = p.ParseResponse(append([]byte(nil), buf[:i]...), Limits{}, &r); err != ErrNeedMore {
				break
			}
		}
		if err != wantErr {
			t.Errorf("%q: incremental %v at prefix %d; one-shot %v", raw, err, i, wantErr)
			continue
		}
		if err == nil && (i != one.HeadLen || !reflect.DeepEqual(r, one)) {
			t.Errorf("%q: incremental result (done at %d) differs from one-shot (HeadLen %d)", raw, i, one.HeadLen)
		}
		if p.Examined() != p1.Examined() {
			t.Errorf("%q: examined %d byte by byte; %d one-shot", raw, p.Examined(), p1.Examined())
		}
	}
}

// TestParserReuse parses a 100 Continue, then the final response after it
// with the same Parser, as a proxy does.
func TestParserReuse(t *testing.T) {
	buf := []byte("HTTP/1.1 100 Continue\r\n\r\n" + versity200)
	var p Parser
	var r Response
	if err := p.ParseResponse(buf, Limits{}, &r); err != nil || r.Status != 100 {
		t.Fatalf("first head: %v, status %d; want nil, 100", err, r.Status)
	}
	rest := buf[r.HeadLen:]
	p.Reset()
	if err := p.ParseResponse(rest, Limits{}, &r); err != nil || r.Status != 200 || r.HeadLen != len(rest) {
		t.Fatalf("second head: %v, status %d, HeadLen %d; want nil, 200, %d", err, r.Status, r.HeadLen, len(rest))
	}
	// The same Parser then parses a request after Reset.
	p.Reset()
	var req Request
	if err := p.Parse([]byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), Limits{}, &req); err != nil {
		t.Fatalf("request after Reset: %v", err)
	}
}

// realResponse returns a captured versitygw answer with its leading
// "100 Continue" head removed.
func realResponse(t testing.TB, name string) []byte {
	t.Helper()
	buf := readHead(t, name)
	const cont = "HTTP/1.1 100 Continue\r\n\r\n"
	if !strings.HasPrefix(string(buf), cont) {
		t.Fatalf("%s does not start with 100 Continue", name)
	}
	return buf[len(cont):]
}

// TestParseResponseVersitygw parses answers captured from versitygw (posix
// backend) to aws cli PUTs: the 100 Continue, then the final head.
func TestParseResponseVersitygw(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		cl     int64
	}{
		{"versitygw-put-200.http", 200, 0},
		{"versitygw-put-400.http", 400, 426},
	} {
		buf := readHead(t, tc.name)
		var p Parser
		var r Response
		if err := p.ParseResponse(buf, Limits{}, &r); err != nil || r.Status != 100 || r.HeadLen != 25 {
			t.Fatalf("%s: first head = %v, status %d, HeadLen %d; want nil, 100, 25", tc.name, err, r.Status, r.HeadLen)
		}
		buf = buf[r.HeadLen:]
		p.Reset()
		if err := p.ParseResponse(buf, Limits{}, &r); err != nil {
			t.Fatalf("%s: ParseResponse = %v", tc.name, err)
		}
		if r.Status != tc.status || r.ContentLength != tc.cl || r.KeepAlive || r.Chunked ||
			int64(len(buf)-r.HeadLen) != tc.cl || string(r.Reason.Bytes(buf)) != map[int]string{200: "OK", 400: "Bad Request"}[tc.status] {
			t.Errorf("%s: status %d reason %q CL %d KeepAlive %v Chunked %v body %d", tc.name, r.Status,
				r.Reason.Bytes(buf), r.ContentLength, r.KeepAlive, r.Chunked, len(buf)-r.HeadLen)
		}
		if v, ok := r.Lookup(buf, "etag"); tc.status == 200 && (!ok || v.Len() != 34) {
			t.Errorf("%s: ETag = %q, %v", tc.name, v.Bytes(buf), ok)
		}
	}
}
