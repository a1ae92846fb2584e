package engine_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mizuchi/uploadr/engine"
)

// minioClient is minio-go as users build it: over http it signs bodies in 64 KiB chunks
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
func (p *proxy) minioClient(t *testing.T) *minio.Client { return p.minioClientTrailing(t, false) }

// minioClientTrailing is minioClient with TrailingHeaders: with a Checksum option its bodies are
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER with the checksum in a signed trailer.
func (p *proxy) minioClientTrailing(t *testing.T, trailing bool) *minio.Client {
	t.Helper()
	c, err := minio.New(p.Addr, &minio.Options{
		Creds:           credentials.NewStaticV4(clientAK, clientSK, ""),
		Region:          "us-east-1",
		BucketLookup:    minio.BucketLookupPath,
		MaxRetries:      1,
		TrailingHeaders: trailing,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestMinioPutObjectSignedChunks uploads with minio-go's defaults through the proxy: signed
// aws-chunked single PUTs (small, larger than a chunk and than the in-loop body cap) and
// multipart uploads (known size above its part size; unknown size), for both body paths.
func TestMinioPutObjectSignedChunks(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []proxyOpt
	}{{"splice", nil}, {"copy", []proxyOpt{withCopy()}}} {
		t.Run(mode.name, func(t *testing.T) {
			p := startProxy(t, mode.opts...)
			mc := p.minioClient(t)
			for _, tc := range []struct {
				name string
				size int
				opts minio.PutObjectOptions
				arg  int64 // size passed to PutObject: -1 = unknown
			}{
				// minio-go v7.4.1 sends a 0-byte object with Transfer-Encoding: chunked (an
				// http.Request with a body and ContentLength 0): de-chunked (tecoding.go).
				{name: "empty", size: 0},
				{name: "small", size: 1000},
				{name: "two-chunks", size: 100 << 10},
				{name: "many-chunks", size: 3<<20 + 17},
				{name: "multipart-known", size: 17<<20 + 5, opts: minio.PutObjectOptions{PartSize: 16 << 20}},
				// Unknown size: minio-go's default part size for -1 would be 512 MiB of memory;
				// 5 MiB parts keep the test small and still go multipart.
				{name: "multipart-unknown", size: 11<<20 + 3, arg: -1, opts: minio.PutObjectOptions{PartSize: 5 << 20}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					data := randomBytes(tc.size, uint64(tc.size))
					size := int64(tc.size)
					if tc.arg != 0 {
						size = tc.arg
					}
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					key := "minio/" + tc.name
					info, err := mc.PutObject(ctx, p.Bucket, key, bytes.NewReader(data), size, tc.opts)
					if err != nil {
						t.Fatalf("PutObject: %v", err)
					}
					if info.Size != int64(tc.size) {
						t.Errorf("size = %d; want %d", info.Size, tc.size)
					}
					got, _ := upstream.GetObject(t, p.UpBucket, key)
					if !bytes.Equal(got, data) {
						t.Fatalf("stored %d bytes; want the %d sent", len(got), len(data))
					}
				})
			}
			if ups := upstream.ListMultipartUploads(t, p.UpBucket); len(ups) != 0 {
				t.Errorf("multipart uploads left: %d", len(ups))
			}
		})
	}
}

// TestMinioSignedTrailer: minio-go with TrailingHeaders and a checksum sends signed chunks with a
// signed trailer (its checksum line ends in "\n" before the CRLF); single PUT and multipart.
func TestMinioSignedTrailer(t *testing.T) {
	p := startProxy(t)
	mc := p.minioClientTrailing(t, true)
	for _, tc := range []struct {
		name string
		size int
		opts minio.PutObjectOptions
	}{
		{"crc32c", 100<<10 + 1, minio.PutObjectOptions{Checksum: minio.ChecksumCRC32C}},
		{"sha256", 3 << 20, minio.PutObjectOptions{Checksum: minio.ChecksumSHA256}},
		{"crc32-multipart", 11 << 20, minio.PutObjectOptions{Checksum: minio.ChecksumCRC32, PartSize: 5 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(tc.size, 99)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			key := "minio-trailer/" + tc.name
			if _, err := mc.PutObject(ctx, p.Bucket, key, bytes.NewReader(data), int64(len(data)), tc.opts); err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, data) {
				t.Fatalf("stored %d bytes; want %d", len(got), len(data))
			}
		})
	}
}

// TestMinioAuthorizerAndServe: signed chunks behind an Authorizer (the decision comes first, off the
// loop) on both transports — the gnet loop and Engine.Serve's goroutine per connection — at sizes
// below the in-loop cap, streamed and auto-chunked.
func TestMinioAuthorizerAndServe(t *testing.T) {
	deny := func(_ context.Context, in *engine.AuthzInput) *engine.Error {
		if strings.HasPrefix(in.Key, "denied/") {
			return &engine.Error{Code: "AccessDenied", Status: 403, Message: "policy says no"}
		}
		return nil
	}
	g := startProxy(t, withAutoChunk("", 6<<20, 5<<20, 2), func(o *engine.Options) {
		o.Buckets[0].Authorizer = engine.AuthorizerFunc(deny)
	})
	s := serveOn(t, lastEngine, g)
	for _, p := range []*proxy{g, s} {
		mc := p.minioClient(t)
		for _, size := range []int{3000, 1 << 20, 7<<20 + 1} {
			data := randomBytes(size, 3)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			key := "authz/" + p.Addr + "/" + strconv.Itoa(size)
			if _, err := mc.PutObject(ctx, p.Bucket, key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{PartSize: 64 << 20}); err != nil {
				t.Fatalf("%s: PutObject %d: %v", p.Addr, size, err)
			}
			cancel()
			if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, data) {
				t.Fatalf("%s: stored %d bytes; want %d", p.Addr, len(got), size)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := mc.PutObject(ctx, p.Bucket, "denied/x", bytes.NewReader([]byte("nope")), 4, minio.PutObjectOptions{})
		cancel()
		if minio.ToErrorResponse(err).Code != "AccessDenied" {
			t.Fatalf("%s: denied key: %v; want AccessDenied", p.Addr, err)
		}
	}
}
