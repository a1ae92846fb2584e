package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// PostObject (browser form uploads) end to end: forms built with Go's mime/multipart, policies
// signed here by hand (the SigV4 POST recipe, independent of the proxy's postform package), sent
// to the proxy, the objects checked on versitygw.

// postPolicy is a policy document and the form fields that go with it.
type postPolicy struct {
	Expiration time.Time
	Conditions []any
	AK, SK     string
	Region     string
	Now        time.Time
}

// sign returns the form's authentication fields: the base64 policy (with the x-amz-* conditions
// added) and its signature.
func (pp postPolicy) sign(t *testing.T) [][2]string {
	t.Helper()
	if pp.AK == "" {
		pp.AK, pp.SK = clientAK, clientSK
	}
	if pp.Region == "" {
		pp.Region = "us-east-1"
	}
	if pp.Now.IsZero() {
		pp.Now = time.Now().UTC()
	}
	if pp.Expiration.IsZero() {
		pp.Expiration = pp.Now.Add(time.Hour)
	}
	date := pp.Now.Format("20060102")
	cred := pp.AK + "/" + date + "/" + pp.Region + "/s3/aws4_request"
	amzDate := pp.Now.Format("20060102T150405Z")
	conds := append([]any{}, pp.Conditions...)
	conds = append(conds, map[string]string{"x-amz-credential": cred}, map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256"},
		map[string]string{"x-amz-date": amzDate})
	doc, err := json.Marshal(map[string]any{"expiration": pp.Expiration.Format("2006-01-02T15:04:05.000Z"), "conditions": conds})
	if err != nil {
		t.Fatal(err)
	}
	policy := base64.StdEncoding.EncodeToString(doc)
	k := hmacSHA([]byte("AWS4"+pp.SK), date)
	for _, s := range []string{pp.Region, "s3", "aws4_request"} {
		k = hmacSHA(k, s)
	}
	return [][2]string{{"X-Amz-Credential", cred}, {"X-Amz-Algorithm", "AWS4-HMAC-SHA256"}, {"X-Amz-Date", amzDate},
		{"Policy", policy}, {"X-Amz-Signature", hex.EncodeToString(hmacSHA(k, policy))}}
}

func hmacSHA(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

// postBody builds a multipart/form-data body: fields, then the file part, then after (fields
// after the file, ignored by S3).
func postBody(t *testing.T, fields [][2]string, filename string, file []byte, after ...[2]string) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := w.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(file)
	for _, f := range after {
		_ = w.WriteField(f[0], f[1])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), w.FormDataContentType()
}

