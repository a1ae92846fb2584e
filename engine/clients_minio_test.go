package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// minio-go v7.4.1 as a client of the proxy. Over http:// its PutObject defaults to
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD (signed aws-chunked, 64 KiB chunks), which the proxy verifies
// chunk by chunk (chunked_exchange.go). DisableContentSha256 makes minio-go send UNSIGNED-PAYLOAD (or, with the
// client's TrailingHeaders, STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32C trailer) instead:
// those run here.

// wireLog records the requests an http.RoundTripper sends.
type wireLog struct {
	mu   sync.Mutex
	reqs []string
	next http.RoundTripper
}

func (w *wireLog) RoundTrip(r *http.Request) (*http.Response, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	fmt.Fprintf(&b, " content-length=%d", r.ContentLength)
	for _, h := range []string{"Content-Encoding", "X-Amz-Content-Sha256", "X-Amz-Decoded-Content-Length", "X-Amz-Trailer",
		"Content-Md5", "X-Amz-Checksum-Crc32c", "X-Amz-Checksum-Algorithm", "X-Amz-Checksum-Type"} {
		if v := r.Header.Get(h); v != "" {
			fmt.Fprintf(&b, " %s=%s", strings.ToLower(h), v)
		}
	}
	w.mu.Lock()
	w.reqs = append(w.reqs, b.String())
	w.mu.Unlock()
	return w.next.RoundTrip(r)
}

// sent returns the requests recorded so far, and forgets them.
func (w *wireLog) sent() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	r := w.reqs
	w.reqs = nil
	return r
}

// minioWireClient is a minio-go client of the proxy that logs what it sends, path-style, with the region set (so it does not ask
// for the bucket's location first) and retries off; trailing sets Options.TrailingHeaders.
func (p *proxy) minioWireClient(t *testing.T, trailing bool) (*minio.Client, *wireLog) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	w := &wireLog{next: tr}
	cl, err := minio.New(strings.TrimPrefix(p.Endpoint, "http://"), &minio.Options{
		Creds:           credentials.NewStaticV4(clientAK, clientSK, ""),
		Secure:          false,
		Region:          "us-east-1",
		BucketLookup:    minio.BucketLookupPath,
		Transport:       w,
		MaxRetries:      1,
		TrailingHeaders: trailing,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cl, w
}

// minioCase is one minio-go PutObject: the body's size, and the size minio-go is told (-1: unknown).
type minioCase struct {
	name       string
	size, told int64
	partSize   uint64 // PutObjectOptions.PartSize; 0 = minio-go's choice
}

// minioCases are the uploads every minio-go test makes: known sizes below and above minio-go's
// 16 MiB multipart cut-off, and unknown sizes (always multipart).
var minioCases = []minioCase{
	{"small", 3000, 3000, 0},
	{"1MiB", 1<<20 + 9, 1<<20 + 9, 0},
	{"20MiB", 20 << 20, 20 << 20, 0},                     // multipart: 16 MiB + 4 MiB
	{"unknown-20MiB", 20 << 20, -1, 0},                   // multipart: one part (minio-go buffers ~537 MiB parts)
	{"unknown-12MiB-5MiBparts", 12<<20 + 1, -1, 5 << 20}, // multipart: 3 parts
}

// putMinio uploads each case with opts and checks the object upstream; it returns the wire log of
// each case.
func putMinio(t *testing.T, p *proxy, cl *minio.Client, w *wireLog, opts minio.PutObjectOptions) {
	t.Helper()
	for i, c := range minioCases {
		t.Run(c.name, func(t *testing.T) {
			body := s3test.RandomBytes(int(c.size), int64(300+i))
			key := "minio/" + c.name
			o := opts
			o.ContentType = "application/x-minio"
			o.UserMetadata = map[string]string{"via": "minio-go"}
			o.PartSize = c.partSize
			var r io.Reader = bytes.NewReader(body)
			if c.told < 0 {
				r = io.MultiReader(r) // no Size/ReadAt: minio-go must stream it
			}
			info, err := cl.PutObject(context.Background(), p.Bucket, key, r, c.told, o)
			for _, s := range w.sent() {
				t.Logf("minio-go sent: %s", s)
			}
			if err != nil {
				er := minio.ToErrorResponse(err)
				t.Fatalf("PutObject %s: %d %s: %v", c.name, er.StatusCode, er.Code, err)
			}
			got, head := upstream.GetObject(t, p.UpBucket, key)
			if !bytes.Equal(got, body) {
				t.Fatalf("%s: stored object differs (%d of %d bytes)", key, len(got), len(body))
			}
			if info.Size != c.size {
				t.Errorf("UploadInfo.Size = %d; want %d", info.Size, c.size)
			}
			if want := strings.Trim(*head.ETag, `"`); info.ETag != want {
				t.Errorf("minio-go got ETag %s; upstream has %s", info.ETag, want)
			}
			if *head.ContentType != "application/x-minio" || head.Metadata["via"] != "minio-go" {
				t.Errorf("headers: Content-Type %q, metadata %v", *head.ContentType, head.Metadata)
			}
			noUploadsLeft(t, p.UpBucket)
		})
	}
}

// minio-go with DisableContentSha256: UNSIGNED-PAYLOAD on every PUT, so no signed chunks.
func TestMinioPutObjectUnsignedPayload(t *testing.T) {
	p := startProxy(t)
	cl, w := p.minioWireClient(t, false)
	putMinio(t, p, cl, w, minio.PutObjectOptions{DisableContentSha256: true})
}

// minio-go with TrailingHeaders and DisableContentSha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER with a
// CRC32C trailer on every PUT.
func TestMinioPutObjectUnsignedTrailer(t *testing.T) {
	p := startProxy(t)
	cl, w := p.minioWireClient(t, true)
	putMinio(t, p, cl, w, minio.PutObjectOptions{DisableContentSha256: true})
}

// minio-go's PutObject with every default: over http:// each PUT (single and parts) is
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD, 64 KiB signed chunks.
func TestMinioDefaults(t *testing.T) {
	p := startProxy(t)
	cl, w := p.minioWireClient(t, false)
	putMinio(t, p, cl, w, minio.PutObjectOptions{})
}

// The same with the client's TrailingHeaders: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER where
// minio-go adds a CRC32C trailer.
func TestMinioDefaultsTrailer(t *testing.T) {
	p := startProxy(t)
	cl, w := p.minioWireClient(t, true)
	putMinio(t, p, cl, w, minio.PutObjectOptions{})
}
