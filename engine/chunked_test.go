package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/s3sig"
)

// chunkedPut is a signed aws-chunked request made by hand, so that it can be tampered with after
// it was signed.
type chunkedPut struct {
	path     string // /bucket/key
	query    string
	data     []byte
	chunk    int    // data bytes per chunk; 0 = 64 KiB
	trailer  string // "" (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) or the checksum header of …-TRAILER
	decoded  int    // declared x-amz-decoded-content-length; -1 = len(data)
	checksum string // the trailer's value; "" = the right one
	badSig   int    // 1-based chunk (len(chunks)+1 = the final chunk, +2 = the trailer) whose signature is wrong
	// after signing: index of a data byte to flip (-1 none)
	flip int
	// after signing: a function that edits the body
	edit func([]byte) []byte
	// unsigned: STREAMING-UNSIGNED-PAYLOAD-TRAILER framing (no chunk signatures)
	unsigned bool
	// te > 0: sent with Transfer-Encoding: chunked in HTTP chunks of te bytes, no Content-Length
	te int
	// after framing in HTTP chunks: a function that edits the whole chunked body
	teEdit func([]byte) []byte
}

var sigRE = regexp.MustCompile(`Signature=([0-9a-f]{64})`)
var dateRE = regexp.MustCompile(`(?i)x-amz-date: (\d{8}T\d{6}Z)`)

// body renders the chunked body with signatures chained from seed (nil: placeholders).
func (c *chunkedPut) body(seed *s3sig.ChunkSeed) []byte {
	var v s3sig.ChunkVerifier
	if seed != nil {
		v.Reset(seed)
	}
	size := c.chunk
	if size == 0 {
		size = 64 << 10
	}
	sign := func(k int, data []byte) []byte {
		if seed == nil {
			return bytes.Repeat([]byte("0"), 64)
		}
		s := v.SignChunk(nil, data)
		if k == c.badSig {
			s[0] = flipHex(s[0])
		}
		return s
	}
	var b bytes.Buffer
	k := 0
	for off := 0; off < len(c.data); off += size {
		k++
		d := c.data[off:min(off+size, len(c.data))]
		b.WriteString(strconv.FormatInt(int64(len(d)), 16))
		if !c.unsigned {
			b.WriteString(";chunk-signature=")
			b.Write(sign(k, d))
		}
		b.WriteString("\r\n")
		b.Write(d)
		b.WriteString("\r\n")
	}
	k++
	b.WriteString("0")
	if !c.unsigned {
		b.WriteString(";chunk-signature=")
		b.Write(sign(k, nil))
	}
	b.WriteString("\r\n")
	if c.trailer == "" {
		b.WriteString("\r\n")
		return b.Bytes()
	}
	val := c.checksum
	if val == "" {
		val = checksumOf(c.trailer, c.data)
	}
	line := c.trailer + ":" + val
	b.WriteString(line + "\r\n")
	if c.unsigned {
		b.WriteString("\r\n")
		return b.Bytes()
	}
	var ts []byte
	if seed == nil {
		ts = bytes.Repeat([]byte("0"), 64)
	} else {
		ts = v.SignTrailer(nil, []byte(line+"\n"))
		if k+1 == c.badSig {
			ts[0] = flipHex(ts[0])
		}
	}
	b.WriteString("x-amz-trailer-signature:")
	b.Write(ts)
	b.WriteString("\r\n\r\n")
	return b.Bytes()
}

// flipHex changes a hex digit into another one.
func flipHex(c byte) byte {
	if c == '0' {
		return '1'
	}
	return '0'
}