// postWire renders a POST of body to path with Host host.
func postWire(host, path, contentType string, body []byte, extra ...string) []byte {
	var b bytes.Buffer
	b.WriteString("POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: " + contentType + "\r\n")
	b.WriteString("Content-Length: " + itoa(len(body)) + "\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// stdConditions covers the fields stdFields sends.
func stdConditions(bucket string) []any {
	return []any{
		map[string]string{"bucket": bucket},
		[]any{"starts-with", "$key", "uploads/"},
		[]any{"starts-with", "$Content-Type", "image/"},
		map[string]string{"x-amz-meta-owner": "alice"},
		[]any{"content-length-range", 1, 1 << 20},
		[]any{"starts-with", "$success_action_status", ""},
		[]any{"starts-with", "$success_action_redirect", ""},
	}
}

func stdFields(key string) [][2]string {
	return [][2]string{{"key", key}, {"Content-Type", "image/png"}, {"x-amz-meta-owner", "alice"}}
}

func TestPostObjectUploads(t *testing.T) {
	var logBuf syncBuf
	p := startProxy(t, func(o *engine.Options) { o.AccessLog = slog.New(slog.NewJSONHandler(&logBuf, nil)) })
	q := serveOn(t, lastEngine, p) // the goroutine driver (TLS listeners) reaches the same code
	for _, px := range []*proxy{p, q} {
		auth := postPolicy{Conditions: stdConditions(p.Bucket)}.sign(t)
		file := s3test.RandomBytes(300<<10, 7) // larger than the event loop's first read: streamed
		fields := append(stdFields("uploads/${filename}"), auth...)
		body, ct := postBody(t, fields, "cat.png", file)
		resp, rb := px.do(t, postWire(px.Addr, "/"+p.Bucket, ct, body))
		if resp.StatusCode != 204 || resp.Header.Get("ETag") == "" {
			t.Fatalf("POST: %d %s (ETag %q)", resp.StatusCode, rb, resp.Header.Get("ETag"))
		}
		got, head := upstream.GetObject(t, p.UpBucket, "uploads/cat.png")
		if !bytes.Equal(got, file) {
			t.Fatalf("stored %d bytes; want the %d-byte file", len(got), len(file))
		}
		if ct := deref(head.ContentType); ct != "image/png" || head.Metadata["owner"] != "alice" {
			t.Fatalf("stored Content-Type %q, metadata %v", ct, head.Metadata)
		}
		if resp.Header.Get("ETag") != deref(head.ETag) {
			t.Fatalf("ETag %s; stored %s", resp.Header.Get("ETag"), deref(head.ETag))
		}

		// 201: the PostResponse document.
		f201 := append(append(stdFields("uploads/201.png"), [2]string{"success_action_status", "201"}), auth...)
		body, ct = postBody(t, f201, "x.png", []byte("tiny"))
		resp, rb = px.do(t, postWire(px.Addr, "/"+p.Bucket+"/", ct, body))
		if resp.StatusCode != 201 || !bytes.Contains(rb, []byte("<Key>uploads/201.png</Key>")) ||
			!bytes.Contains(rb, []byte("<Bucket>"+p.Bucket+"</Bucket>")) || !bytes.Contains(rb, []byte("<ETag>")) ||
			!bytes.Contains(rb, []byte("<Location>http://"+px.Addr+"/"+p.Bucket+"/uploads/201.png</Location>")) {
			t.Fatalf("201: %d %s", resp.StatusCode, rb)
		}
		// 200: empty.
		f200 := append(append(stdFields("uploads/200.png"), [2]string{"success_action_status", "200"}), auth...)
		body, ct = postBody(t, f200, "x.png", []byte("tiny"))
		resp, rb = px.do(t, postWire(px.Addr, "/"+p.Bucket, ct, body))
		if resp.StatusCode != 200 || len(rb) != 0 {
			t.Fatalf("200: %d %q", resp.StatusCode, rb)
		}
		// 303 to success_action_redirect with bucket, key and etag.
		f303 := append(append(stdFields("uploads/303.png"), [2]string{"success_action_redirect", "https://app.example.com/done?x=1"}), auth...)
		body, ct = postBody(t, f303, "x.png", []byte("tiny"))
		resp, _ = px.do(t, postWire(px.Addr, "/"+p.Bucket, ct, body))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 303 || loc == nil || loc.Host != "app.example.com" || loc.Query().Get("key") != "uploads/303.png" ||
			loc.Query().Get("bucket") != p.Bucket || loc.Query().Get("etag") == "" || loc.Query().Get("x") != "1" {
			t.Fatalf("303: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if !upstream.ObjectExists(t, p.UpBucket, "uploads/303.png") {
			t.Fatal("303: object not stored")
		}
	}
	if v := metricValue(t, `mizuchi_requests_total{bucket="`+p.Bucket+`",operation="PostObject",status="204"}`); v != 2 {
		t.Fatalf("PostObject 204 count = %v; want 2", v)
	}
	waitFor(t, "access log lines", 5*time.Second, func() bool { return strings.Count(logBuf.String(), `"operation":"PostObject"`) >= 8 })
	if !strings.Contains(logBuf.String(), `"key":"uploads/cat.png"`) || !strings.Contains(logBuf.String(), `"auth":"sigv4-post"`) ||
		!strings.Contains(logBuf.String(), `"principal":"`+clientAK+`"`) {
		t.Fatalf("access log:\n%s", logBuf.String())
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Virtual-hosted: POST / with Host <bucket>.<suffix>; the policy's bucket is the client-facing name.
func TestPostObjectVirtualHosted(t *testing.T) {
	p := startProxy(t, withVirtualHosts(vhostSuffix))
	auth := postPolicy{Conditions: stdConditions(p.Bucket)}.sign(t)
	body, ct := postBody(t, append(stdFields("uploads/vh.png"), auth...), "vh.png", []byte("virtual"))
	_, port, _ := net.SplitHostPort(p.Addr)
	resp, rb := p.do(t, postWire(p.Bucket+"."+vhostSuffix+":"+port, "/", ct, body))
	if resp.StatusCode != 204 {
		t.Fatalf("POST /: %d %s", resp.StatusCode, rb)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "uploads/vh.png"); string(got) != "virtual" {
		t.Fatalf("stored %q", got)
	}
}

// Every refusal is a precise S3 error and nothing reaches the upstream (a tripwire).
func TestPostObjectRefusals(t *testing.T) {
	tw := startTripwire(t)
	p := startProxy(t, func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = tw.Endpoint })
	good := postPolicy{Conditions: stdConditions(p.Bucket)}
	form := func(pp postPolicy, fields [][2]string) [][2]string { return append(fields, pp.sign(t)...) }
	expired := good
	expired.Now = time.Now().UTC().Add(-2 * time.Hour)
	otherBucket := postPolicy{Conditions: stdConditions("not-" + p.Bucket)}
	wrongSK := good
	wrongSK.AK, wrongSK.SK = clientAK, "not-the-secret"
	unknownAK := good
	unknownAK.AK = "AKIDUNKNOWN"
	wrongRegion := good
	wrongRegion.Region = "eu-west-1"
	tamper := func(fields [][2]string, name, v string) [][2]string {
		out := append([][2]string{}, fields...)
		for i := range out {
			if out[i][0] == name {
				out[i][1] = v
			}
		}
		return out
	}
	big := make([]byte, 1<<20+1)
	cases := []struct {
		name   string
		fields [][2]string
		file   []byte
		status int
		code   string
		msg    string
	}{
		{"bad signature", form(wrongSK, stdFields("uploads/a.png")), []byte("x"), 403, "SignatureDoesNotMatch", ""},
		{"tampered policy", tamper(form(good, stdFields("uploads/a.png")), "Policy", form(otherBucket, nil)[3][1]), []byte("x"), 403, "SignatureDoesNotMatch", ""},
		{"unknown key", form(unknownAK, stdFields("uploads/a.png")), []byte("x"), 403, "InvalidAccessKeyId", ""},
		{"wrong region", form(wrongRegion, stdFields("uploads/a.png")), []byte("x"), 400, "AuthorizationHeaderMalformed", "eu-west-1"},
		{"expired", form(expired, stdFields("uploads/a.png")), []byte("x"), 403, "AccessDenied", "Policy expired"},
		{"bucket condition", form(otherBucket, stdFields("uploads/a.png")), []byte("x"), 403, "AccessDenied", `Policy Condition failed: [\"eq\", \"$bucket\"`},
		{"key condition", form(good, stdFields("private/a.png")), []byte("x"), 403, "AccessDenied", `[\"starts-with\", \"$key\", \"uploads/\"]`},
		{"content type", form(good, tamper(stdFields("uploads/a.png"), "Content-Type", "text/html")), []byte("x"), 403, "AccessDenied", "$content-type"},
		{"metadata", form(good, tamper(stdFields("uploads/a.png"), "x-amz-meta-owner", "mallory")), []byte("x"), 403, "AccessDenied", "$x-amz-meta-owner"},
		{"extra field", form(good, append(stdFields("uploads/a.png"), [2]string{"x-amz-meta-extra", "1"})), []byte("x"), 403, "AccessDenied", "Extra input fields: x-amz-meta-extra"},
		{"too large", form(good, stdFields("uploads/a.png")), big, 400, "EntityTooLarge", ""},
		{"too small", form(good, stdFields("uploads/a.png")), nil, 400, "EntityTooSmall", ""},
		{"no key", form(good, stdFields("uploads/a.png")[1:]), []byte("x"), 400, "InvalidArgument", "must contain a field named"},
		{"no policy", stdFields("uploads/a.png"), []byte("x"), 403, "AccessDenied", ""},
		{"bad algorithm", tamper(form(good, stdFields("uploads/a.png")), "X-Amz-Algorithm", "AWS4-HMAC-SHA1"), []byte("x"), 400, "InvalidArgument", ""},
		{"fields too large", form(good, append(stdFields("uploads/a.png"), [2]string{"x-ignore-pad", strings.Repeat("p", 21<<10)})), []byte("x"), 400, "MaxPostPreDataLengthExceeded", ""},
		{"header injection", form(postPolicy{Conditions: append(stdConditions(p.Bucket), []any{"starts-with", "$x-amz-meta-note", ""})},
			append(stdFields("uploads/a.png"), [2]string{"x-amz-meta-note", "a\r\nx-amz-acl: public-read"})), []byte("x"), 400, "InvalidArgument", "control characters"},
		{"dot segment", form(good, stdFields("uploads/../../etc/a.png")), []byte("x"), 400, "InvalidArgument", "dot segments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := postBody(t, tc.fields, "a.png", tc.file)
			resp, rb := p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body))
			wantS3Error(t, resp, rb, tc.status, tc.code)
			if tc.msg != "" && !bytes.Contains(rb, []byte(strings.ReplaceAll(tc.msg, `\"`, "&quot;"))) && !bytes.Contains(rb, []byte(strings.ReplaceAll(tc.msg, `\"`, `"`))) {
				t.Errorf("message %s lacks %s", rb, tc.msg)
			}
		})
	}
	// The head alone: no Content-Length (chunked) → 411; no boundary → 400.
	body, ct := postBody(t, form(good, stdFields("uploads/a.png")), "a.png", []byte("x"))
	chunked := "POST /" + p.Bucket + " HTTP/1.1\r\nHost: " + p.Addr + "\r\nContent-Type: " + ct + "\r\nTransfer-Encoding: chunked\r\n\r\n"
	resp, rb := p.do(t, []byte(chunked+"0\r\n\r\n"))
	wantS3Error(t, resp, rb, 411, "MissingContentLength")
	resp, rb = p.do(t, postWire(p.Addr, "/"+p.Bucket, "multipart/form-data", body))
	wantS3Error(t, resp, rb, 400, "MalformedPOSTRequest")
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("refused PostObjects opened %d upstream connections", n)
	}
}

