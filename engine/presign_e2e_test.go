package engine_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// Presigned URLs made by real presigners (boto3's generate_presigned_url, aws-sdk-go-v2's
// PresignClient), used with python requests, curl and net/http against the proxy in front of
// versitygw.

// boto3PresignedFlow presigns every operation with boto3 and runs them with requests: a PutObject
// with signed metadata and Content-Type, a multipart upload (Create, two UploadParts, ListParts,
// Complete) and a second upload that is aborted. argv: bucket, key, file, multipart key. It prints
// a JSON summary.
const boto3PresignedFlow = `
import os, sys, json, re, boto3, requests
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["MIZUCHI_ENDPOINT"], config=Config(signature_version="s3v4"))
bucket, key, path, mpkey = sys.argv[1:5]
data = open(path, "rb").read()
out = {}
def url(op, **p):
    return s3.generate_presigned_url(op, Params=dict(Bucket=bucket, Key=p.pop("Key", mpkey), **p), ExpiresIn=300)

u = url("put_object", Key=key, Metadata={"via": "boto3-presigned"}, ContentType="text/x-presigned")
r = requests.put(u, data=data, headers={"Content-Type": "text/x-presigned", "x-amz-meta-via": "boto3-presigned"})
out["put"] = [r.status_code, r.headers.get("ETag")]

r = requests.post(url("create_multipart_upload"))
upload_id = re.search(r"<UploadId>([^<]+)</UploadId>", r.text).group(1)
out["create"] = r.status_code
parts = []
for n, chunk in ((1, data[:5 << 20]), (2, data[5 << 20:])):
    r = requests.put(url("upload_part", UploadId=upload_id, PartNumber=n), data=chunk)
    parts.append((n, r.headers.get("ETag")))
    out["part%d" % n] = r.status_code
r = requests.get(url("list_parts", UploadId=upload_id))
out["list"] = [r.status_code, len(re.findall(r"<Part>", r.text))]
doc = "<CompleteMultipartUpload>" + "".join(
    "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % p for p in parts) + "</CompleteMultipartUpload>"
r = requests.post(url("complete_multipart_upload", UploadId=upload_id), data=doc)
out["complete"] = [r.status_code, "<ETag>" in r.text]

r = requests.post(url("create_multipart_upload", Key=mpkey + ".aborted"))
abort_id = re.search(r"<UploadId>([^<]+)</UploadId>", r.text).group(1)
r = requests.delete(url("abort_multipart_upload", Key=mpkey + ".aborted", UploadId=abort_id))
out["abort"] = r.status_code
print(json.dumps(out))
`

