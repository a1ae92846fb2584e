package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// front is a reverse proxy in front of the real S3 server that counts UploadPart requests in flight
// and can reject one part (fault injection); the S3 work itself is versitygw's.
type front struct {
	Endpoint   string
	parts      atomic.Int64
	inFlight   atomic.Int64
	maxFlight  atomic.Int64
	rejectPart string // partNumber to answer with a 400 BadDigest
}

func startFront(t *testing.T, rejectPart string) *front {
	t.Helper()
	target, _ := url.Parse(upstream.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	f := &front{rejectPart: rejectPart}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pn := r.URL.Query().Get("partNumber"); pn != "" && r.Method == "PUT" {
			f.parts.Add(1)
			n := f.inFlight.Add(1)
			defer f.inFlight.Add(-1)
			for {
				m := f.maxFlight.Load()
				if n <= m || f.maxFlight.CompareAndSwap(m, n) {
					break
				}
			}
			if pn == f.rejectPart {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(400)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>BadDigest</Code><Message>injected</Message></Error>`)
				return
			}
		}
		rp.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	f.Endpoint = "http://" + l.Addr().String()
	return f
}

func withAutoChunk(endpoint string, threshold, part int64, conc int) proxyOpt {
	return func(o *engine.Options) {
		if endpoint != "" {
			o.Buckets[0].Upstream.Endpoint = endpoint
		}
		o.Buckets[0].Upload = engine.UploadOptions{MultipartThreshold: threshold, PartSize: part, ConcurrentParts: conc}
	}
}

// putStream sends a signed PUT whose body comes from body (size bytes) and returns the answer.
func putStream(t *testing.T, p *proxy, key string, body []byte, hdr http.Header, payload string) (*http.Response, []byte) {
	t.Helper()
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Header: hdr, Payload: payload, Body: body}
	return p.do(t, r.bytes(t, p.Addr))
}

func noUploadsLeft(t *testing.T, bucket string) {
	t.Helper()
	if ups := upstream.ListMultipartUploads(t, bucket); len(ups) != 0 {
		t.Errorf("%d multipart uploads left over upstream", len(ups))
	}
}

// The scenario: a 120 MiB PutObject to a bucket with a 50 MiB threshold and 16 MiB parts.
func TestAutoChunk120MiB(t *testing.T) {
	for _, copyMode := range []bool{false, true} {
		t.Run(fmt.Sprint("copy=", copyMode), func(t *testing.T) {
			f := startFront(t, "")
			opts := []proxyOpt{withAutoChunk(f.Endpoint, 50<<20, 16<<20, 3)}
			if copyMode {
				opts = append(opts, withCopy())
			}
			p := startProxy(t, opts...)
			body := s3test.RandomBytes(120<<20, 120)
			resp, rb := putStream(t, p, "auto/120", body, http.Header{"Content-Type": {"video/x-big"}, "X-Amz-Meta-Kind": {"auto"}}, "UNSIGNED-PAYLOAD")
			if resp.StatusCode != 200 {
				t.Fatalf("PUT: %d %s", resp.StatusCode, rb)
			}
			etag := resp.Header.Get("ETag")
			if !strings.HasSuffix(strings.Trim(etag, `"`), "-8") {
				t.Errorf("ETag %q; want the upstream's 8-part multipart ETag", etag)
			}
			got, head := upstream.GetObject(t, p.UpBucket, "auto/120")
			if !bytes.Equal(got, body) {
				t.Fatalf("stored object differs (%d bytes)", len(got))
			}
			if aws.ToString(head.ETag) != etag {
				t.Errorf("client ETag %s; upstream %s", etag, aws.ToString(head.ETag))
			}
			if aws.ToString(head.ContentType) != "video/x-big" || head.Metadata["kind"] != "auto" {
				t.Errorf("headers lost: %q %v", aws.ToString(head.ContentType), head.Metadata)
			}
			if n := f.parts.Load(); n != 8 {
				t.Errorf("upstream saw %d UploadPart requests; want 8", n)
			}
			if m := f.maxFlight.Load(); m > 3 {
				t.Errorf("%d parts in flight at once; want at most concurrent_parts=3", m)
			}
			t.Logf("max parts in flight: %d", f.maxFlight.Load())
			noUploadsLeft(t, p.UpBucket)
		})
	}
}