// A body cut mid-file, and (above the size read whole) a body with parts after the file or a
// closing delimiter without its CRLF, store nothing: the upstream request is reset before it is
// complete. Below that size, parts after the file are ignored as S3 ignores them.
func TestPostObjectBrokenBodiesStoreNothing(t *testing.T) {
	p := startProxy(t)
	conds := append(stdConditions(p.Bucket)[:4], []any{"content-length-range", 1, 8 << 20})
	auth := postPolicy{Conditions: conds}.sign(t)
	file := s3test.RandomBytes(1536<<10, 3)

	// Truncated: the client sends half the file and half-closes.
	body, ct := postBody(t, append(stdFields("uploads/cut.png"), auth...), "cut.png", file)
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	wire := postWire(p.Addr, "/"+p.Bucket, ct, body)
	c.Write(wire[:len(wire)-len(body)/2])
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out := make([]byte, 4096)
	n, _ := c.Read(out)
	c.Close()
	if !bytes.Contains(out[:n], []byte("<Code>IncompleteBody</Code>")) {
		t.Fatalf("truncated: %q", out[:n])
	}

	// A part after a large file: this proxy cannot know the file's length up front and refuses,
	// storing nothing.
	body, ct = postBody(t, append(stdFields("uploads/after.png"), auth...), "after.png", file, [2]string{"submit", "Upload"})
	resp, rb := p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body))
	wantS3Error(t, resp, rb, 400, "MalformedPOSTRequest")

	// The closing delimiter without its CRLF, after a large file.
	body, ct = postBody(t, append(stdFields("uploads/nocrlf.png"), auth...), "nocrlf.png", file)
	resp, rb = p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body[:len(body)-2]))
	wantS3Error(t, resp, rb, 400, "MalformedPOSTRequest")

	for _, k := range []string{"uploads/cut.png", "uploads/after.png", "uploads/nocrlf.png"} {
		if upstream.ObjectExists(t, p.UpBucket, k) {
			t.Errorf("%s was stored", k)
		}
	}

	// Small files: a submit field after the file (AWS's example form) is ignored, and so is a
	// missing final CRLF.
	small := file[:900<<10]
	body, ct = postBody(t, append(stdFields("uploads/submit.png"), auth...), "submit.png", small, [2]string{"submit", "Upload to Amazon S3"})
	if resp, rb := p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body)); resp.StatusCode != 204 {
		t.Fatalf("small file with a submit field after it: %d %s", resp.StatusCode, rb)
	}
	body, ct = postBody(t, append(stdFields("uploads/nocrlf-small.png"), auth...), "nocrlf-small.png", small)
	if resp, rb := p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body[:len(body)-2])); resp.StatusCode != 204 {
		t.Fatalf("small file, no final CRLF: %d %s", resp.StatusCode, rb)
	}
	for _, k := range []string{"uploads/submit.png", "uploads/nocrlf-small.png"} {
		if got, _ := upstream.GetObject(t, p.UpBucket, k); !bytes.Equal(got, small) {
			t.Errorf("%s: stored %d bytes; want the %d-byte file", k, len(got), len(small))
		}
	}
	// A small body cut short, and a small body whose parts never close.
	body, ct = postBody(t, append(stdFields("uploads/open.png"), auth...), "open.png", small, [2]string{"submit", "x"})
	body = bytes.TrimSuffix(body, []byte("--"+strings.TrimPrefix(ct, "multipart/form-data; boundary=")+"--\r\n"))
	resp, rb = p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body))
	wantS3Error(t, resp, rb, 400, "MalformedPOSTRequest")
	if upstream.ObjectExists(t, p.UpBucket, "uploads/open.png") {
		t.Error("a form that never closes was stored")
	}
}

