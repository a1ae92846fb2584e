package engine_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// Transfer-Encoding: chunked request bodies (RFC 9112 7.1), as aws cli, boto3 and the JS SDK send
// aws-chunked bodies over https: de-chunked on the copy path, forwarded with a Content-Length; a
// chunked body whose length cannot be known is 411 MissingContentLength. Every test runs on both
// listeners: the gnet plain one and the goroutine-per-connection TLS one (Engine.Serve).

// teListener is one way to reach the proxy: a dialer and the Host to sign for.
type teListener struct {
	name string
	host string
	dial func(t *testing.T) net.Conn
}

// teListeners starts a proxy (with opts) and serves it on gnet and on a TLS listener.
func teListeners(t *testing.T, opts ...proxyOpt) (*proxy, []teListener) {
	t.Helper()
	p := startProxy(t, opts...)
	cert, pool := selfSigned(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	e := lastEngine
	done := make(chan error, 1)
	go func() { done <- e.Serve(l) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	tlsAddr := l.Addr().String()
	return p, []teListener{
		{"gnet", p.Addr, func(t *testing.T) net.Conn {
			c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"tls", tlsAddr, func(t *testing.T) net.Conn {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tlsAddr, &tls.Config{RootCAs: pool})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
	}
}

// do sends wire on a new connection and reads one answer.
func (l teListener) do(t *testing.T, wire []byte) (*http.Response, []byte) {
	t.Helper()
	c := l.dial(t)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	go func() { _, _ = c.Write(wire) }()
	return readResponse(t, bufio.NewReader(c))
}

// TestTEChunkedPut: aws-chunked bodies in HTTP chunks — unsigned with and without a trailing
// checksum, signed with and without a trailer, empty — are stored whole; the checksum goes upstream
// (re-framed as one aws-chunked chunk) and is stored there.
func TestTEChunkedPut(t *testing.T) {
	p, ls := teListeners(t)
	data := randomBytes(150<<10+7, 21)
	for _, l := range ls {
		for _, tc := range []struct {
			name    string
			c       chunkedPut
			trailer string
		}{
			{"unsigned-crc32", chunkedPut{data: data, unsigned: true, trailer: "x-amz-checksum-crc32", te: 16 << 10}, "x-amz-checksum-crc32"},
			{"unsigned-crc32-small-http-chunks", chunkedPut{data: data[:3000], unsigned: true, trailer: "x-amz-checksum-crc32", te: 7}, "x-amz-checksum-crc32"},
			{"unsigned-crc32-empty", chunkedPut{data: []byte{}, unsigned: true, trailer: "x-amz-checksum-crc32", te: 100}, "x-amz-checksum-crc32"},
			{"unsigned-sha256-one-http-chunk", chunkedPut{data: data, unsigned: true, trailer: "x-amz-checksum-sha256", te: 1 << 20}, ""},
			{"unsigned-no-trailer", chunkedPut{data: data, unsigned: true, te: 5000}, ""},
			{"signed", chunkedPut{data: data, te: 10000}, ""},
			{"signed-crc32", chunkedPut{data: data, trailer: "x-amz-checksum-crc32", te: 64 << 10}, "x-amz-checksum-crc32"},
			{"signed-empty", chunkedPut{data: []byte{}, te: 3}, ""},
		} {
			t.Run(l.name+"/"+tc.name, func(t *testing.T) {
				key := "te/" + l.name + "/" + tc.name
				c := tc.c
				c.path, c.decoded, c.flip = "/"+p.Bucket+"/"+key, -1, -1
				resp, body := l.do(t, c.wire(t, l.host))
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				got, head := upstream.GetObject(t, p.UpBucket, key)
				if !bytes.Equal(got, c.data) {
					t.Fatalf("stored %d bytes; want %d", len(got), len(c.data))
				}
				if tc.trailer != "" {
					if want := checksumOf(tc.trailer, c.data); aws.ToString(head.ChecksumCRC32) != want {
						t.Errorf("upstream CRC32 = %q; want %q", aws.ToString(head.ChecksumCRC32), want)
					}
				}
				if ce := aws.ToString(head.ContentEncoding); strings.Contains(ce, "chunked") && ce != "aws-chunked" {
					t.Errorf("stored Content-Encoding %q", ce)
				}
			})
		}
	}
}

// TestTEChunkedRefused: a chunked body the proxy cannot forward faithfully is refused with S3's
// answer and leaves no object: no length (411), a bad trailing checksum, a decoded length other
// than declared, malformed HTTP framing (the smuggling shapes), Transfer-Encoding with
// Content-Length or another coding.
func TestTEChunkedRefused(t *testing.T) {
	p, ls := teListeners(t)
	data := randomBytes(100<<10, 22)
	replaceFirst := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	}
	for _, l := range ls {
		for _, tc := range []struct {
			name   string
			c      chunkedPut
			status int
			code   string
		}{
			{"bad-trailer-checksum", chunkedPut{unsigned: true, trailer: "x-amz-checksum-crc32", checksum: "AAAAAA=="}, 400, "BadDigest"},
			{"bad-trailer-checksum-signed", chunkedPut{trailer: "x-amz-checksum-crc32", checksum: "AAAAAA=="}, 400, "BadDigest"},
			{"decoded-length-larger", chunkedPut{unsigned: true, trailer: "x-amz-checksum-crc32", decoded: 100<<10 + 1}, 400, "IncompleteBody"},
			{"decoded-length-smaller", chunkedPut{unsigned: true, trailer: "x-amz-checksum-crc32", decoded: 100<<10 - 1}, 400, "IncompleteBody"},
			{"signed-tampered", chunkedPut{flip: 70 << 10}, 403, "SignatureDoesNotMatch"},
			{"size-0x", chunkedPut{unsigned: true, teEdit: replaceFirst("4000\r\n", "0x4000\r\n")}, 400, "BadRequest"},
			{"size-plus", chunkedPut{unsigned: true, teEdit: replaceFirst("4000\r\n", "+4000\r\n")}, 400, "BadRequest"},
			{"size-leading-space", chunkedPut{unsigned: true, teEdit: replaceFirst("4000\r\n", " 4000\r\n")}, 400, "BadRequest"},
			{"size-trailing-space", chunkedPut{unsigned: true, teEdit: replaceFirst("4000\r\n", "4000 \r\n")}, 400, "BadRequest"},
			{"size-overlong", chunkedPut{unsigned: true, teEdit: replaceFirst("4000\r\n", "00000000000004000\r\n")}, 400, "BadRequest"},
			{"size-bare-lf", chunkedPut{unsigned: true, teEdit: replaceFirst("4000\r\n", "4000\n")}, 400, "BadRequest"},
			{"extension-bws", chunkedPut{unsigned: true, teEdit: replaceFirst("4000\r\n", "4000; a=b\r\n")}, 400, "BadRequest"},
			{"data-longer-than-size", chunkedPut{unsigned: true, teEdit: replaceFirst("4000\r\n", "3fff\r\n")}, 400, "BadRequest"},
			{"trailer-injection", chunkedPut{unsigned: true, teEdit: func(b []byte) []byte {
				return append(b[:len(b)-2], "PUT /x HTTP/1.1\r\n\r\n"...)
			}}, 400, "BadRequest"},
		} {
			t.Run(l.name+"/"+tc.name, func(t *testing.T) {
				key := "te-refused/" + l.name + "/" + tc.name
				c := tc.c
				c.path = "/" + p.Bucket + "/" + key
				if c.data == nil {
					c.data = data
				}
				if c.decoded == 0 {
					c.decoded = -1
				}
				if c.flip == 0 {
					c.flip = -1
				}
				if c.te == 0 {
					c.te = 16 << 10
				}
				resp, body := l.do(t, c.wire(t, l.host))
				wantS3Error(t, resp, body, tc.status, tc.code)
				if upstream.ObjectExists(t, p.UpBucket, key) {
					t.Fatalf("an object exists after %s", tc.name)
				}
			})
		}
		plain := func(key string, hdr http.Header, payload string, extra string) []byte {
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Header: hdr, Payload: payload, Chunked: true}
			w := r.bytes(t, l.host)
			if extra != "" {
				w = bytes.Replace(w, []byte("Transfer-Encoding: chunked\r\n"), []byte(extra), 1)
			}
			return append(w, "5\r\nhello\r\n0\r\n\r\n"...)
		}
		for _, tc := range []struct {
			name    string
			payload string
			hdr     http.Header
			extra   string // replaces the Transfer-Encoding line
			status  int
			code    string
		}{
			{"no-length-unsigned", "UNSIGNED-PAYLOAD", nil, "", 411, "MissingContentLength"},
			{"no-length-hex-sha256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", nil, "", 411, "MissingContentLength"},
			{"aws-chunked-without-decoded-length", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", http.Header{"Content-Encoding": {"aws-chunked"}}, "", 411, "MissingContentLength"},
			{"te-with-content-length", "UNSIGNED-PAYLOAD", nil, "Transfer-Encoding: chunked\r\nContent-Length: 17\r\n", 400, "BadRequest"},
			{"te-chunked-twice", "UNSIGNED-PAYLOAD", nil, "Transfer-Encoding: chunked, chunked\r\n", 400, "BadRequest"},
			{"te-gzip", "UNSIGNED-PAYLOAD", nil, "Transfer-Encoding: gzip, chunked\r\n", 501, "NotImplemented"},
		} {
			t.Run(l.name+"/"+tc.name, func(t *testing.T) {
				key := "te-plain/" + l.name + "/" + tc.name
				resp, body := l.do(t, plain(key, tc.hdr, tc.payload, tc.extra))
				wantS3Error(t, resp, body, tc.status, tc.code)
				if upstream.ObjectExists(t, p.UpBucket, key) {
					t.Fatalf("an object exists after %s", tc.name)
				}
			})
		}
	}
}

// TestTEChunkedAutoChunk: above the bucket's multipart threshold a chunked aws-chunked PutObject is
// cut into parts from its decoded bytes; a bad trailing checksum aborts the upload (no object, no
// upload left).
func TestTEChunkedAutoChunk(t *testing.T) {
	p, ls := teListeners(t, withAutoChunk("", 6<<20, 5<<20, 2))
	data := s3test.RandomBytes(7<<20+3, 23)
	for _, l := range ls {
		key := "te-auto/" + l.name
		c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: data, unsigned: true, trailer: "x-amz-checksum-crc32", decoded: -1, flip: -1,
			chunk: 1 << 20, te: 256 << 10}
		resp, body := l.do(t, c.wire(t, l.host))
		if resp.StatusCode != 200 || !strings.HasSuffix(strings.Trim(resp.Header.Get("ETag"), `"`), "-2") {
			t.Fatalf("%s: status %d, ETag %s: %s", l.name, resp.StatusCode, resp.Header.Get("ETag"), body)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, data) {
			t.Fatalf("%s: stored %d bytes; want %d", l.name, len(got), len(data))
		}
		bad := c
		bad.path, bad.checksum = "/"+p.Bucket+"/"+key+"-bad", "AAAAAA=="
		resp, body = l.do(t, bad.wire(t, l.host))
		wantS3Error(t, resp, body, 400, "BadDigest")
		if upstream.ObjectExists(t, p.UpBucket, key+"-bad") {
			t.Fatalf("%s: an object exists after a bad checksum", l.name)
		}
	}
	if ups := upstream.ListMultipartUploads(t, p.UpBucket); len(ups) != 0 {
		t.Fatalf("%d multipart uploads left", len(ups))
	}
}

// TestTEChunkedClientGone: a client that stops in the middle of a chunked body (half-close) gets
// 400 IncompleteBody and the upstream request is reset: no object.
func TestTEChunkedClientGone(t *testing.T) {
	p, ls := teListeners(t)
	for _, l := range ls {
		for _, unsigned := range []bool{true, false} {
			key := "te-gone/" + l.name
			if unsigned {
				key += "-unsigned"
			}
			c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: randomBytes(600<<10, 24), unsigned: unsigned, decoded: -1, flip: -1, te: 32 << 10}
			wire := c.wire(t, l.host)
			conn := l.dial(t)
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := conn.Write(wire[:len(wire)-100<<10]); err != nil {
				t.Fatal(err)
			}
			switch cw := conn.(type) {
			case *net.TCPConn:
				_ = cw.CloseWrite()
			case *tls.Conn:
				_ = cw.CloseWrite()
			}
			resp, body := readResponse(t, bufio.NewReader(conn))
			conn.Close()
			wantS3Error(t, resp, body, 400, "IncompleteBody")
			if upstream.ObjectExists(t, p.UpBucket, key) {
				t.Fatalf("%s: an object exists after the client stopped mid-body", key)
			}
		}
	}
}

// TestTEChunkedPipelined: the de-chunker reads nothing past the chunked body's final CRLF, so a
// request pipelined right behind it (in the same write as the body's last bytes) is served on the
// same connection.
func TestTEChunkedPipelined(t *testing.T) {
	p, ls := teListeners(t)
	for _, l := range ls {
		key := "te-pipe/" + l.name
		c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: randomBytes(200<<10, 25), unsigned: true, trailer: "x-amz-checksum-crc32",
			decoded: -1, flip: -1, te: 8 << 10}
		wire := c.wire(t, l.host)
		next := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key + "-next", Body: []byte("next")}
		conn := l.dial(t)
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(conn)
		if _, err := conn.Write(wire[:len(wire)-5]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the proxy is inside the body by now
		if _, err := conn.Write(append(wire[len(wire)-5:len(wire):len(wire)], next.bytes(t, l.host)...)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			resp, body := readResponse(t, br)
			if resp.StatusCode != 200 || resp.Close {
				t.Fatalf("%s answer %d: %d close=%v %s", l.name, i, resp.StatusCode, resp.Close, body)
			}
		}
		conn.Close()
		if got, _ := upstream.GetObject(t, p.UpBucket, key+"-next"); string(got) != "next" {
			t.Fatalf("%s: pipelined object %q", l.name, got)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, c.data) {
			t.Fatalf("%s: chunked object %d bytes", l.name, len(got))
		}
	}
}

