package httpparse

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// want describes a parsed request as strings, for readable tables.
type want struct {
	method, target, path, query string
	hasQuery                    bool
	minor                       uint8
	headers                     []string // "Name: Value" after trimming
	headLen                     int      // 0 = up to and including the first CRLF CRLF
	contentLength               int64
	host                        string
	expect100, keepAlive        bool
}

func parseOnce(raw string, lim Limits) (*Request, error) {
	var p Parser
	req := new(Request)
	return req, p.Parse([]byte(raw), lim, req)
}

func checkRequest(t *testing.T, raw string, req *Request, w want) {
	t.Helper()
	buf := []byte(raw)
	s := func(sp Span) string { return string(sp.Bytes(buf)) }
	if got := s(req.Method); got != w.method {
		t.Errorf("Method = %q; want %q", got, w.method)
	}
	if got := s(req.Target); got != w.target {
		t.Errorf("Target = %q; want %q", got, w.target)
	}
	if got := s(req.Path); got != w.path {
		t.Errorf("Path = %q; want %q", got, w.path)
	}
	if got := s(req.Query); got != w.query {
		t.Errorf("Query = %q; want %q", got, w.query)
	}
	if req.HasQuery != w.hasQuery {
		t.Errorf("HasQuery = %v; want %v", req.HasQuery, w.hasQuery)
	}
	if req.Minor != w.minor {
		t.Errorf("Minor = %d; want %d", req.Minor, w.minor)
	}
	var hs []string
	for _, h := range req.Headers[:req.NumHeaders] {
		hs = append(hs, s(h.Name)+": "+s(h.Value))
	}
	if strings.Join(hs, "|") != strings.Join(w.headers, "|") {
		t.Errorf("Headers = %q; want %q", hs, w.headers)
	}
	wl := w.headLen
	if wl == 0 {
		wl = strings.Index(raw, "\r\n\r\n") + 4
	}
	if req.HeadLen != wl {
		t.Errorf("HeadLen = %d; want %d", req.HeadLen, wl)
	}
	if req.ContentLength != w.contentLength {
		t.Errorf("ContentLength = %d; want %d", req.ContentLength, w.contentLength)
	}
	if got := s(req.Host); got != w.host {
		t.Errorf("Host = %q; want %q", got, w.host)
	}
	if req.Expect100 != w.expect100 {
		t.Errorf("Expect100 = %v; want %v", req.Expect100, w.expect100)
	}
	if req.KeepAlive != w.keepAlive {
		t.Errorf("KeepAlive = %v; want %v", req.KeepAlive, w.keepAlive)
	}
}