// The bucket policy and the Authorizer apply as to a PutObject by the policy's access key.
func TestPostObjectBucketPolicyAndAuthorizer(t *testing.T) {
	var seen []*engine.AuthzInput
	p := startProxy(t, withPolicy(testPolicy(t, 1<<20)), func(o *engine.Options) {
		o.Buckets[0].Authorizer = engine.AuthorizerFunc(func(_ context.Context, in *engine.AuthzInput) *engine.Error {
			seen = append(seen, in)
			if strings.Contains(in.Key, "deny") {
				return &engine.Error{Code: "AccessDenied", Status: 403, Message: "denied by the test authorizer"}
			}
			return nil
		})
	})
	auth := postPolicy{Conditions: []any{map[string]string{"bucket": p.Bucket}, []any{"starts-with", "$key", ""},
		[]any{"starts-with", "$Content-Type", "image/"}, map[string]string{"x-amz-meta-owner": "alice"},
		[]any{"starts-with", "$x-amz-checksum-crc32", ""}}}.sign(t)
	crc := [2]string{"x-amz-checksum-crc32", crc32b64([]byte("hello"))}
	send := func(key string) (*http.Response, []byte) {
		fields := append(append(stdFields(key), crc), auth...)
		body, ct := postBody(t, fields, "f.png", []byte("hello"))
		return p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body))
	}
	own := "users/" + clientAK + "/"
	if resp, rb := send(own + "ok.png"); resp.StatusCode != 204 {
		t.Fatalf("allowed: %d %s", resp.StatusCode, rb)
	}
	resp, rb := send("users/other/x.png")
	wantS3Error(t, resp, rb, 403, "AccessDenied")
	if !bytes.Contains(rb, []byte("key_template")) {
		t.Fatalf("policy refusal: %s", rb)
	}
	resp, rb = send(own + "deny.png")
	wantS3Error(t, resp, rb, 403, "AccessDenied")
	// no_overwrite: the second POST of the same key gets the upstream's 412.
	resp, rb = send(own + "ok.png")
	if resp.StatusCode != 412 {
		t.Fatalf("overwrite: %d %s", resp.StatusCode, rb)
	}
	last := seen[len(seen)-1]
	if last.Operation != "PutObject" || last.Principal.ID != clientAK || last.Principal.Method != "sigv4-post" ||
		last.Key != own+"ok.png" || last.Size != 5 || last.ContentType != "image/png" || last.Bucket != p.Bucket {
		t.Fatalf("authorizer input %+v", last)
	}
}