// TestTEChunkedExpectKeepAlive: a chunked PUT with Expect: 100-continue gets 100 before it sends its
// body, then its answer, and the connection serves the next chunked request.
func TestTEChunkedExpectKeepAlive(t *testing.T) {
	p, ls := teListeners(t)
	data := randomBytes(300<<10, 26)
	for _, l := range ls {
		conn := l.dial(t)
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(conn)
		for i, key := range []string{"te-ka/" + l.name + "/1", "te-ka/" + l.name + "/2"} {
			c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: data, unsigned: true, trailer: "x-amz-checksum-crc32", decoded: -1, flip: -1, te: 64 << 10}
			wire := c.wire(t, l.host)
			headEnd := bytes.Index(wire, []byte("\r\n\r\n")) + 4
			head := append([]byte{}, wire[:headEnd-2]...)
			head = append(head, "Expect: 100-continue\r\n\r\n"...)
			if _, err := conn.Write(head); err != nil {
				t.Fatal(err)
			}
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
				t.Fatalf("%s request %d: first line %q, %v; want 100 Continue", l.name, i, line, err)
			}
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(wire[headEnd:]); err != nil {
				t.Fatal(err)
			}
			resp, body := readResponse(t, br)
			if resp.StatusCode != 200 || resp.Close {
				t.Fatalf("%s request %d: %d close=%v %s", l.name, i, resp.StatusCode, resp.Close, body)
			}
			if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, data) {
				t.Fatalf("%s: stored %d bytes", key, len(got))
			}
		}
		conn.Close()
	}
}

