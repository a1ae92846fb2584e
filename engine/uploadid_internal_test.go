package engine

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
)

const createAnswer = `<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>upstream</Bucket><Key>dir/k</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`

// relayed runs relay for op over the raw upstream answer and parses what the client gets.
func relayed(t *testing.T, e *Engine, op op, token string, raw string) (*http.Response, string) {
	t.Helper()
	b, s3err := e.findBucket([]byte("sig"))
	if s3err != nil {
		t.Fatal(s3err)
	}
	j := new(job)
	j.op, j.bucket, j.principal = op, b, Principal{ID: admitAK}
	copy(j.reqID[:], "0123456789ABCDEF")
	j.resource, j.keyStart = []byte("/sig/dir/k"), len("/sig/")
	j.ids.token = append(j.ids.token[:0], token...)
	var p httpparse.Parser
	var h httpparse.Response
	if err := p.ParseResponse([]byte(raw), e.limits, &h); err != nil {
		t.Fatal(err)
	}
	status := e.relay(j, []byte(raw), &h, len(raw), false)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(j.resp)), nil)
	if err != nil {
		t.Fatalf("%v in %q", err, j.resp)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if status != resp.StatusCode {
		t.Errorf("relay returned %d; the answer says %d", status, resp.StatusCode)
	}
	return resp, string(body)
}

func chunked(body string, sizes ...int) string {
	var b strings.Builder
	for _, n := range sizes {
		n = min(n, len(body))
		b.WriteString(strconv.FormatInt(int64(n), 16) + ";ext=1\r\n" + body[:n] + "\r\n")
		body = body[n:]
	}
	if body != "" {
		b.WriteString(strconv.FormatInt(int64(len(body)), 16) + "\r\n" + body + "\r\n")
	}
	b.WriteString("0\r\nX-Trailer: 1\r\n\r\n")
	return b.String()
}

// TestRelayCreateUploadID: Create's answer gets a token for the upstream id (entities decoded),
// framed by Content-Length whatever the upstream's framing was; other answers pass unchanged.
func TestRelayCreateUploadID(t *testing.T) {
	e := newAdmitEngine(t)
	const id = "2~a&b<c"
	doc := strings.Replace(createAnswer, "%s", "2~a&amp;b&lt;c", 1)
	for name, raw := range map[string]string{
		"content-length": "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nx-amz-request-id: UP1\r\nContent-Length: " + strconv.Itoa(len(doc)) + "\r\n\r\n" + doc,
		"chunked":        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(doc, 7, 150, 3),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := relayed(t, e, opCreateMultipartUpload, "", raw)
			if resp.StatusCode != 200 || len(resp.TransferEncoding) != 0 || resp.ContentLength != int64(len(body)) {
				t.Errorf("status %d, TE %v, Content-Length %d for %d bytes", resp.StatusCode, resp.TransferEncoding, resp.ContentLength, len(body))
			}
			i, j := strings.Index(body, "<UploadId>"), strings.Index(body, "</UploadId>")
			if i < 0 || j < i {
				t.Fatalf("no UploadId in %s", body)
			}
			tok := body[i+len("<UploadId>") : j]
			got, err := openTestToken(admitAK, "sig", "dir/k", []byte(tok))
			if err != nil || got != id {
				t.Errorf("token %q opens to %q, %v; want %q", tok, got, err, id)
			}
			if want := strings.Replace(createAnswer, "%s", tok, 1); body != want {
				t.Errorf("body\n%s\nwant\n%s", body, want)
			}
		})
	}
	// Errors and answers of other operations are relayed as they are.
	errDoc := "<Error><Code>NoSuchBucket</Code><UploadId>up</UploadId></Error>"
	raw := "HTTP/1.1 404 Not Found\r\nContent-Length: " + strconv.Itoa(len(errDoc)) + "\r\n\r\n" + errDoc
	if resp, body := relayed(t, e, opCreateMultipartUpload, "", raw); resp.StatusCode != 404 || body != errDoc {
		t.Errorf("error answer changed: %d %s", resp.StatusCode, body)
	}
	raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(doc, 10)
	if resp, body := relayed(t, e, opCompleteMultipartUpload, "", raw); len(resp.TransferEncoding) != 1 || body != doc {
		t.Errorf("Complete's answer changed: %v %s", resp.TransferEncoding, body)
	}
	// A 200 without an UploadId is the upstream's fault: 502, and no upstream id reaches the client.
	raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	if resp, _ := relayed(t, e, opCreateMultipartUpload, "", raw); resp.StatusCode != 502 {
		t.Errorf("Create without UploadId: %d; want 502", resp.StatusCode)
	}
	long := strings.Replace(createAnswer, "%s", strings.Repeat("u", 752), 1)
	raw = "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(long)) + "\r\n\r\n" + long
	aborts := func() uint64 {
		return uint64(e.metrics.abortsPending.Get()) + e.metrics.abortFailures.Get() + e.metrics.mpAborted.Get()
	}
	before := aborts()
	if resp, body := relayed(t, e, opCreateMultipartUpload, "", raw); resp.StatusCode != 502 || strings.Contains(body, "uuuu") {
		t.Errorf("Create with a 752-byte id: %d %s; want 502", resp.StatusCode, body)
	}
	// That upload is aborted upstream (here, unreachable: the abort is retried until shutdown).
	ok := false
	for deadline := time.Now().Add(5 * time.Second); !ok && time.Now().Before(deadline); {
		ok = aborts() > before
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.finishAborts(ctx); err != nil || !ok {
		t.Errorf("abort of the unbound upload: pending seen %v, finishAborts %v", ok, err)
	}
}

// TestRelayListPartsUploadID: ListParts' answer carries the client's token; markers and parts pass.
func TestRelayListPartsUploadID(t *testing.T) {
	e := newAdmitEngine(t)
	doc := `<ListPartsResult><Bucket>upstream</Bucket><Key>dir/k</Key><UploadId>2~up</UploadId>` +
		`<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>2</NextPartNumberMarker><MaxParts>2</MaxParts>` +
		`<IsTruncated>true</IsTruncated><Part><PartNumber>1</PartNumber></Part></ListPartsResult>`
	raw := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(doc, 40, 40)
	resp, body := relayed(t, e, opListParts, "TOKEN_for-client", raw)
	if want := strings.Replace(doc, "2~up", "TOKEN_for-client", 1); body != want || resp.ContentLength != int64(len(want)) {
		t.Errorf("body %s (Content-Length %d); want %s", body, resp.ContentLength, want)
	}
}

func TestAppendXMLUnescaped(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                "plain",
		"a&amp;b":              "a&b",
		"&lt;&gt;&quot;&apos;": `<>"'`,
		"&#65;&#x42;":          "AB",
		"&bogus;&":             "&bogus;&",
		"&#999;":               "&#999;",
		"x&":                   "x&",
	} {
		if got := string(appendXMLUnescaped(nil, []byte(in))); got != want {
			t.Errorf("appendXMLUnescaped(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestAppendDechunked(t *testing.T) {
	body := strings.Repeat("0123456789", 30)
	if got := string(appendDechunked(nil, []byte(chunked(body, 1, 17, 100)))); got != body {
		t.Errorf("appendDechunked = %q; want %q", got, body)
	}
}