func crc32b64(b []byte) string {
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(b))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// A file above the bucket's multipart_threshold is cut into a multipart upload; a broken one is
// aborted and stores nothing.
func TestPostObjectAutoChunked(t *testing.T) {
	p := startProxy(t, func(o *engine.Options) {
		o.Buckets[0].Upload = engine.UploadOptions{MultipartThreshold: 5 << 20, PartSize: 5 << 20}
	})
	conds := []any{map[string]string{"bucket": p.Bucket}, []any{"starts-with", "$key", "big/"},
		[]any{"starts-with", "$Content-Type", ""}, []any{"starts-with", "$x-amz-meta-owner", ""},
		[]any{"content-length-range", 0, 64 << 20}, []any{"eq", "$success_action_status", "201"}}
	auth := postPolicy{Conditions: conds}.sign(t)
	file := s3test.RandomBytes(12<<20+17, 9)
	fields := append([][2]string{{"key", "big/${filename}"}, {"Content-Type", "video/mp4"}, {"x-amz-meta-owner", "alice"},
		{"success_action_status", "201"}}, auth...)
	body, ct := postBody(t, fields, "film.mp4", file)
	resp, rb := p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body))
	if resp.StatusCode != 201 || !bytes.Contains(rb, []byte("<Key>big/film.mp4</Key>")) || !strings.Contains(resp.Header.Get("ETag"), "-3") {
		t.Fatalf("POST: %d %s (ETag %q)", resp.StatusCode, rb, resp.Header.Get("ETag"))
	}
	got, head := upstream.GetObject(t, p.UpBucket, "big/film.mp4")
	if !bytes.Equal(got, file) || deref(head.ContentType) != "video/mp4" || head.Metadata["owner"] != "alice" {
		t.Fatalf("stored %d bytes, type %q, metadata %v", len(got), deref(head.ContentType), head.Metadata)
	}
	// A part after the file, found in the last part: the upload is aborted.
	body, ct = postBody(t, append([][2]string{{"key", "big/after.mp4"}, {"Content-Type", "video/mp4"}, {"x-amz-meta-owner", "a"},
		{"success_action_status", "201"}}, auth...), "after.mp4", file, [2]string{"submit", "go"})
	resp, rb = p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body))
	wantS3Error(t, resp, rb, 400, "MalformedPOSTRequest")
	if upstream.ObjectExists(t, p.UpBucket, "big/after.mp4") {
		t.Fatal("big/after.mp4 was stored")
	}
	if ups := upstream.ListMultipartUploads(t, p.UpBucket); len(ups) != 0 {
		t.Fatalf("%d multipart uploads left behind", len(ups))
	}
}