func checksumOf(name string, data []byte) string {
	var h hash.Hash
	switch name {
	case "x-amz-checksum-crc32":
		h = crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		h = crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "x-amz-checksum-sha256":
		h = sha256.New()
	default:
		panic(name)
	}
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// wire signs the head with the SDK's signer (the oracle), chains the chunk signatures from its
// signature, and returns the request's bytes.
func (c *chunkedPut) wire(t *testing.T, host string) []byte {
	t.Helper()
	bodyLen := len(c.body(nil))
	decoded := c.decoded
	if decoded < 0 {
		decoded = len(c.data)
	}
	payload := s3sig.StreamingSigned
	h := http.Header{
		"Content-Encoding":             {"aws-chunked"},
		"X-Amz-Decoded-Content-Length": {strconv.Itoa(decoded)},
	}
	if c.te == 0 {
		h.Set("Content-Length", strconv.Itoa(bodyLen))
	}
	if c.trailer != "" {
		payload = s3sig.StreamingSignedTrailer
		h.Set("X-Amz-Trailer", c.trailer)
	}
	if c.unsigned {
		payload = s3sig.StreamingUnsignedTrailer
	}
	r := rawReq{Method: "PUT", Path: c.path, Query: c.query, Header: h, Payload: payload, Chunked: c.te > 0}
	head := r.bytes(t, host)
	m, d := sigRE.FindSubmatch(head), dateRE.FindSubmatch(head)
	if m == nil || d == nil {
		t.Fatalf("no signature or date in %q", head)
	}
	if c.unsigned {
		return append(head, c.httpChunks(c.body(nil))...)
	}
	seed, err := s3sig.NewChunkSeed(clientSK, d[1], "us-east-1", m[1])
	if err != nil {
		t.Fatal(err)
	}
	body := c.body(&seed)
	if c.flip >= 0 {
		size := c.chunk
		if size == 0 {
			size = 64 << 10
		}
		start := c.flip / size * size
		i := bytes.Index(body, c.data[start:min(start+size, len(c.data))]) // the flipped byte's chunk
		body[i+c.flip-start] ^= 0x20
	}
	if c.edit != nil {
		body = c.edit(body)
	}
	return append(head, c.httpChunks(body)...)
}

// httpChunks frames body in HTTP/1.1 chunks of c.te bytes (RFC 9112 7.1) when c.te > 0.
func (c *chunkedPut) httpChunks(body []byte) []byte {
	if c.te == 0 {
		return body
	}
	var b bytes.Buffer
	for off := 0; off < len(body); off += c.te {
		d := body[off:min(off+c.te, len(body))]
		b.WriteString(strconv.FormatInt(int64(len(d)), 16) + "\r\n")
		b.Write(d)
		b.WriteString("\r\n")
	}
	b.WriteString("0\r\n\r\n")
	if c.teEdit != nil {
		return c.teEdit(b.Bytes())
	}
	return b.Bytes()
}

func TestSignedChunksPut(t *testing.T) {
	p := startProxy(t)
	data := randomBytes(150<<10+7, 9)
	for _, tc := range []struct {
		name    string
		data    []byte
		chunk   int
		trailer string
	}{
		{"empty", nil, 0, ""},
		{"one-byte", data[:1], 0, ""},
		{"three-chunks", data, 0, ""},
		{"8KiB-chunks", data[:100<<10], 8 << 10, ""},
		{"trailer-empty", nil, 0, "x-amz-checksum-crc32"},
		{"trailer-crc32", data, 0, "x-amz-checksum-crc32"},
		{"trailer-crc32c", data[:70000], 0, "x-amz-checksum-crc32c"},
		{"trailer-sha256", data[:5], 0, "x-amz-checksum-sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "signed/" + tc.name
			c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: tc.data, chunk: tc.chunk, trailer: tc.trailer, decoded: -1, flip: -1}
			resp, body := p.do(t, c.wire(t, p.Addr))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got, head := upstream.GetObject(t, p.UpBucket, key)
			if !bytes.Equal(got, tc.data) {
				t.Fatalf("stored %d bytes; want %d", len(got), len(tc.data))
			}
			if tc.trailer == "x-amz-checksum-crc32" {
				// Re-framed as unsigned-trailer: the upstream verified and stored the checksum.
				if want := checksumOf(tc.trailer, tc.data); aws.ToString(head.ChecksumCRC32) != want {
					t.Errorf("upstream CRC32 = %q; want %q", aws.ToString(head.ChecksumCRC32), want)
				}
			}
		})
	}
}