var validRequests = []struct {
	name string
	raw  string
	want want
}{
	{"minimal 1.1", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", want{
		method: "GET", target: "/", path: "/", minor: 1, headers: []string{"Host: a"},
		contentLength: -1, host: "a", keepAlive: true}},
	{"1.0 without host", "GET /x HTTP/1.0\r\n\r\n", want{
		method: "GET", target: "/x", path: "/x", contentLength: -1}},
	{"1.0 keep-alive", "GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", want{
		method: "GET", target: "/x", path: "/x", headers: []string{"Connection: Keep-Alive"},
		contentLength: -1, keepAlive: true}},
	{"1.1 close", "PUT /b/k HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, CLOSE\r\nContent-Length: 0\r\n\r\n", want{
		method: "PUT", target: "/b/k", path: "/b/k", minor: 1,
		headers:       []string{"Host: h", "Connection: keep-alive, CLOSE", "Content-Length: 0"},
		contentLength: 0, host: "h"}},
	{"1.1 connection list without close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: ,upgrade ,, te\r\n\r\n", want{
		method: "GET", target: "/", path: "/", minor: 1,
		headers:       []string{"Host: h", "Connection: ,upgrade ,, te"},
		contentLength: -1, host: "h", keepAlive: true}},
	{"two Connection lines", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nconnection: Close \r\n\r\n", want{
		method: "GET", target: "/", path: "/", minor: 1,
		headers:       []string{"Host: h", "Connection: keep-alive", "connection: Close"},
		contentLength: -1, host: "h"}},
	{"query", "PUT /b/k?partNumber=1&uploadId=x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", want{
		method: "PUT", target: "/b/k?partNumber=1&uploadId=x", path: "/b/k", query: "partNumber=1&uploadId=x",
		hasQuery: true, minor: 1, headers: []string{"Host: h", "Content-Length: 5"},
		contentLength: 5, host: "h", keepAlive: true}},
	{"empty query", "GET /? HTTP/1.1\r\nHost: h\r\n\r\n", want{
		method: "GET", target: "/?", path: "/", hasQuery: true, minor: 1, headers: []string{"Host: h"},
		contentLength: -1, host: "h", keepAlive: true}},
	{"second ? stays in query", "GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n", want{
		method: "GET", target: "/a?b?c", path: "/a", query: "b?c", hasQuery: true, minor: 1,
		headers: []string{"Host: h"}, contentLength: -1, host: "h", keepAlive: true}},
	{"OWS trimmed, inner kept", "GET / HTTP/1.1\r\nHost:\t h \t\r\nX-A:  a  b \r\nX-Empty:\r\nX-Sp:   \r\n\r\n", want{
		method: "GET", target: "/", path: "/", minor: 1,
		headers:       []string{"Host: h", "X-A: a  b", "X-Empty: ", "X-Sp: "},
		contentLength: -1, host: "h", keepAlive: true}},
	{"obs-text in value and target", "GET /\xe6\x97\xa5 HTTP/1.1\r\nHost: h\r\nX-U: \xe6\x97\xa5\x80\r\n\r\n", want{
		method: "GET", target: "/\xe6\x97\xa5", path: "/\xe6\x97\xa5", minor: 1,
		headers:       []string{"Host: h", "X-U: \xe6\x97\xa5\x80"},
		contentLength: -1, host: "h", keepAlive: true}},
	{"leading empty lines skipped", "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", want{
		method: "GET", target: "/", path: "/", minor: 1, headers: []string{"Host: h"}, headLen: 31,
		contentLength: -1, host: "h", keepAlive: true}},
	{"expect case-insensitive", "PUT /k HTTP/1.1\r\nHost: h\r\nexpect: 100-Continue\r\nContent-Length: 9223372036854775807\r\n\r\n", want{
		method: "PUT", target: "/k", path: "/k", minor: 1,
		headers:       []string{"Host: h", "expect: 100-Continue", "Content-Length: 9223372036854775807"},
		contentLength: 9223372036854775807, host: "h", expect100: true, keepAlive: true}},
	// S3 ignores an expectation other than 100-continue (no 417, no 100 Continue).
	{"expect other ignored", "PUT /k HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n", want{
		method: "PUT", target: "/k", path: "/k", minor: 1,
		headers:       []string{"Host: h", "Expect: 200-ok", "Content-Length: 1"},
		contentLength: 1, host: "h", keepAlive: true}},
	{"expect list with other", "PUT /k HTTP/1.1\r\nHost: h\r\nExpect: foo, 100-continue\r\nContent-Length: 1\r\n\r\n", want{
		method: "PUT", target: "/k", path: "/k", minor: 1,
		headers:       []string{"Host: h", "Expect: foo, 100-continue", "Content-Length: 1"},
		contentLength: 1, host: "h", expect100: true, keepAlive: true}},
	{"expect ignored in 1.0", "PUT /k HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", want{
		method: "PUT", target: "/k", path: "/k",
		headers:       []string{"Expect: 100-continue", "Content-Length: 1"},
		contentLength: 1}},
	{"long values with obs-text and HTAB", "PUT /k HTTP/1.1\r\nHost: h\r\nX-A: \xff\xfe\x80\x81\x90\xa0\xc0\xe0\xf0\xff\x80\x80\x80\x80\x80\x80\x80\r\n" +
		"X-B: 0123456\t89abcdef\t\t0123456789ABCDEF\t \t\r\n\r\n", want{
		method: "PUT", target: "/k", path: "/k", minor: 1,
		headers: []string{"Host: h", "X-A: \xff\xfe\x80\x81\x90\xa0\xc0\xe0\xf0\xff\x80\x80\x80\x80\x80\x80\x80",
			"X-B: 0123456\t89abcdef\t\t0123456789ABCDEF"},
		contentLength: -1, host: "h", keepAlive: true}},
	{"content-length leading zeros", "PUT /k HTTP/1.1\r\nHost: h\r\nCONTENT-LENGTH: 007\r\n\r\n", want{
		method: "PUT", target: "/k", path: "/k", minor: 1,
		headers: []string{"Host: h", "CONTENT-LENGTH: 007"}, contentLength: 7, host: "h", keepAlive: true}},
	{"empty host allowed", "GET / HTTP/1.1\r\nHost:\r\n\r\n", want{
		method: "GET", target: "/", path: "/", minor: 1, headers: []string{"Host: "},
		contentLength: -1, keepAlive: true}},
	{"host with port and ipv6", "GET / HTTP/1.1\r\nHost: [::1]:9000\r\n\r\n", want{
		method: "GET", target: "/", path: "/", minor: 1, headers: []string{"Host: [::1]:9000"},
		contentLength: -1, host: "[::1]:9000", keepAlive: true}},
	{"extension method and token name", "M-SEARCH /% HTTP/1.1\r\nHost: h\r\n!#$%&'*+-.^_`|~09az: v\r\n\r\n", want{
		method: "M-SEARCH", target: "/%", path: "/%", minor: 1,
		headers:       []string{"Host: h", "!#$%&'*+-.^_`|~09az: v"},
		contentLength: -1, host: "h", keepAlive: true}},
	{"body bytes after head are not parsed", "PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n\n\r\x00\xff", want{
		method: "PUT", target: "/k", path: "/k", minor: 1,
		headers: []string{"Host: h", "Content-Length: 4"}, contentLength: 4, host: "h", keepAlive: true}},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validRequests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseOnce(tc.raw, Limits{})
			if err != nil {
				t.Fatalf("Parse(%q) = %v; want nil", tc.raw, err)
			}
			checkRequest(t, tc.raw, req, tc.want)
		})
	}
}