// The tagging field (a <Tagging> document) goes upstream as x-amz-tagging, acl as x-amz-acl.
func TestPostObjectTaggingAndACL(t *testing.T) {
	p := startProxy(t)
	conds := append(stdConditions(p.Bucket), []any{"starts-with", "$tagging", ""}, map[string]string{"acl": "private"})
	auth := postPolicy{Conditions: conds}.sign(t)
	doc := "<Tagging><TagSet><Tag><Key>project</Key><Value>blue sky</Value></Tag><Tag><Key>n</Key><Value>1</Value></Tag></TagSet></Tagging>"
	fields := append(append(stdFields("uploads/tagged.png"), [2]string{"tagging", doc}, [2]string{"acl", "private"}), auth...)
	body, ct := postBody(t, fields, "t.png", []byte("tagged"))
	if resp, rb := p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body)); resp.StatusCode != 204 {
		t.Fatalf("POST: %d %s", resp.StatusCode, rb)
	}
	tags := upstream.GetObjectTagging(t, p.UpBucket, "uploads/tagged.png")
	if tags["project"] != "blue sky" || tags["n"] != "1" || len(tags) != 2 {
		t.Fatalf("tags %v", tags)
	}
	fields = append(append(stdFields("uploads/badtag.png"), [2]string{"tagging", "<Tagging>"}, [2]string{"acl", "private"}), auth...)
	body, ct = postBody(t, fields, "t.png", []byte("tagged"))
	resp, rb := p.do(t, postWire(p.Addr, "/"+p.Bucket, ct, body))
	wantS3Error(t, resp, rb, 400, "MalformedXML")
}