// TestSignedChunksRefused: every failure answers the S3 error and leaves no object upstream.
func TestSignedChunksRefused(t *testing.T) {
	p := startProxy(t)
	data := randomBytes(200<<10, 11)
	crlfAfterFirst := func(b []byte) []byte {
		i := bytes.Index(b, []byte("\r\n")) + 2 + 64<<10
		b[i] = 'x'
		return b
	}
	for _, tc := range []struct {
		name   string
		c      chunkedPut
		status int
		code   string
	}{
		{"tampered-first-chunk", chunkedPut{flip: 10}, 403, "SignatureDoesNotMatch"},
		{"tampered-last-chunk", chunkedPut{flip: 200<<10 - 1}, 403, "SignatureDoesNotMatch"},
		{"bad-chunk-signature", chunkedPut{badSig: 2}, 403, "SignatureDoesNotMatch"},
		{"bad-final-chunk-signature", chunkedPut{badSig: 5}, 403, "SignatureDoesNotMatch"},
		{"bad-final-chunk-signature-empty", chunkedPut{badSig: 1, data: []byte{}}, 403, "SignatureDoesNotMatch"},
		{"bad-trailer-signature", chunkedPut{badSig: 6, trailer: "x-amz-checksum-crc32"}, 403, "SignatureDoesNotMatch"},
		{"bad-trailer-checksum", chunkedPut{trailer: "x-amz-checksum-crc32", checksum: "AAAAAA=="}, 400, "BadDigest"},
		{"bad-trailer-checksum-empty", chunkedPut{data: []byte{}, trailer: "x-amz-checksum-sha256", checksum: checksumOf("x-amz-checksum-sha256", []byte("x"))}, 400, "BadDigest"},
		{"decoded-length-larger", chunkedPut{decoded: 200<<10 + 1}, 400, "IncompleteBody"},
		{"decoded-length-smaller", chunkedPut{decoded: 200<<10 - 1}, 400, "IncompleteBody"},
		{"malformed-crlf", chunkedPut{edit: crlfAfterFirst}, 400, "InvalidRequest"},
		{"malformed-size", chunkedPut{edit: func(b []byte) []byte { b[0] = 'g'; return b }}, 400, "InvalidRequest"},
		{"uppercase-signature", chunkedPut{edit: func(b []byte) []byte { copy(b[bytes.IndexByte(b, '=')+1:], "A"); return b }}, 400, "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "refused/" + tc.name
			c := tc.c
			c.path = "/" + p.Bucket + "/" + key
			if c.data == nil {
				c.data = data
			}
			if c.decoded == 0 {
				c.decoded = -1
			}
			if tc.name != "tampered-first-chunk" && tc.name != "tampered-last-chunk" {
				c.flip = -1
			}
			resp, body := p.do(t, c.wire(t, p.Addr))
			wantS3Error(t, resp, body, tc.status, tc.code)
			if upstream.ObjectExists(t, p.UpBucket, key) {
				t.Fatalf("an object exists after %s", tc.name)
			}
		})
	}
}

// TestSignedChunksShortBody: a client that stops mid-body gets 400 IncompleteBody (after a
// half-close) and the upstream request is reset: no object.
func TestSignedChunksShortBody(t *testing.T) {
	p := startProxy(t)
	for _, trailer := range []string{"", "x-amz-checksum-crc32"} {
		key := "short/" + trailer
		c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: randomBytes(300<<10, 3), trailer: trailer, decoded: -1, flip: -1}
		wire := c.wire(t, p.Addr)
		conn, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		// Everything but the final chunk: the proxy forwarded (nearly) all the data by then.
		cut := bytes.LastIndex(wire, []byte("0;chunk-signature="))
		if _, err := conn.Write(wire[:cut]); err != nil {
			t.Fatal(err)
		}
		_ = conn.(*net.TCPConn).CloseWrite()
		resp, body := readResponse(t, bufio.NewReader(conn))
		conn.Close()
		wantS3Error(t, resp, body, 400, "IncompleteBody")
		if upstream.ObjectExists(t, p.UpBucket, key) {
			t.Fatalf("trailer %q: an object exists after a short body", trailer)
		}
	}
}