var badRequests = []struct {
	name string
	raw  string
	lim  Limits
	err  error
}{
	{"bare LF after request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", Limits{}, ErrBareLF},
	{"bare LF in header", "GET / HTTP/1.1\r\nHost: h\n\r\n", Limits{}, ErrBareLF},
	{"bare LF final", "GET / HTTP/1.1\r\nHost: h\r\n\n", Limits{}, ErrBareLF},
	{"bare LF leading", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", Limits{}, ErrBareLF},
	{"bare LF in method", "GE\nT / HTTP/1.1\r\n\r\n", Limits{}, ErrBareLF},
	{"bare LF in name", "GET / HTTP/1.1\r\nHo\n", Limits{}, ErrBareLF},
	{"CR without LF", "GET / HTTP/1.1\r\nHost: h\rX\n\r\n", Limits{}, ErrBareCR},
	{"CR without LF at end", "GET / HTTP/1.1\r\nHost: h\r\n\rX", Limits{}, ErrBareCR},
	{"CR without LF leading", "\rGET / HTTP/1.1\r\n", Limits{}, ErrBareCR},
	{"CR without LF after version", "GET / HTTP/1.1\rX", Limits{}, ErrBareCR},
	{"too many empty lines", strings.Repeat("\r\n", maxEmptyLines+1) + "GET / HTTP/1.1\r\nHost: h\r\n\r\n", Limits{}, ErrEmptyLines},
	{"empty method", " / HTTP/1.1\r\n", Limits{}, ErrMethod},
	{"method with invalid char", "GE(T / HTTP/1.1\r\n", Limits{}, ErrMethod},
	{"method with CR", "GET\r\n", Limits{}, ErrMethod},
	{"double SP before target", "GET  / HTTP/1.1\r\n", Limits{}, ErrRequestLine},
	{"double SP before version", "GET /  HTTP/1.1\r\n", Limits{}, ErrMalformedVersion},
	{"HTTP/0.9 request", "GET /\r\n\r\n", Limits{}, ErrRequestLine},
	{"absolute-form", "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", Limits{}, ErrTarget},
	{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", Limits{}, ErrTarget},
	{"DEL in target", "GET /a\x7fb HTTP/1.1\r\n", Limits{}, ErrTarget},
	{"CTL in target", "GET /a\x01b HTTP/1.1\r\n", Limits{}, ErrTarget},
	{"TAB in target", "GET /a\tb HTTP/1.1\r\n", Limits{}, ErrTarget},
	{"lower-case http", "GET / http/1.1\r\n", Limits{}, ErrMalformedVersion},
	{"version garbage", "GET / HTTP/1.x\r\n", Limits{}, ErrMalformedVersion},
	{"version two digits", "GET / HTTP/1.10\r\n", Limits{}, ErrMalformedVersion},
	{"version trailing SP", "GET / HTTP/1.1 \r\n", Limits{}, ErrMalformedVersion},
	{"version missing", "GET / \r\n", Limits{}, ErrMalformedVersion},
	{"version 2.0", "GET / HTTP/2.0\r\n", Limits{}, ErrVersion},
	{"version 1.2", "GET / HTTP/1.2\r\n", Limits{}, ErrVersion},
	{"version 0.9", "GET / HTTP/0.9\r\n", Limits{}, ErrVersion},
	{"name with space", "GET / HTTP/1.1\r\nHo st: h\r\n\r\n", Limits{}, ErrSpaceBeforeColon},
	{"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", Limits{}, ErrSpaceBeforeColon},
	{"tab before colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", Limits{}, ErrSpaceBeforeColon},
	{"invalid name char", "GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", Limits{}, ErrHeaderName},
	{"non-ASCII name", "GET / HTTP/1.1\r\nH\xc3\xa9: h\r\n\r\n", Limits{}, ErrHeaderName},
	{"empty name", "GET / HTTP/1.1\r\n: h\r\n\r\n", Limits{}, ErrEmptyHeaderName},
	{"missing colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", Limits{}, ErrMissingColon},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", Limits{}, ErrHeaderValue},
	{"DEL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", Limits{}, ErrHeaderValue},
	{"CTL in long value", "GET / HTTP/1.1\r\nHost: h\r\nX: 0123456789abcdef0123456789\x1b0123456789\r\n\r\n", Limits{}, ErrHeaderValue},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", Limits{}, ErrObsFold},
	{"obs-fold tab", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", Limits{}, ErrObsFold},
	{"whitespace before first header", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", Limits{}, ErrLeadingWhitespace},
	{"missing host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", Limits{}, ErrMissingHost},
	{"duplicate host", "GET / HTTP/1.1\r\nHost: h\r\nhost: h\r\n\r\n", Limits{}, ErrDuplicateHost},
	{"invalid host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Limits{}, ErrInvalidHost},
	{"invalid host slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", Limits{}, ErrInvalidHost},
	{"duplicate host 1.0", "GET / HTTP/1.0\r\nHost: h\r\nHost: h\r\n\r\n", Limits{}, ErrDuplicateHost},
	{"CL duplicate identical", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", Limits{}, ErrDuplicateContentLength},
	{"CL conflicting", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n", Limits{}, ErrDuplicateContentLength},
	{"CL list", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", Limits{}, ErrInvalidContentLength},
	{"CL sign", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", Limits{}, ErrInvalidContentLength},
	{"CL negative", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", Limits{}, ErrInvalidContentLength},
	{"CL empty", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", Limits{}, ErrInvalidContentLength},
	{"CL hex", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", Limits{}, ErrInvalidContentLength},
	{"CL inner space", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\n", Limits{}, ErrInvalidContentLength},
	{"CL overflow", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", Limits{}, ErrInvalidContentLength},
	{"CL overflow long", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", Limits{}, ErrInvalidContentLength},
	{"TE identity", "PUT / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: identity\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE gzip", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE gzip, chunked", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE chunked, gzip", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE chunked with parameter", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE chunked-ish", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE empty", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", Limits{}, ErrTransferCoding},
	{"TE chunked, chunked", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Limits{}, ErrChunkedTwice},
	{"TE chunked on two lines", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, ErrChunkedTwice},
	{"TE and CL", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, ErrTEWithContentLength},
	{"CL and TE", "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", Limits{}, ErrTEWithContentLength},
	{"TE gzip and CL", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\n", Limits{}, ErrTEWithContentLength},
	{"TE in HTTP/1.0", "PUT / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, ErrTEHTTP10},
	{"too many headers", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X: y\r\n", MaxHeaders) + "\r\n", Limits{}, ErrTooManyHeaders},
	{"head too large complete", "GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("y", 100) + "\r\n\r\n", Limits{MaxHeadBytes: 64}, ErrHeadTooLarge},
	{"head too large incomplete", "GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("y", 100), Limits{MaxHeadBytes: 64}, ErrHeadTooLarge},
	{"head too large at limit", "GET / HTTP/1.1\r\nHost: h\r\n\r", Limits{MaxHeadBytes: 26}, ErrHeadTooLarge},
	{"URI too long", "GET /" + strings.Repeat("a", 16) + " HTTP/1.1\r\n", Limits{MaxTargetBytes: 16}, ErrURITooLong},
	{"URI too long incomplete", "GET /" + strings.Repeat("a", 16), Limits{MaxTargetBytes: 16}, ErrURITooLong},
	{"URI too long default", "GET /" + strings.Repeat("a", DefaultMaxTargetBytes), Limits{}, ErrURITooLong},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range badRequests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseOnce(tc.raw, tc.lim)
			if err != tc.err {
				t.Fatalf("Parse(%q) = %v; want %v", tc.raw, err, tc.err)
			}
		})
	}
}

func TestParseLimitsExact(t *testing.T) {
	raw := "GET /" + strings.Repeat("a", 15) + " HTTP/1.1\r\nHost: h\r\n\r\n"
	// Target of exactly MaxTargetBytes and head of exactly MaxHeadBytes pass.
	req, err := parseOnce(raw, Limits{MaxTargetBytes: 16, MaxHeadBytes: len(raw)})
	if err != nil {
		t.Fatalf("Parse at exact limits = %v; want nil", err)
	}
	if req.Target.Len() != 16 || req.HeadLen != len(raw) {
		t.Errorf("Target.Len, HeadLen = %d, %d; want 16, %d", req.Target.Len(), req.HeadLen, len(raw))
	}
	// MaxHeaders header lines pass.
	raw = "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X: y\r\n", MaxHeaders-1) + "\r\n"
	req, err = parseOnce(raw, Limits{})
	if err != nil || req.NumHeaders != MaxHeaders {
		t.Errorf("Parse with %d headers = %v, NumHeaders %d; want nil, %d", MaxHeaders, err, req.NumHeaders, MaxHeaders)
	}
	// The maximal number of leading empty lines passes.
	raw = strings.Repeat("\r\n", maxEmptyLines) + "GET / HTTP/1.1\r\nHost: h\r\n\r\n"
	if _, err = parseOnce(raw, Limits{}); err != nil {
		t.Errorf("Parse with %d leading empty lines = %v; want nil", maxEmptyLines, err)
	}
}

func TestErrorCategories(t *testing.T) {
	for _, tc := range []struct {
		err, kind *Error
	}{
		{ErrBareLF, ErrBadRequest}, {ErrObsFold, ErrBadRequest}, {ErrMissingHost, ErrBadRequest},
		{ErrDuplicateContentLength, ErrContentLength}, {ErrInvalidContentLength, ErrContentLength},
		{ErrTransferCoding, ErrTransferEncoding}, {ErrChunkSize, ErrBadChunk},
	} {
		if !errors.Is(tc.err, tc.kind) {
			t.Errorf("errors.Is(%v, %v) = false; want true", tc.err, tc.kind)
		}
		if errors.Is(tc.kind, tc.err) {
			t.Errorf("errors.Is(%v, %v) = true; want false", tc.kind, tc.err)
		}
	}
	if errors.Is(ErrDuplicateContentLength, ErrBadRequest) {
		t.Errorf("errors.Is(ErrDuplicateContentLength, ErrBadRequest) = true; want false")
	}
	var e *Error
	if errors.As(ErrNeedMore, &e) {
		t.Errorf("ErrNeedMore is an *Error; want a plain error")
	}
	if got, want := ErrDuplicateContentLength.Error(), "httpparse: duplicate Content-Length (400)"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	if ErrURITooLong.Status != 414 || ErrVersion.Status != 505 || ErrTransferEncoding.Status != 501 ||
		ErrHeadTooLarge.Status != 431 || ErrTooManyHeaders.Status != 431 {
		t.Errorf("category statuses wrong")
	}
}

func TestStickyErrorAndReset(t *testing.T) {
	var p Parser
	var req Request
	bad := []byte("GET / HTTP/1.1\nHost: h\r\n\r\n")
	if err := p.Parse(bad, Limits{}, &req); err != ErrBareLF {
		t.Fatalf("Parse = %v; want ErrBareLF", err)
	}
	good := []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	if err := p.Parse(good, Limits{}, &req); err != ErrBareLF {
		t.Fatalf("Parse after error without Reset = %v; want ErrBareLF again", err)
	}
	p.Reset()
	if err := p.Parse(good, Limits{}, &req); err != nil {
		t.Fatalf("Parse after Reset = %v; want nil", err)
	}
	if err := p.Parse(good, Limits{}, &req); err != nil {
		t.Fatalf("Parse after completion = %v; want nil again", err)
	}
}

func TestMisuse(t *testing.T) {
	var p Parser
	var req Request
	var resp Response
	buf := []byte("GET / HTTP/1.1\r\nHost: h\r\n")
	if err := p.Parse(buf, Limits{}, &req); err != ErrNeedMore {
		t.Fatalf("Parse = %v; want ErrNeedMore", err)
	}
	if err := p.Parse(buf[:5], Limits{}, &req); err != ErrMisuse {
		t.Errorf("Parse with shorter buffer = %v; want ErrMisuse", err)
	}
	p.Reset()
	if err := p.Parse(buf, Limits{}, &req); err != ErrNeedMore {
		t.Fatalf("Parse = %v; want ErrNeedMore", err)
	}
	if err := p.ParseResponse(buf, Limits{}, &resp); err != ErrMisuse {
		t.Errorf("ParseResponse during a request = %v; want ErrMisuse", err)
	}
}

func TestLookup(t *testing.T) {
	raw := "PUT /k HTTP/1.1\r\nHost: h\r\nX-Amz-Meta-A: 1\r\nx-amz-meta-a: 2\r\nX-Amz-Date: d\r\n\r\n"
	req, err := parseOnce(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte(raw)
	for _, tc := range []struct {
		name  string
		value string
		ok    bool
		count int
	}{
		{"x-amz-meta-a", "1", true, 2}, {"X-AMZ-DATE", "d", true, 1}, {"host", "h", true, 1},
		{"x-amz-meta", "", false, 0}, {"authorization", "", false, 0},
	} {
		sp, ok := req.Lookup(buf, tc.name)
		if ok != tc.ok || string(sp.Bytes(buf)) != tc.value {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.name, sp.Bytes(buf), ok, tc.value, tc.ok)
		}
		if got := req.HeaderCount(buf, tc.name); got != tc.count {
			t.Errorf("HeaderCount(%q) = %d; want %d", tc.name, got, tc.count)
		}
	}
}

func TestSpanBytesClipsCapacity(t *testing.T) {
	buf := []byte("abcdef")
	b := Span{Start: 1, End: 3}.Bytes(buf)
	_ = append(b, 'X')
	if string(buf) != "abcdef" {
		t.Errorf("append to Span.Bytes changed buf to %q", buf)
	}
}

// realHeads are heads captured from real clients PUTting to a local listener.
var realHeads = []string{"awscli-put.http", "boto3-put.http", "curl-put.http", "sdkgov2-put.http"}

func readHead(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRealClients(t *testing.T) {
	for _, name := range realHeads {
		buf := readHead(t, name)
		var p Parser
		var req Request
		if err := p.Parse(buf, Limits{}, &req); err != nil {
			t.Fatalf("%s: Parse = %v; want nil", name, err)
		}
		if req.HeadLen != len(buf) || string(req.Method.Bytes(buf)) != "PUT" || req.Minor != 1 || !req.KeepAlive ||
			req.ContentLength <= 0 || string(req.Host.Bytes(buf)) != "127.0.0.1:9555" {
			t.Errorf("%s: HeadLen %d Method %q Minor %d KeepAlive %v CL %d Host %q", name, req.HeadLen,
				req.Method.Bytes(buf), req.Minor, req.KeepAlive, req.ContentLength, req.Host.Bytes(buf))
		}
		if auth, ok := req.Lookup(buf, "authorization"); !ok || !strings.HasPrefix(string(auth.Bytes(buf)), "AWS4-HMAC-SHA256 ") {
			if name != "curl-put.http" {
				t.Errorf("%s: Authorization = %q, %v", name, auth.Bytes(buf), ok)
			}
		}
	}
}

// TestParseChunkedRequest: a request may carry Transfer-Encoding: chunked (RFC 9112 6.1), and
// only that: exactly one coding, chunked, on HTTP/1.1, without Content-Length.
func TestParseChunkedRequest(t *testing.T) {
	for _, raw := range []string{
		"PUT /b/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		"PUT /b/k HTTP/1.1\r\nHost: h\r\ntransfer-encoding:   Chunked  \r\n\r\n",
		"PUT /b/k HTTP/1.1\r\nHost: h\r\nTRANSFER-ENCODING: CHUNKED\r\nExpect: 100-continue\r\n\r\n",
	} {
		req, err := parseOnce(raw, Limits{})
		if err != nil {
			t.Fatalf("Parse(%q) = %v; want nil", raw, err)
		}
		if !req.Chunked || req.ContentLength != -1 || req.HeadLen != len(raw) {
			t.Errorf("Parse(%q): Chunked %v, ContentLength %d, HeadLen %d; want true, -1, %d", raw, req.Chunked, req.ContentLength, req.HeadLen, len(raw))
		}
	}
	// The next head on the same Request is not chunked unless it says so.
	var p Parser
	req := new(Request)
	if err := p.Parse([]byte("PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), Limits{}, req); err != nil || !req.Chunked {
		t.Fatalf("Parse = %v, Chunked %v", err, req.Chunked)
	}
	p.Reset()
	if err := p.Parse([]byte("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n"), Limits{}, req); err != nil || req.Chunked || req.ContentLength != 3 {
		t.Fatalf("second Parse = %v, Chunked %v, ContentLength %d; want nil, false, 3", err, req.Chunked, req.ContentLength)
	}
	if ErrChunkedTwice.Status != 400 || ErrTEHTTP10.Status != 400 || ErrTEWithContentLength.Status != 400 || ErrTransferCoding.Status != 501 {
		t.Errorf("statuses: twice %d, 1.0 %d, TE+CL %d, other coding %d", ErrChunkedTwice.Status, ErrTEHTTP10.Status, ErrTEWithContentLength.Status, ErrTransferCoding.Status)
	}
}