// Over a TLS listener, on both drivers (Serve: a goroutine per connection; ServeTLS: the event
// loops, the form detached through the tls.Conn): net/http posts the form; the Location is https.
func TestPostObjectTLS(t *testing.T) {
	p := startProxy(t)
	cert, pool := selfSigned(t)
	auth := postPolicy{Conditions: stdConditions(p.Bucket)}.sign(t)
	for i, driver := range []string{"goroutine", "loop"} {
		t.Run(driver, func(t *testing.T) {
			addr := serveTLS(t, driver, cert)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
			defer hc.CloseIdleConnections()
			for j, size := range []int{3 << 10, 700 << 10} {
				key := fmt.Sprintf("uploads/tls-%s-%d.png", driver, j)
				file := s3test.RandomBytes(size, int64(5+i*2+j))
				body, ct := postBody(t, append(append(stdFields(key), [2]string{"success_action_status", "201"}), auth...), "tls.png", file)
				resp, err := hc.Post("https://"+addr+"/"+p.Bucket, ct, bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				rb, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 || !bytes.Contains(rb, []byte("<Location>https://"+addr+"/"+p.Bucket+"/"+key+"</Location>")) {
					t.Fatalf("POST %d bytes: %d %s", size, resp.StatusCode, rb)
				}
				if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, file) {
					t.Fatalf("stored %d bytes; want %d", len(got), len(file))
				}
			}
		})
	}
}

// A client that stops sending, in its fields or in its file, gets 400 RequestTimeout after
// body_stall_timeout and nothing is stored.
func TestPostObjectStalls(t *testing.T) {
	p := startProxy(t, func(o *engine.Options) { o.BodyStallTimeout = 300 * time.Millisecond })
	auth := postPolicy{Conditions: stdConditions(p.Bucket)}.sign(t)
	body, ct := postBody(t, append(stdFields("uploads/stall.png"), auth...), "stall.png", s3test.RandomBytes(200<<10, 4))
	wire := postWire(p.Addr, "/"+p.Bucket, ct, body)
	head := len(wire) - len(body)
	for _, cut := range []int{head + 100, len(wire) - 50<<10} { // in the fields; in the file
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(wire[:cut])
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		out := make([]byte, 4096)
		n, _ := c.Read(out)
		c.Close()
		if !bytes.Contains(out[:n], []byte("<Code>RequestTimeout</Code>")) {
			t.Fatalf("stalled at %d of %d: %q", cut, len(wire), out[:n])
		}
	}
	if upstream.ObjectExists(t, p.UpBucket, "uploads/stall.png") {
		t.Fatal("a stalled upload was stored")
	}
}

// Small files are read whole only within the Complete documents' memory budget (4 MiB here):
// while four forms of ~1 MiB hold it, a fifth is streamed like a large one (its part after the
// file is then refused); once they finish, the budget is back.
func TestPostObjectWholeBudget(t *testing.T) {
	p := startProxy(t, func(o *engine.Options) { o.CompleteBodyBudget = 4 << 20 })
	auth := postPolicy{Conditions: stdConditions(p.Bucket)}.sign(t)
	form := func(key string, size int) []byte {
		body, ct := postBody(t, append(stdFields(key), auth...), "b.png", s3test.RandomBytes(size, 2), [2]string{"submit", "Upload"})
		return postWire(p.Addr, "/"+p.Bucket, ct, body)
	}
	active := func() float64 { return metricValue(t, "mizuchi_uploads_active") }
	base := active()
	var held []net.Conn
	var rest [][]byte
	for i := range 4 {
		wire := form("uploads/held-"+itoa(i)+".png", 1000<<10)
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(wire[:len(wire)-1000])
		held, rest = append(held, c), append(rest, wire[len(wire)-1000:])
	}
	waitFor(t, "four forms in flight", 5*time.Second, func() bool { return active() == base+4 })
	time.Sleep(200 * time.Millisecond) // each has read its fields and taken its share of the budget
	resp, rb := p.do(t, form("uploads/over.png", 100<<10))
	wantS3Error(t, resp, rb, 400, "MalformedPOSTRequest")
	for i, c := range held {
		c.Write(rest[i])
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, rb := readResponse(t, bufio.NewReader(c))
		if resp.StatusCode != 204 {
			t.Fatalf("held form %d: %d %s", i, resp.StatusCode, rb)
		}
	}
	if resp, rb := p.do(t, form("uploads/after.png", 100<<10)); resp.StatusCode != 204 {
		t.Fatalf("after the budget came back: %d %s", resp.StatusCode, rb)
	}
}

