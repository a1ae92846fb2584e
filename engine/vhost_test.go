package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// vhostSuffix is the virtual host suffix of these tests; the clients' dialers resolve any name
// under it to the proxy (the machine's resolver is left alone).
const vhostSuffix = "s3.example.test"

func withVirtualHosts(suffixes ...string) proxyOpt {
	return func(o *engine.Options) { o.VirtualHostSuffixes = suffixes }
}

// vhostEndpoint is the proxy's endpoint under the virtual host suffix.
func (p *proxy) vhostEndpoint(t *testing.T) string {
	_, port, err := net.SplitHostPort(p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + vhostSuffix + ":" + port
}

// vhostSDKClient is an aws-sdk-go-v2 client built as users build it (LoadDefaultConfig: default
// checksums) without UsePathStyle, so it sends Host: <bucket>.s3.example.test:PORT; its dialer
// sends every *.s3.example.test connection to the proxy.
func (p *proxy) vhostSDKClient(t *testing.T) *s3.Client {
	t.Helper()
	c := p.sdkClient(t)
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			// Only <bucket>.s3.example.test: a path-style request (Host s3.example.test) would
			// pass these tests without exercising virtual-hosted routing.
			host, _, err := net.SplitHostPort(addr)
			if err != nil || !strings.HasSuffix(host, "."+vhostSuffix) {
				return nil, fmt.Errorf("test dialer: refusing %s (not virtual-hosted style)", addr)
			}
			return dialer.DialContext(ctx, network, p.Addr)
		}
	})
	endpoint := p.vhostEndpoint(t)
	return s3.New(c.Options(), func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = false
		o.HTTPClient = hc
	})
}

// aws-sdk-go-v2 without UsePathStyle: PutObject small (inline) and large (streamed), a key
// holding the bucket's name and slashes, a bucket name with dots, and a multipart upload with the
// transfermanager, all through virtual-hosted-style requests.
func TestVirtualHostSDK(t *testing.T) {
	p := startProxy(t, withVirtualHosts("other.example.test", vhostSuffix))
	c := p.vhostSDKClient(t)
	ctx := context.Background()
	for _, tc := range []struct {
		key  string
		size int
	}{
		{"small", 100},
		{"dir/" + p.Bucket + "/large", 3 << 20},
		{"a b+c=%/ü", 10},
	} {
		body := s3test.RandomBytes(tc.size, int64(tc.size))
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(tc.key),
			Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("PutObject %q: %v", tc.key, err)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, tc.key); !bytes.Equal(got, body) {
			t.Fatalf("%q: stored %d bytes; want %d", tc.key, len(got), len(body))
		}
	}
	body := s3test.RandomBytes(20<<20+5, 20)
	if _, err := transfermanager.New(c).UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket: aws.String(p.Bucket), Key: aws.String("tm/vhost"), Body: bytes.NewReader(body),
	}); err != nil {
		t.Fatalf("UploadObject: %v", err)
	}
	wantMultipartObject(t, p, "tm/vhost", body)
}

// A bucket name with dots is served in virtual-hosted style (a named entry and the "*" entry).
func TestVirtualHostDottedBucket(t *testing.T) {
	n := bucketSeq.Add(1)
	named, wild := fmt.Sprintf("my.named.%d", n), fmt.Sprintf("my.any.%d", n)
	upNamed := fmt.Sprintf("upstream-%d", n)
	upstream.CreateBucket(t, upNamed)
	upstream.CreateBucket(t, wild)
	p := startProxy(t, withVirtualHosts(vhostSuffix), func(o *engine.Options) {
		o.Buckets[0].Name = named
		o.Buckets[0].Upstream.Bucket = upNamed
		w := o.Buckets[0]
		w.Name, w.Upstream.Bucket = engine.WildcardBucket, ""
		o.Buckets = append(o.Buckets, w)
	})
	// aws-sdk-go-v2 falls back to path style for names with dots (TLS wildcard certificates do
	// not cover them): the request is made by hand, signed by the SDK's signer for that Host.
	_, port, _ := net.SplitHostPort(p.Addr)
	for bucket, up := range map[string]string{named: upNamed, wild: wild} {
		r := rawReq{Method: "PUT", Path: "/k", Query: "x-id=PutObject", Body: []byte("dotted")}
		if resp, body := p.do(t, r.bytes(t, bucket+"."+vhostSuffix+":"+port)); resp.StatusCode != 200 {
			t.Fatalf("PUT to %s: %d %s", bucket, resp.StatusCode, body)
		}
		if got, _ := upstream.GetObject(t, up, "k"); string(got) != "dotted" {
			t.Fatalf("%s: stored %q", up, got)
		}
	}
}

const boto3Virtual = `
import os, sys, socket, boto3
from botocore.config import Config
from boto3.s3.transfer import TransferConfig
real = socket.getaddrinfo
def resolve(host, *args, **kw):
    if not host.endswith(".s3.example.test"):  # path style would not exercise the routing
        raise OSError("test resolver: refusing " + host)
    print("resolved", host)
    return real("127.0.0.1", *args, **kw)
socket.getaddrinfo = resolve
s3 = boto3.client("s3", endpoint_url=sys.argv[1], config=Config(s3={"addressing_style": "virtual"}))
s3.put_object(Bucket=sys.argv[2], Key="boto3/small", Body=b"hello vhost")
cfg = TransferConfig(multipart_threshold=8*1024*1024, multipart_chunksize=8*1024*1024, max_concurrency=2)
s3.upload_file(sys.argv[3], sys.argv[2], "boto3/multipart", Config=cfg)
`

