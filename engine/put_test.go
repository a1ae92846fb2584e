package engine_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// modes runs f against a proxy using splice and one forced onto the copy path.
func modes(t *testing.T, f func(t *testing.T, p *proxy)) {
	t.Run("splice", func(t *testing.T) { f(t, startProxy(t)) })
	t.Run("copy", func(t *testing.T) { f(t, startProxy(t, withCopy())) })
}

func TestPutObjectSDKSizesAndHeaders(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		cl := p.sdkClient(t)
		expires := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		for i, size := range []int{0, 1, 4096, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1 << 20, 5<<20 + 3, 33 << 20} {
			key := fmt.Sprintf("sizes/obj-%d", size)
			body := s3test.RandomBytes(size, int64(i))
			_, err := cl.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(p.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
				ContentType:        aws.String("application/x-test"),
				CacheControl:       aws.String("max-age=60"),
				ContentDisposition: aws.String(`attachment; filename="a b.bin"`),
				ContentLanguage:    aws.String("de-CH"),
				Expires:            aws.Time(expires),
				Metadata:           map[string]string{"color": "blue", "size": fmt.Sprint(size)},
				Tagging:            aws.String("team=edge&tier=hot"),
				StorageClass:       types.StorageClassStandard,
			})
			if err != nil {
				t.Fatalf("PutObject %d bytes: %v", size, err)
			}
			got, head := upstream.GetObject(t, p.UpBucket, key)
			if !bytes.Equal(got, body) {
				t.Fatalf("size %d: upstream body differs (got %d bytes)", size, len(got))
			}
			if v := aws.ToString(head.ContentType); v != "application/x-test" {
				t.Errorf("Content-Type = %q", v)
			}
			if v := aws.ToString(head.CacheControl); v != "max-age=60" {
				t.Errorf("Cache-Control = %q", v)
			}
			if v := aws.ToString(head.ContentDisposition); v != `attachment; filename="a b.bin"` {
				t.Errorf("Content-Disposition = %q", v)
			}
			if v := aws.ToString(head.ContentLanguage); v != "de-CH" {
				t.Errorf("Content-Language = %q", v)
			}
			if got, err := time.Parse(http.TimeFormat, aws.ToString(head.ExpiresString)); err != nil || !got.Equal(expires) {
				t.Errorf("Expires = %q; want %v", aws.ToString(head.ExpiresString), expires)
			}
			if head.Metadata["color"] != "blue" || head.Metadata["size"] != fmt.Sprint(size) {
				t.Errorf("metadata = %v", head.Metadata)
			}
			if tags := upstream.GetObjectTagging(t, p.UpBucket, key); tags["team"] != "edge" || tags["tier"] != "hot" {
				t.Errorf("tags = %v", tags)
			}
			if head.StorageClass != "" && head.StorageClass != types.StorageClassStandard {
				t.Errorf("storage class = %q", head.StorageClass)
			}
		}
	})
}

func TestPutObjectKeys(t *testing.T) {
	p := startProxy(t)
	cl := p.sdkClient(t)
	keys := []string{
		"with space/and more spaces",
		"plus+sign+key",
		"percent%20literal%",
		"unicode/日本語/ключ/émoji-🙂",
		"double//slash",
		"special !'()*,;=@$&:~-_.",
		longKey("k"), // 1024 bytes (segments stay under the posix backend's 255-byte file names)
		longKey("é"), // 1024 bytes of UTF-8
	}
	for i, key := range keys {
		body := s3test.RandomBytes(100+i, int64(i))
		if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(p.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		}); err != nil {
			t.Errorf("PutObject %q: %v", key, err)
			continue
		}
		got, _ := upstream.GetObject(t, p.UpBucket, key)
		if !bytes.Equal(got, body) {
			t.Errorf("key %q: body differs", key)
		}
	}
	// 1025 bytes is one too many.
	_, err := cl.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(p.Bucket), Key: aws.String(strings.Repeat("k", 1025)), Body: bytes.NewReader(nil),
	})
	if err == nil || !strings.Contains(err.Error(), "KeyTooLongError") {
		t.Errorf("1025-byte key: err = %v; want KeyTooLongError", err)
	}
}