// With the bucket's CORS rules, every PostObject answer to a request with an Origin carries the
// matching rule's headers: the success, a refusal made once the form was read, one made by admit,
// and an upstream answer relayed; a preflight to the bucket-level path is allowed.
func TestPostObjectCORS(t *testing.T) {
	p := startProxy(t, withCORS(testCORS(t)), withPolicy(testPolicy(t, 1<<20)))
	q := serveOn(t, lastEngine, p)
	auth := postPolicy{Conditions: []any{map[string]string{"bucket": p.Bucket}, []any{"starts-with", "$key", ""},
		[]any{"starts-with", "$Content-Type", "image/"}, map[string]string{"x-amz-meta-owner": "alice"},
		[]any{"starts-with", "$x-amz-checksum-crc32", ""}}}.sign(t)
	crc := [2]string{"x-amz-checksum-crc32", crc32b64([]byte("hello"))}
	own := "users/" + clientAK + "/"
	for _, px := range []*proxy{p, q} {
		send := func(key string, fields [][2]string, extra ...string) (*http.Response, []byte) {
			body, ct := postBody(t, append(append(stdFields(key), crc), fields...), "f.png", []byte("hello"))
			return px.do(t, postWire(px.Addr, "/"+p.Bucket, ct, body, append([]string{"Origin: " + appOrigin}, extra...)...))
		}
		check := func(what string, resp *http.Response) {
			t.Helper()
			if resp.Header.Get("Access-Control-Allow-Origin") != appOrigin || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "ETag") ||
				resp.Header.Get("Vary") == "" {
				t.Errorf("%s: %d without the CORS headers: %v", what, resp.StatusCode, resp.Header)
			}
		}
		key := own + "cors-" + strings.TrimPrefix(px.Addr, "127.0.0.1:") + ".png"
		resp, rb := send(key, auth)
		if resp.StatusCode != 204 {
			t.Fatalf("POST: %d %s", resp.StatusCode, rb)
		}
		check("stored", resp)
		resp, _ = send(key, auth) // no_overwrite: the upstream's 412, relayed
		if resp.StatusCode != 412 {
			t.Fatalf("overwrite: %d", resp.StatusCode)
		}
		check("relayed 412", resp)
		resp, _ = send("users/other/x.png", auth) // the bucket policy, once the form is read
		check("policy refusal", resp)
		bad := append([][2]string{}, auth...)
		bad[len(bad)-1][1] = strings.Repeat("0", 64)
		resp, _ = send(own+"sig.png", bad) // a bad signature
		if resp.StatusCode != 403 {
			t.Fatalf("bad signature: %d", resp.StatusCode)
		}
		check("bad signature", resp)
		resp, _ = px.do(t, []byte("POST /"+p.Bucket+" HTTP/1.1\r\nHost: x\r\nOrigin: "+appOrigin+"\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"))
		if resp.StatusCode != 411 {
			t.Fatalf("chunked form: %d", resp.StatusCode)
		}
		check("admit refusal", resp)
		resp, _ = px.do(t, []byte("OPTIONS /"+p.Bucket+" HTTP/1.1\r\nHost: x\r\nOrigin: "+appOrigin+"\r\nAccess-Control-Request-Method: POST\r\n\r\n"))
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
			t.Fatalf("preflight of a form POST: %d %v", resp.StatusCode, resp.Header)
		}
	}
}
