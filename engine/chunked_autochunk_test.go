package engine_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestAutoChunkAWSChunked: aws-chunked PutObjects above the auto-chunk threshold — unsigned-trailer
// (what boto3 and the SDKs send over https) and signed (minio-go) — are cut into parts from their
// decoded bytes; the trailer is verified before Complete.
func TestAutoChunkAWSChunked(t *testing.T) {
	p := startProxy(t, withAutoChunk("", 6<<20, 5<<20, 2))
	data := randomBytes(12<<20+7, 21)
	for _, tc := range []struct {
		name string
		c    chunkedPut
	}{
		{"unsigned-trailer", chunkedPut{unsigned: true, trailer: "x-amz-checksum-crc32", chunk: 1 << 20}},
		{"unsigned-trailer-odd-chunks", chunkedPut{unsigned: true, trailer: "x-amz-checksum-sha256", chunk: 100000}},
		{"signed", chunkedPut{}},
		{"signed-odd-chunks", chunkedPut{chunk: 100000}}, // chunks straddle the copy buffer and the parts
		{"signed-trailer", chunkedPut{trailer: "x-amz-checksum-crc32c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "auto/" + tc.name
			c := tc.c
			c.path, c.data, c.decoded, c.flip = "/"+p.Bucket+"/"+key, data, -1, -1
			resp, body := p.do(t, c.wire(t, p.Addr))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if et := resp.Header.Get("ETag"); !strings.HasSuffix(et, `-3"`) {
				t.Errorf("ETag %s; want a 3-part multipart ETag", et)
			}
			got, head := upstream.GetObject(t, p.UpBucket, key)
			if !bytes.Equal(got, data) {
				t.Fatalf("stored %d bytes; want %d", len(got), len(data))
			}
			if ce := head.ContentEncoding; ce != nil && strings.Contains(*ce, "aws-chunked") {
				t.Errorf("stored Content-Encoding %q", *ce)
			}
		})
	}

	t.Run("minio-go", func(t *testing.T) {
		// A part size above the object's size: minio-go sends one signed-chunk PutObject, which the
		// proxy cuts into parts.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := p.minioClient(t).PutObject(ctx, p.Bucket, "auto/minio", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{PartSize: 64 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, "auto/minio"); !bytes.Equal(got, data) {
			t.Fatalf("stored %d bytes; want %d", len(got), len(data))
		}
	})

	for _, tc := range []struct {
		name   string
		c      chunkedPut
		status int
		code   string
	}{
		{"unsigned-bad-checksum", chunkedPut{unsigned: true, trailer: "x-amz-checksum-crc32", checksum: "AAAAAA==", chunk: 1 << 20}, 400, "BadDigest"},
		{"unsigned-short-chunk", chunkedPut{unsigned: true, trailer: "x-amz-checksum-crc32", decoded: 12<<20 + 8, chunk: 1 << 20}, 400, "IncompleteBody"},
		{"signed-tampered-part-2", chunkedPut{flip: 7 << 20}, 403, "SignatureDoesNotMatch"},
		{"signed-tampered-odd-chunks", chunkedPut{chunk: 100000, flip: 7 << 20}, 403, "SignatureDoesNotMatch"},
		{"signed-bad-final-signature", chunkedPut{badSig: 194}, 403, "SignatureDoesNotMatch"},
		{"signed-bad-checksum", chunkedPut{trailer: "x-amz-checksum-crc32", checksum: "AAAAAA=="}, 400, "BadDigest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "auto-refused/" + tc.name
			c := tc.c
			c.path, c.data = "/"+p.Bucket+"/"+key, data
			if c.decoded == 0 {
				c.decoded = -1
			}
			if !strings.HasPrefix(tc.name, "signed-tampered") {
				c.flip = -1
			}
			resp, body := p.do(t, c.wire(t, p.Addr))
			wantS3Error(t, resp, body, tc.status, tc.code)
			if upstream.ObjectExists(t, p.UpBucket, key) {
				t.Fatalf("an object exists after %s", tc.name)
			}
			if ups := upstream.ListMultipartUploads(t, p.UpBucket); len(ups) != 0 {
				t.Fatalf("%d multipart uploads left after %s", len(ups), tc.name)
			}
		})
	}
}