func TestPresignedBoto3Requests(t *testing.T) {
	p := startProxy(t)
	data := s3test.RandomBytes(5<<20+12345, 9)
	file := s3test.TempFile(t, data)
	key, mpKey := "presigned/boto3 ключ+1", "presigned/boto3-multipart"
	stdout, stderr, err := s3test.RunPython(t, p.clientEnv(), boto3PresignedFlow, p.Bucket, key, file, mpKey)
	if err != nil {
		t.Fatalf("python: %v\n%s\n%s", err, stdout, stderr)
	}
	var got struct {
		Put      []any `json:"put"`
		Create   int   `json:"create"`
		Part1    int   `json:"part1"`
		Part2    int   `json:"part2"`
		List     []any `json:"list"`
		Complete []any `json:"complete"`
		Abort    int   `json:"abort"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("summary %q: %v", stdout, err)
	}
	if got.Put[0] != 200.0 || got.Create != 200 || got.Part1 != 200 || got.Part2 != 200 ||
		got.List[0] != 200.0 || got.List[1] != 2.0 || got.Complete[0] != 200.0 || got.Complete[1] != true || got.Abort != 204 {
		t.Fatalf("statuses: %s", stdout)
	}
	body, head := upstream.GetObject(t, p.UpBucket, key)
	if !bytes.Equal(body, data) {
		t.Errorf("presigned PutObject: body differs (%d bytes, want %d)", len(body), len(data))
	}
	if aws.ToString(head.ContentType) != "text/x-presigned" || head.Metadata["via"] != "boto3-presigned" {
		t.Errorf("presigned PutObject: Content-Type %q, metadata %v", aws.ToString(head.ContentType), head.Metadata)
	}
	if body, _ := upstream.GetObject(t, p.UpBucket, mpKey); !bytes.Equal(body, data) {
		t.Errorf("presigned multipart: body differs (%d bytes)", len(body))
	}
	for _, u := range upstream.ListMultipartUploads(t, p.UpBucket) {
		t.Errorf("upload left behind: %s %s", aws.ToString(u.Key), aws.ToString(u.UploadId))
	}
}

// curlPut sends file with curl -T to a presigned URL with the signed headers (Host left to curl)
// and returns the status and body.
func curlPut(t *testing.T, u string, hdr http.Header, file string) (int, string) {
	t.Helper()
	args := []string{"-sS", "-T", file, "-o", "-", "-w", "\n%{http_code}"}
	for k, vs := range hdr {
		if strings.EqualFold(k, "host") {
			continue
		}
		for _, v := range vs {
			args = append(args, "-H", k+": "+v)
		}
	}
	out, err := exec.Command("curl", append(args, u)...).Output()
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	code := 0
	for _, c := range s[i+1:] {
		code = code*10 + int(c-'0')
	}
	return code, s[:i]
}

func TestPresignedGoSDKCurl(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		ctx := context.Background()
		client := p.sdkClient(t)
		pc := s3.NewPresignClient(client)

		// PutObject with signed metadata, sent with curl.
		data := s3test.RandomBytes(300000, 3)
		file := s3test.TempFile(t, data)
		key := "presigned/go put"
		req, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
			Metadata: map[string]string{"via": "go-presigned"}}, s3.WithPresignExpires(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if code, body := curlPut(t, req.URL, req.SignedHeader, file); code != 200 {
			t.Fatalf("curl PUT: %d %s", code, body)
		}
		got, head := upstream.GetObject(t, p.UpBucket, key)
		if !bytes.Equal(got, data) || head.Metadata["via"] != "go-presigned" {
			t.Fatalf("PutObject: %d bytes, metadata %v", len(got), head.Metadata)
		}

		// UploadPart URLs for an upload created with header auth, sent with curl and net/http.
		mpKey := "presigned/go multipart"
		cr, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(mpKey)})
		if err != nil {
			t.Fatal(err)
		}
		big := s3test.RandomBytes(5<<20+1000, 4)
		chunks := [][]byte{big[:5<<20], big[5<<20:]}
		var parts []string
		for i, chunk := range chunks {
			pr, err := pc.PresignUploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(p.Bucket), Key: aws.String(mpKey),
				UploadId: cr.UploadId, PartNumber: aws.Int32(int32(i + 1))})
			if err != nil {
				t.Fatal(err)
			}
			var etag string
			if i == 0 {
				code, body := curlPut(t, pr.URL, pr.SignedHeader, s3test.TempFile(t, chunk))
				if code != 200 {
					t.Fatalf("curl UploadPart: %d %s", code, body)
				}
				// curl printed no headers: ask ListParts below for the ETag.
			} else {
				hr, _ := http.NewRequest(pr.Method, pr.URL, bytes.NewReader(chunk))
				resp, err := http.DefaultClient.Do(hr)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("net/http UploadPart: %d %s", resp.StatusCode, b)
				}
				etag = resp.Header.Get("ETag")
			}
			parts = append(parts, etag)
		}
		lp, err := client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(p.Bucket), Key: aws.String(mpKey), UploadId: cr.UploadId})
		if err != nil || len(lp.Parts) != 2 {
			t.Fatalf("ListParts: %v %d", err, len(lp.Parts))
		}
		var done []types.CompletedPart
		for i, pt := range lp.Parts {
			if parts[i] != "" && parts[i] != aws.ToString(pt.ETag) {
				t.Errorf("part %d ETag %s; ListParts says %s", i+1, parts[i], aws.ToString(pt.ETag))
			}
			done = append(done, types.CompletedPart{PartNumber: pt.PartNumber, ETag: pt.ETag})
		}
		if _, err := client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(mpKey),
			UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, mpKey); !bytes.Equal(got, big) {
			t.Fatalf("multipart: %d bytes, differ", len(got))
		}
	})
}

// TestPresignedChecksumHeader: a checksum presigned as a signed header (aws-sdk-go-v2's way) goes
// upstream and is verified there: the right CRC32 stores the object, a wrong one is BadDigest.
func TestPresignedChecksumHeader(t *testing.T) {
	p := startProxy(t)
	pc := s3.NewPresignClient(p.sdkClient(t))
	data := []byte("checksummed by the upstream")
	sum := crc32.ChecksumIEEE(data)
	good := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	for _, tc := range []struct {
		key, crc string
		status   int
	}{{"presigned/crc-good", good, 200}, {"presigned/crc-bad", "AAAAAA==", 400}} {
		req, err := pc.PresignPutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(tc.key),
			ChecksumCRC32: aws.String(tc.crc)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ToLower(req.URL), "x-amz-checksum-crc32") {
			t.Fatalf("the SDK did not sign the checksum header: %s", req.URL)
		}
		code, body := curlPut(t, req.URL, req.SignedHeader, s3test.TempFile(t, data))
		if code != tc.status {
			t.Fatalf("%s: %d %s; want %d", tc.key, code, body, tc.status)
		}
		if tc.status == 400 && !strings.Contains(body, "BadDigest") {
			t.Errorf("%s: %s; want BadDigest", tc.key, body)
		}
		if exists := upstream.ObjectExists(t, p.UpBucket, tc.key); exists != (tc.status == 200) {
			t.Errorf("%s: object exists = %v", tc.key, exists)
		}
	}
}

// presignAt presigns a request to the proxy with the SDK's v4 signer at a chosen time (the
// PresignClient always signs now).
func presignAt(t *testing.T, p *proxy, method, path, query string, hdr http.Header, when time.Time, expires string) string {
	t.Helper()
	u, err := url.Parse(p.Endpoint + path)
	if err != nil {
		t.Fatal(err)
	}
	if query != "" {
		query += "&"
	}
	u.RawQuery = query + "X-Amz-Expires=" + expires
	hr, _ := http.NewRequest(method, u.String(), nil)
	for k, v := range hdr {
		hr.Header[k] = v
	}
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	signed, _, err := s.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSK},
		hr, "UNSIGNED-PAYLOAD", "s3", "us-east-1", when)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestPresignedRefusalsNeverReachUpstream: refused presigned requests get S3's answers and open no
// upstream connection.
func TestPresignedRefusalsNeverReachUpstream(t *testing.T) {
	p, tw := startTripwireProxy(t)
	b := "/" + p.Bucket
	pc := s3.NewPresignClient(p.sdkClient(t))
	put, err := pc.PresignPutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := pc.PresignUploadPart(context.Background(), &s3.UploadPartInput{Bucket: aws.String(p.Bucket), Key: aws.String("k"),
		UploadId: aws.String("abc"), PartNumber: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(u string) string {
		i := strings.Index(u, "X-Amz-Signature=") + len("X-Amz-Signature=")
		return u[:i] + map[bool]string{true: "1", false: "0"}[u[i] == '0'] + u[i+1:]
	}
	now := time.Now()
	cases := []struct {
		name, method, url string
		hdr               http.Header
		status            int
		code, message     string
	}{
		{"expired", "PUT", presignAt(t, p, "PUT", b+"/k", "", nil, now.Add(-2*time.Minute), "60"), nil, 403, "AccessDenied", "Request has expired"},
		{"not yet valid", "PUT", presignAt(t, p, "PUT", b+"/k", "", nil, now.Add(20*time.Minute), "60"), nil, 403, "AccessDenied", "Request is not valid yet"},
		{"expires too long", "PUT", presignAt(t, p, "PUT", b+"/k", "", nil, now, "604801"), nil, 400, "AuthorizationQueryParametersError", "604800"},
		{"tampered signature", "PUT", tamper(put.URL), nil, 403, "SignatureDoesNotMatch", ""},
		{"other key", "PUT", strings.Replace(put.URL, b+"/k?", b+"/other?", 1), nil, 403, "SignatureDoesNotMatch", ""},
		{"Abort URL as ListParts", "GET", presignAt(t, p, "DELETE", b+"/k", "uploadId=abc", nil, now, "60"), nil, 403, "SignatureDoesNotMatch", ""},
		{"UploadPart URL for another part", "PUT", strings.Replace(part.URL, "partNumber=1&", "partNumber=2&", 1), nil, 403, "SignatureDoesNotMatch", ""},
		{"unsigned x-amz-meta", "PUT", put.URL, http.Header{"X-Amz-Meta-Evil": {"1"}}, 403, "AccessDenied", "not signed"},
		{"checksum in the query", "PUT", presignAt(t, p, "PUT", b+"/k", "x-amz-checksum-crc32=AAAAAA%3D%3D", nil, now, "60"), nil, 400, "InvalidRequest", "checksum"},
		{"Authorization as well", "PUT", put.URL, http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=" + clientAK + "/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64)}}, 400, "InvalidArgument", "auth mechanism"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var payload io.Reader = strings.NewReader("x")
			if tc.method == "GET" {
				payload = nil
			}
			hr, _ := http.NewRequest(tc.method, tc.url, payload)
			for k, v := range tc.hdr {
				hr.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantS3Error(t, resp, body, tc.status, tc.code)
			if !strings.Contains(string(body), tc.message) {
				t.Errorf("message: %s; want %q in it", body, tc.message)
			}
		})
	}
	if n := tw.conns.Load(); n != 0 {
		t.Fatalf("refused presigned requests opened %d upstream connections; want 0", n)
	}
}

// TestPresignedAutoChunked: a presigned PutObject above the bucket's multipart threshold is cut into
// parts like any other, and its signed metadata and unsigned Content-Type reach the object while
// an unsigned header outside S3's list does not.
func TestPresignedAutoChunked(t *testing.T) {
	p := startProxy(t, withAutoChunk("", 6<<20, 5<<20, 2))
	pc := s3.NewPresignClient(p.sdkClient(t))
	key := "presigned/auto chunked"
	req, err := pc.PresignPutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
		Metadata: map[string]string{"via": "presigned-autochunk"}})
	if err != nil {
		t.Fatal(err)
	}
	data := s3test.RandomBytes(13<<20+7, 11)
	hdr := req.SignedHeader.Clone()
	hdr.Set("Content-Type", "application/x-auto")
	if code, body := curlPut(t, req.URL, hdr, s3test.TempFile(t, data)); code != 200 {
		t.Fatalf("curl PUT: %d %s", code, body)
	}
	got, head := upstream.GetObject(t, p.UpBucket, key)
	if !bytes.Equal(got, data) {
		t.Fatalf("body: %d bytes, differs", len(got))
	}
	if !strings.HasSuffix(strings.Trim(aws.ToString(head.ETag), `"`), "-3") {
		t.Errorf("ETag %s; want a 3-part multipart ETag", aws.ToString(head.ETag))
	}
	if head.Metadata["via"] != "presigned-autochunk" || aws.ToString(head.ContentType) != "application/x-auto" {
		t.Errorf("metadata %v, Content-Type %q", head.Metadata, aws.ToString(head.ContentType))
	}
	noUploadsLeft(t, p.UpBucket)
}