// TestSignedChunksUploadPart: a tampered signed part is refused and leaves no part; a good one is
// stored.
func TestSignedChunksUploadPart(t *testing.T) {
	p := startProxy(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := p.sdkClient(t)
	key := "parts/signed"
	out, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	q := "partNumber=1&uploadId=" + aws.ToString(out.UploadId)
	data := randomBytes(130<<10, 5)
	bad := chunkedPut{path: "/" + p.Bucket + "/" + key, query: q, data: data, decoded: -1, flip: 70 << 10}
	resp, body := p.do(t, bad.wire(t, p.Addr))
	wantS3Error(t, resp, body, 403, "SignatureDoesNotMatch")
	parts, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(p.Bucket), Key: aws.String(key), UploadId: out.UploadId}) // through the proxy: the upload id is its token
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.Parts) != 0 {
		t.Fatalf("%d parts after a tampered UploadPart", len(parts.Parts))
	}
	good := chunkedPut{path: "/" + p.Bucket + "/" + key, query: q, data: data, decoded: -1, flip: -1, trailer: "x-amz-checksum-crc32c"}
	resp, body = p.do(t, good.wire(t, p.Addr))
	if resp.StatusCode != 200 {
		t.Fatalf("good part: %d %s", resp.StatusCode, body)
	}
	parts, err = cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(p.Bucket), Key: aws.String(key), UploadId: out.UploadId})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.Parts) != 1 || aws.ToInt64(parts.Parts[0].Size) != int64(len(data)) {
		t.Fatalf("parts = %+v; want one of %d bytes", parts.Parts, len(data))
	}
}

// TestSignedChunksKeepAliveExpectEarlyAnswer: a signed-chunk PUT with Expect: 100-continue gets 100
// before it sends its body and leaves the connection usable for the next request; a conditional
// write the upstream refuses early (If-None-Match: * on an existing key) relays the upstream's 412.
func TestSignedChunksKeepAliveExpectEarlyAnswer(t *testing.T) {
	p := startProxy(t)
	data := randomBytes(100<<10, 4)
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	for i, key := range []string{"ka/1", "ka/2"} {
		c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: data, decoded: -1, flip: -1}
		wire := c.wire(t, p.Addr)
		headEnd := bytes.Index(wire, []byte("\r\n\r\n")) + 4
		head := append([]byte{}, wire[:headEnd-2]...)
		head = append(head, "Expect: 100-continue\r\n\r\n"...)
		if _, err := conn.Write(head); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
			t.Fatalf("request %d: first line %q, %v; want 100 Continue", i, line, err)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(wire[headEnd:]); err != nil {
			t.Fatal(err)
		}
		resp, body := readResponse(t, br)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	big := randomBytes(2<<20, 5)
	c := chunkedPut{path: "/" + p.Bucket + "/ka/1", data: big, decoded: -1, flip: -1}
	wire := c.wire(t, p.Addr)
	i := bytes.Index(wire, []byte("\r\n")) + 2
	wire = append(wire[:i:i], append([]byte("If-None-Match: *\r\n"), wire[i:]...)...)
	resp, body := p.do(t, wire)
	if resp.StatusCode != 412 {
		t.Fatalf("conditional write on an existing key: %d %s; want 412", resp.StatusCode, body)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "ka/1"); !bytes.Equal(got, data) {
		t.Fatal("the existing object changed")
	}
}

// TestSignedChunksPipelined: a small signed-chunk PUT with the next request pipelined behind it in
// the same write is answered, with Connection: close (the detached path cannot keep bytes read past
// the body), instead of leaving the second request hanging.
func TestSignedChunksPipelined(t *testing.T) {
	p := startProxy(t)
	var wire []byte
	for _, key := range []string{"pipe/1", "pipe/2"} {
		c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: []byte("hello"), decoded: -1, flip: -1}
		wire = append(wire, c.wire(t, p.Addr)...)
	}
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	resp, body := readResponse(t, bufio.NewReader(conn))
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("first answer: %d close=%v %s; want 200 with Connection: close", resp.StatusCode, resp.Close, body)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "pipe/1"); string(got) != "hello" {
		t.Fatalf("stored %q", got)
	}
}
