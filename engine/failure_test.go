package engine_test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// waitNoObject asserts that the upstream holds no object under key, now and a moment later (the
// upstream may still be finishing a request the proxy abandoned).
func waitNoObject(t *testing.T, bucket, key string) {
	t.Helper()
	for i := 0; i < 5; i++ {
		if upstream.ObjectExists(t, bucket, key) {
			t.Fatalf("upstream stored %s/%s; want no object", bucket, key)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestClientDisconnectMidBodyLeavesNoObject(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		for _, tc := range []struct {
			name string
			rst  bool
		}{{"fin", false}, {"rst", true}} {
			t.Run(tc.name, func(t *testing.T) {
				key := "gone/" + tc.name
				r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD",
					Header: http.Header{"Content-Length": {fmt.Sprint(10 << 20)}}}
				c := dial(t, p.Addr)
				if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Write(s3test.RandomBytes(2<<20, 1)); err != nil {
					t.Fatal(err)
				}
				eng := lastEngine
				waitFor(t, "the upload in flight", 5*time.Second, func() bool { return eng.ActiveUploads() == 1 })
				if tc.rst {
					_ = c.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
				waitFor(t, "the upload to end", 5*time.Second, func() bool { return eng.ActiveUploads() == 0 })
				waitNoObject(t, p.UpBucket, key)
			})
		}
	})
}

// A body that stops moving is answered 400 RequestTimeout, whatever path it took: inline (parked
// in the loop), spliced or copied, and stalled on its very last byte; a client that half-closes
// after too few bytes gets 400 IncompleteBody. Nothing reaches the upstream as an object.
func TestBodyStallTimesOut(t *testing.T) {
	for _, copyMode := range []bool{false, true} {
		opts := []proxyOpt{func(o *engine.Options) { o.BodyStallTimeout = 700 * time.Millisecond }}
		if copyMode {
			opts = append(opts, withCopy())
		}
		p := startProxy(t, opts...)
		for _, tc := range []struct {
			name      string
			size, got int
			halfClose bool
			code      string
		}{
			{"inline", 1000, 500, false, "RequestTimeout"},
			{"inline-last-byte", 1000, 999, false, "RequestTimeout"},
			{"spliced", 1 << 20, 1 << 19, false, "RequestTimeout"},
			{"spliced-last-byte", 1 << 20, 1<<20 - 1, false, "RequestTimeout"},
			{"inline-half-close", 1000, 500, true, "IncompleteBody"},
			{"spliced-half-close", 1 << 20, 1 << 19, true, "IncompleteBody"},
			{"spliced-half-close-last-byte", 1 << 20, 1<<20 - 1, true, "IncompleteBody"},
		} {
			t.Run(fmt.Sprintf("copy=%v/%s", copyMode, tc.name), func(t *testing.T) {
				key := "stall/" + tc.name
				r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD",
					Header: http.Header{"Content-Length": {fmt.Sprint(tc.size)}}}
				c := dial(t, p.Addr)
				if _, err := c.Write(append(r.bytes(t, p.Addr), make([]byte, tc.got)...)); err != nil {
					t.Fatal(err)
				}
				if tc.halfClose {
					if err := c.(*net.TCPConn).CloseWrite(); err != nil {
						t.Fatal(err)
					}
				}
				start := time.Now()
				_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				body, _ := io.ReadAll(resp.Body)
				wantS3Error(t, resp, body, 400, tc.code)
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("answered after %v", d)
				}
				waitNoObject(t, p.UpBucket, key)
			})
		}
	}
}

func TestBodyLongerThanContentLengthNeverStored(t *testing.T) {
	p := startProxy(t)
	for _, size := range []int{10, 200 << 10} { // inline and spliced
		key := fmt.Sprintf("long/%d", size)
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD",
			Header: http.Header{"Content-Length": {fmt.Sprint(size)}}}
		wire := append(r.bytes(t, p.Addr), bytes.Repeat([]byte("z"), size+100)...)
		resp, body := p.do(t, wire)
		wantS3Error(t, resp, body, 400, "IncompleteBody")
		waitNoObject(t, p.UpBucket, key)
	}
}