func TestPutObjectAWSCLI(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		for _, size := range []int{0, 3000, 7 << 20} {
			data := s3test.RandomBytes(size, int64(size))
			file := s3test.TempFile(t, data)
			key := fmt.Sprintf("cli/cp-%d", size)
			if out, errOut, err := s3test.RunAWS(t, p.clientEnv(), "s3", "cp", file, "s3://"+p.Bucket+"/"+key,
				"--content-type", "text/x-cli", "--metadata", "origin=cli"); err != nil {
				t.Fatalf("aws s3 cp %d: %v\n%s\n%s", size, err, out, errOut)
			}
			got, head := upstream.GetObject(t, p.UpBucket, key)
			if !bytes.Equal(got, data) {
				t.Fatalf("aws s3 cp %d: body differs", size)
			}
			if aws.ToString(head.ContentType) != "text/x-cli" || head.Metadata["origin"] != "cli" {
				t.Errorf("headers: %q %v", aws.ToString(head.ContentType), head.Metadata)
			}
		}
		data := s3test.RandomBytes(200000, 9)
		file := s3test.TempFile(t, data)
		sum := md5.Sum(data)
		if out, errOut, err := s3test.RunAWS(t, p.clientEnv(), "s3api", "put-object", "--bucket", p.Bucket,
			"--key", "cli/put object+1", "--body", file, "--content-md5", base64.StdEncoding.EncodeToString(sum[:]),
			"--tagging", "a=1"); err != nil {
			t.Fatalf("aws s3api put-object: %v\n%s\n%s", err, out, errOut)
		} else if !strings.Contains(out, "ETag") {
			t.Errorf("put-object output has no ETag: %s", out)
		}
		got, _ := upstream.GetObject(t, p.UpBucket, "cli/put object+1")
		if !bytes.Equal(got, data) {
			t.Fatal("put-object: body differs")
		}
	})
}

const boto3Put = `
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["MIZUCHI_ENDPOINT"])
data = open(sys.argv[3], "rb").read()
r = s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=data, ContentType="image/x-boto",
                  Metadata={"via": "boto3"}, ContentDisposition="inline")
print(r["ETag"])
`

func TestPutObjectBoto3(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		for _, size := range []int{10, 300000} {
			data := s3test.RandomBytes(size, 42)
			file := s3test.TempFile(t, data)
			key := fmt.Sprintf("boto3/ключ %d", size)
			out, errOut, err := s3test.RunPython(t, p.clientEnv(), boto3Put, p.Bucket, key, file)
			if err != nil {
				t.Fatalf("boto3: %v\n%s\n%s", err, out, errOut)
			}
			got, head := upstream.GetObject(t, p.UpBucket, key)
			if !bytes.Equal(got, data) {
				t.Fatal("boto3: body differs")
			}
			if aws.ToString(head.ContentType) != "image/x-boto" || head.Metadata["via"] != "boto3" ||
				aws.ToString(head.ContentDisposition) != "inline" {
				t.Errorf("headers: %+v", head)
			}
			if strings.TrimSpace(out) != aws.ToString(head.ETag) {
				t.Errorf("boto3 ETag %q; upstream %q", strings.TrimSpace(out), aws.ToString(head.ETag))
			}
		}
	})
}

func TestPutObjectCurl(t *testing.T) {
	p := startProxy(t)
	data := s3test.RandomBytes(150000, 5)
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCmd(t, "curl", "-sS", "-w", "%{http_code}", "-o", "/dev/null", "-T", file,
		"-H", "Content-Type: text/x-curl", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
		"--aws-sigv4", "aws:amz:us-east-1:s3", "--user", clientAK+":"+clientSK,
		p.Endpoint+"/"+p.Bucket+"/curl/file%20one")
	if err != nil || strings.TrimSpace(out) != "200" {
		t.Fatalf("curl: %v %q", err, out)
	}
	got, head := upstream.GetObject(t, p.UpBucket, "curl/file one")
	if !bytes.Equal(got, data) || aws.ToString(head.ContentType) != "text/x-curl" {
		t.Fatalf("curl upload differs (%d bytes, %q)", len(got), aws.ToString(head.ContentType))
	}
	_ = http.StatusOK
}

// longKey is a 1024-byte key of s repeated, cut into 200-byte path segments.
func longKey(s string) string {
	var b strings.Builder
	for b.Len() < 1024 {
		if b.Len()%201 == 200 {
			b.WriteByte('/')
			continue
		}
		if b.Len()+len(s) > 1024 {
			b.WriteByte('x')
			continue
		}
		b.WriteString(s)
	}
	return b.String()
}