// boto3 with addressing_style virtual: put_object and a multipart upload_file.
func TestVirtualHostBoto3(t *testing.T) {
	p := startProxy(t, withVirtualHosts(vhostSuffix))
	body := s3test.RandomBytes(17<<20, 17)
	file := s3test.TempFile(t, body)
	out, errOut, err := s3test.RunPython(t, p.clientEnv(), boto3Virtual, p.vhostEndpoint(t), p.Bucket, file)
	if err != nil {
		t.Fatalf("boto3: %v\n%s\n%s", err, out, errOut)
	}
	if want := "resolved " + p.Bucket + "." + vhostSuffix; !strings.Contains(out, want) {
		t.Errorf("boto3 output %q lacks %q", out, want)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "boto3/small"); string(got) != "hello vhost" {
		t.Fatalf("boto3/small: stored %q", got)
	}
	wantMultipartObject(t, p, "boto3/multipart", body)
}

// Refusals in virtual-hosted style: an unknown bucket (403), a bucket-level request (405), a
// signature made for another Host (403); path style keeps working on the suffix host itself.
func TestVirtualHostRefusals(t *testing.T) {
	p := startProxy(t, withVirtualHosts(vhostSuffix))
	_, port, _ := net.SplitHostPort(p.Addr)
	host := func(bucket string) string { return bucket + "." + vhostSuffix + ":" + port }

	r := rawReq{Method: "PUT", Path: "/k", Body: []byte("x")}
	resp, body := p.do(t, r.bytes(t, host("unknown-bucket")))
	wantS3Error(t, resp, body, 403, "AccessDenied")

	r = rawReq{Method: "PUT", Path: "/"}
	resp, body = p.do(t, r.bytes(t, host(p.Bucket)))
	wantS3Error(t, resp, body, 405, "MethodNotAllowed")

	// Signed for the bucket's Host, sent with another bucket's: the signature covers Host.
	r = rawReq{Method: "PUT", Path: "/k", Body: []byte("x")}
	wire := r.bytes(t, host("elsewhere"))
	wire = bytes.Replace(wire, []byte("Host: "+host("elsewhere")), []byte("Host: "+host(p.Bucket)), 1)
	resp, body = p.do(t, wire)
	wantS3Error(t, resp, body, 403, "SignatureDoesNotMatch")

	// Path style on the suffix itself and on the bare address.
	for _, h := range []string{vhostSuffix + ":" + port, p.Addr} {
		r = rawReq{Method: "PUT", Path: "/" + p.Bucket + "/path/style", Body: []byte("ps")}
		if resp, body := p.do(t, r.bytes(t, h)); resp.StatusCode != 200 {
			t.Fatalf("path style via Host %s: %d %s", h, resp.StatusCode, body)
		}
	}
	// Virtual-hosted: the whole path is the key, even when it starts with the bucket's name.
	r = rawReq{Method: "PUT", Path: "/" + p.Bucket + "/nested", Body: []byte("vh")}
	if resp, body := p.do(t, r.bytes(t, host(p.Bucket))); resp.StatusCode != 200 {
		t.Fatalf("vhost: %d %s", resp.StatusCode, body)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, p.Bucket+"/nested"); string(got) != "vh" {
		t.Fatalf("stored %q", got)
	}
}

// The access log names the bucket and the whole key of a virtual-hosted request, and the real
// bucket of one the "*" entry served.
func TestVirtualHostAccessLog(t *testing.T) {
	var buf syncBuf
	n := bucketSeq.Add(1)
	wild := fmt.Sprintf("any-log-%d", n)
	upstream.CreateBucket(t, wild)
	p := startProxy(t, withVirtualHosts(vhostSuffix), withWildcard(map[string]string{clientAK: clientSK}),
		func(o *engine.Options) { o.AccessLog = slog.New(slog.NewJSONHandler(&buf, nil)) })
	_, port, _ := net.SplitHostPort(p.Addr)
	for i, tc := range []struct{ bucket, path string }{
		{p.Bucket, "/dir/a%20b"},
		{wild, "/x/y"},
		{p.Bucket, "/"}, // refused: 405
	} {
		r := rawReq{Method: "PUT", Path: tc.path, Body: []byte("l")}
		p.do(t, r.bytes(t, tc.bucket+"."+vhostSuffix+":"+port))
		waitFor(t, "access log line", 5*time.Second, func() bool { return strings.Count(buf.String(), "\n") > i })
	}
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		recs = append(recs, m)
	}
	if len(recs) != 3 {
		t.Fatalf("%d lines; want 3", len(recs))
	}
	for i, want := range []struct {
		bucket, key string
		status      float64
	}{{p.Bucket, "dir/a b", 200}, {wild, "x/y", 200}, {p.Bucket, "", 405}} {
		if recs[i]["bucket"] != want.bucket || recs[i]["key"] != want.key || recs[i]["status"] != want.status {
			t.Errorf("line %d: bucket %v key %q status %v; want %s %q %v", i, recs[i]["bucket"], recs[i]["key"], recs[i]["status"], want.bucket, want.key, want.status)
		}
	}
}