// A fault-injecting upstream: reads the request head and n body bytes, then resets.
func startDyingUpstream(t *testing.T, n int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				_, _ = io.CopyN(io.Discard, c, int64(n))
				_ = c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}(c)
		}
	}()
	return "http://" + l.Addr().String()
}

func TestUpstreamDiesMidBody(t *testing.T) {
	for _, copyMode := range []bool{false, true} {
		t.Run(fmt.Sprint("copy=", copyMode), func(t *testing.T) {
			ep := startDyingUpstream(t, 1<<20)
			p := startProxy(t, func(o *engine.Options) {
				o.Buckets[0].Upstream.Endpoint = ep
				o.Transfer.ForceCopy = copyMode
			})
			size := 32 << 20
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/dies", Payload: "UNSIGNED-PAYLOAD",
				Header: http.Header{"Content-Length": {fmt.Sprint(size)}}}
			c := dial(t, p.Addr)
			go func() {
				_, _ = c.Write(r.bytes(t, p.Addr))
				_, _ = c.Write(make([]byte, size))
			}()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no response: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 502 && resp.StatusCode != 503 {
				t.Fatalf("status %d; want 502 or 503 (%s)", resp.StatusCode, body)
			}
			wantS3Error(t, resp, body, resp.StatusCode, map[int]string{502: "BadGateway", 503: "ServiceUnavailable"}[resp.StatusCode])
			if !resp.Close {
				t.Errorf("connection not closed after upstream failure")
			}
		})
	}
}

func TestUpstreamUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	p := startProxy(t, func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = "http://" + addr })
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/k", Body: []byte("hello")}
	resp, body := p.do(t, r.bytes(t, p.Addr))
	wantS3Error(t, resp, body, 503, "ServiceUnavailable")
}

// Errors the upstream finds in the body are relayed with their status and XML.
func TestUpstreamErrorsRelayed(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		for _, size := range []int{100, 300 << 10} {
			body := s3test.RandomBytes(size, 3)
			// Client signs a hex SHA-256 that is not the body's: the upstream must verify it.
			wrong := strings.Repeat("ab", 32)
			r := rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/sha-%d", p.Bucket, size), Body: body, Payload: wrong}
			resp, rb := p.do(t, r.bytes(t, p.Addr))
			wantUpstreamError(t, resp, rb, 400, "XAmzContentSHA256Mismatch")
			waitNoObject(t, p.UpBucket, fmt.Sprintf("sha-%d", size))

			sum := md5.Sum([]byte("other"))
			r = rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/md5-%d", p.Bucket, size), Body: body,
				Header: http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(sum[:])}}}
			resp, rb = p.do(t, r.bytes(t, p.Addr))
			wantUpstreamError(t, resp, rb, 400, "BadDigest")
			waitNoObject(t, p.UpBucket, fmt.Sprintf("md5-%d", size))

			crc := crc32.ChecksumIEEE([]byte("other"))
			r = rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/crc-%d", p.Bucket, size), Body: body,
				Header: http.Header{"X-Amz-Checksum-Crc32": {base64.StdEncoding.EncodeToString(be32(crc))}}}
			resp, rb = p.do(t, r.bytes(t, p.Addr))
			wantUpstreamError(t, resp, rb, 400, "BadDigest")
			waitNoObject(t, p.UpBucket, fmt.Sprintf("crc-%d", size))
		}
	})
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func wantUpstreamError(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d; want %d (%s)", resp.StatusCode, status, body)
	}
	if m := codeRE.FindSubmatch(body); m == nil || string(m[1]) != code {
		t.Errorf("code %q; want %q (%s)", m, code, body)
	}
}