// TestTEChunkedClientReset: a client that vanishes (RST) in the middle of a chunked body leaves no
// object: the upstream request is reset, on both listeners.
func TestTEChunkedClientReset(t *testing.T) {
	p, ls := teListeners(t)
	eng := lastEngine
	for _, l := range ls {
		key := "te-rst/" + l.name
		c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: randomBytes(2<<20, 27), unsigned: true, trailer: "x-amz-checksum-crc32",
			decoded: -1, flip: -1, te: 64 << 10}
		wire := c.wire(t, l.host)
		conn := l.dial(t)
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write(wire[:len(wire)-1<<20]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the upload in flight", 5*time.Second, func() bool { return eng.ActiveUploads() == 1 })
		tcp, ok := conn.(*net.TCPConn)
		if tc, isTLS := conn.(*tls.Conn); isTLS {
			tcp, ok = tc.NetConn().(*net.TCPConn)
		}
		if !ok {
			t.Fatalf("%s: no TCP connection under %T", l.name, conn)
		}
		_ = tcp.SetLinger(0)
		conn.Close()
		waitFor(t, "the upload to end", 5*time.Second, func() bool { return eng.ActiveUploads() == 0 })
		waitNoObject(t, p.UpBucket, key)
	}
}

// TestTEChunkedStall: a chunked body that stops moving is answered 400 RequestTimeout and leaves no
// object.
func TestTEChunkedStall(t *testing.T) {
	p, ls := teListeners(t, func(o *engine.Options) { o.BodyStallTimeout = 700 * time.Millisecond })
	for _, l := range ls {
		key := "te-stall/" + l.name
		c := chunkedPut{path: "/" + p.Bucket + "/" + key, data: randomBytes(300<<10, 28), unsigned: true, trailer: "x-amz-checksum-crc32",
			decoded: -1, flip: -1, te: 16 << 10}
		wire := c.wire(t, l.host)
		conn := l.dial(t)
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write(wire[:len(wire)-3]); err != nil { // all but the final "\r\n" and a byte
			t.Fatal(err)
		}
		resp, body := readResponse(t, bufio.NewReader(conn))
		conn.Close()
		wantS3Error(t, resp, body, 400, "RequestTimeout")
		if upstream.ObjectExists(t, p.UpBucket, key) {
			t.Fatalf("%s: an object exists after a stalled body", l.name)
		}
	}
}