// Whole-body digests survive the cut: the proxy verifies them before completing.
func TestAutoChunkDigests(t *testing.T) {
	p := startProxy(t, withAutoChunk("", 6<<20, 5<<20, 2))
	body := s3test.RandomBytes(13<<20+7, 13)
	md := md5.Sum(body)
	sh := sha256.Sum256(body)
	crc := crc32.ChecksumIEEE(body)
	good := map[string]http.Header{
		"md5":   {"Content-Md5": {base64.StdEncoding.EncodeToString(md[:])}},
		"crc32": {"X-Amz-Checksum-Crc32": {base64.StdEncoding.EncodeToString(be32(crc))}},
	}
	for name, h := range good {
		if resp, rb := putStream(t, p, "dig/"+name, body, h, "UNSIGNED-PAYLOAD"); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, rb)
		}
		got, _ := upstream.GetObject(t, p.UpBucket, "dig/"+name)
		if !bytes.Equal(got, body) {
			t.Fatalf("%s: stored body differs", name)
		}
	}
	// A hex x-amz-content-sha256 signed by the client.
	if resp, rb := putStream(t, p, "dig/sha256", body, nil, hex.EncodeToString(sh[:])); resp.StatusCode != 200 {
		t.Fatalf("sha256: %d %s", resp.StatusCode, rb)
	}
	bad := []struct {
		name, code, payload string
		h                   http.Header
	}{
		{"md5", "BadDigest", "UNSIGNED-PAYLOAD", http.Header{"Content-Md5": {base64.StdEncoding.EncodeToString(make([]byte, 16))}}},
		{"crc32", "BadDigest", "UNSIGNED-PAYLOAD", http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}},
		{"sha256", "XAmzContentSHA256Mismatch", strings.Repeat("0", 64), nil},
	}
	for _, tc := range bad {
		resp, rb := putStream(t, p, "bad/"+tc.name, body, tc.h, tc.payload)
		wantS3Error(t, resp, rb, 400, tc.code)
		waitNoObject(t, p.UpBucket, "bad/"+tc.name)
	}
	noUploadsLeft(t, p.UpBucket)
}

// The SDK with its default checksums (signed SHA-256 and CRC32 header) through auto-chunking.
func TestAutoChunkSDK(t *testing.T) {
	p := startProxy(t, withAutoChunk("", 8<<20, 5<<20, 4))
	body := s3test.RandomBytes(21<<20, 21)
	if _, err := p.sdkClient(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.Bucket),
		Key: aws.String("sdk/auto"), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	got, _ := upstream.GetObject(t, p.UpBucket, "sdk/auto")
	if !bytes.Equal(got, body) {
		t.Fatal("stored body differs")
	}
	noUploadsLeft(t, p.UpBucket)
}

func TestAutoChunkClientDisconnect(t *testing.T) {
	modes(t, func(t *testing.T, p0 *proxy) {
		p := startProxy(t, withAutoChunk("", 6<<20, 5<<20, 2))
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/gone", Payload: "UNSIGNED-PAYLOAD",
			Header: http.Header{"Content-Length": {fmt.Sprint(30 << 20)}}}
		c := dial(t, p.Addr)
		c.Write(r.bytes(t, p.Addr))
		c.Write(s3test.RandomBytes(12<<20, 4)) // two parts and a bit
		waitFor(t, "the upload to start upstream", 10*time.Second, func() bool {
			return len(upstream.ListMultipartUploads(t, p.UpBucket)) == 1
		})
		c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for len(upstream.ListMultipartUploads(t, p.UpBucket)) != 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		noUploadsLeft(t, p.UpBucket)
		waitNoObject(t, p.UpBucket, "gone")
	})
}

func TestAutoChunkPartRejected(t *testing.T) {
	f := startFront(t, "2")
	p := startProxy(t, withAutoChunk(f.Endpoint, 6<<20, 5<<20, 2))
	resp, rb := putStream(t, p, "rejected", s3test.RandomBytes(16<<20, 5), nil, "UNSIGNED-PAYLOAD")
	if resp.StatusCode != 400 || !bytes.Contains(rb, []byte("<Code>BadDigest</Code>")) {
		t.Fatalf("got %d %s; want the upstream's 400 BadDigest", resp.StatusCode, rb)
	}
	noUploadsLeft(t, p.UpBucket)
	waitNoObject(t, p.UpBucket, "rejected")
}

func TestPartSizeGrowsForHugeObjects(t *testing.T) {
	// 10,000 parts of 100 MiB hold 976 GiB: a 2 TiB object needs bigger parts. Checked through the
	// engine's exported sizing rule.
	if ps := engine.PartSizeFor(2<<40, 100<<20); ps*10000 < 2<<40 || ps%(1<<20) != 0 {
		t.Errorf("part size %d for 2 TiB", ps)
	}
	if ps := engine.PartSizeFor(120<<20, 16<<20); ps != 16<<20 {
		t.Errorf("part size %d; want 16 MiB", ps)
	}
	_ = bufio.NewReader
	_ = sync.Mutex{}
}