// Conditional writes: If-None-Match: * on an existing key gets the upstream's 412, whether the
// upstream answers before or after the body.
func TestConditionalWriteRelayed(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		for _, size := range []int{10, 8 << 20} {
			key := fmt.Sprintf("cond-%d", size)
			first := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: []byte("first")}
			if resp, b := p.do(t, first.bytes(t, p.Addr)); resp.StatusCode != 200 {
				t.Fatalf("first PUT: %d %s", resp.StatusCode, b)
			}
			second := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: make([]byte, size),
				Header: http.Header{"If-None-Match": {"*"}}, Payload: "UNSIGNED-PAYLOAD"}
			resp, b := p.do(t, second.bytes(t, p.Addr))
			if resp.StatusCode != 412 {
				t.Fatalf("conditional PUT: %d %s; want 412", resp.StatusCode, b)
			}
			got, _ := upstream.GetObject(t, p.UpBucket, key)
			if string(got) != "first" {
				t.Fatalf("object overwritten despite If-None-Match")
			}
		}
	})
}

func TestKeepAliveAndPipelining(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		c := dial(t, p.Addr)
		br := bufio.NewReader(c)
		sizes := []int{5, 200 << 10, 7, 3 << 20, 0, 11}
		for i, size := range sizes {
			r := rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/ka/%d", p.Bucket, i), Body: s3test.RandomBytes(size, int64(i))}
			if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
				t.Fatal(err)
			}
			resp, body := readResponse(t, br)
			if resp.StatusCode != 200 || resp.Close {
				t.Fatalf("request %d (%d bytes) on one connection: %d close=%v %s", i, size, resp.StatusCode, resp.Close, body)
			}
		}
		// Three small requests in one write: all answered, in order.
		var wire []byte
		for i := 0; i < 3; i++ {
			r := rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/pipe/%d", p.Bucket, i), Body: []byte(fmt.Sprint("body", i))}
			wire = append(wire, r.bytes(t, p.Addr)...)
		}
		if _, err := c.Write(wire); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if resp, body := readResponse(t, br); resp.StatusCode != 200 {
				t.Fatalf("pipelined %d: %d %s", i, resp.StatusCode, body)
			}
		}
		for i, size := range sizes {
			got, _ := upstream.GetObject(t, p.UpBucket, fmt.Sprintf("ka/%d", i))
			if !bytes.Equal(got, s3test.RandomBytes(size, int64(i))) {
				t.Errorf("ka/%d differs", i)
			}
		}
		for i := 0; i < 3; i++ {
			got, _ := upstream.GetObject(t, p.UpBucket, fmt.Sprintf("pipe/%d", i))
			if string(got) != fmt.Sprint("body", i) {
				t.Errorf("pipe/%d = %q", i, got)
			}
		}
	})
}

// awsChunked frames body as STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer.
func awsChunked(body []byte, chunk int, crc uint32) []byte {
	var b bytes.Buffer
	for off := 0; off < len(body); off += chunk {
		end := min(off+chunk, len(body))
		fmt.Fprintf(&b, "%x\r\n", end-off)
		b.Write(body[off:end])
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", base64.StdEncoding.EncodeToString(be32(crc)))
	return b.Bytes()
}

func TestUnsignedTrailerPassThrough(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		for _, size := range []int{1000, 2 << 20} {
			body := s3test.RandomBytes(size, 8)
			for _, good := range []bool{true, false} {
				crc := crc32.ChecksumIEEE(body)
				if !good {
					crc++
				}
				key := fmt.Sprintf("trailer-%d-%v", size, good)
				r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: awsChunked(body, 64<<10, crc),
					Payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
					Header: http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {fmt.Sprint(size)},
						"X-Amz-Trailer": {"x-amz-checksum-crc32"}, "X-Amz-Sdk-Checksum-Algorithm": {"CRC32"}}}
				resp, rb := p.do(t, r.bytes(t, p.Addr))
				if good {
					if resp.StatusCode != 200 {
						t.Fatalf("%s: %d %s", key, resp.StatusCode, rb)
					}
					got, _ := upstream.GetObject(t, p.UpBucket, key)
					if !bytes.Equal(got, body) {
						t.Fatalf("%s: stored body differs (%d bytes)", key, len(got))
					}
				} else {
					wantUpstreamError(t, resp, rb, 400, "BadDigest")
					waitNoObject(t, p.UpBucket, key)
				}
			}
		}
	})
}
