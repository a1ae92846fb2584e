package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// serveOn runs e.Serve on a fresh loopback listener (the goroutine-per-connection transport) and
// returns a proxy handle pointing at it.
func serveOn(t *testing.T, e *engine.Engine, p *proxy) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Serve(l) }()
	t.Cleanup(func() {
		l.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after its listener closed")
		}
	})
	q := *p
	q.Addr = l.Addr().String()
	q.Endpoint = "http://" + q.Addr
	return &q
}

// The same pipeline serves connections from a plain net.Listener: inline, streamed and
// auto-chunked PUTs, multipart calls, refusals (nothing upstream), keep-alive with pipelining, and
// an Authorizer's decision.
func TestServeNetListener(t *testing.T) {
	var asked atomic.Int64
	deny := func(_ context.Context, in *engine.AuthzInput) *engine.Error {
		asked.Add(1)
		if strings.HasPrefix(in.Key, "denied/") {
			return &engine.Error{Code: "AccessDenied", Status: 403, Message: "policy says no"}
		}
		return nil
	}
	g := startProxy(t, withAutoChunk("", 6<<20, 5<<20, 2), func(o *engine.Options) {
		o.Buckets[0].Authorizer = engine.AuthorizerFunc(deny)
	})
	p := serveOn(t, lastEngine, g)
	cl := p.sdkClient(t)
	ctx := context.Background()

	for i, size := range []int{0, 3000, 64<<10 + 1, 1 << 20, 7 << 20} {
		key := fmt.Sprintf("serve/obj-%d", size)
		body := s3test.RandomBytes(size, int64(i))
		if _, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(body), Metadata: map[string]string{"n": fmt.Sprint(i)}}); err != nil {
			t.Fatalf("PutObject %d bytes: %v", size, err)
		}
		got, head := upstream.GetObject(t, p.UpBucket, key)
		if !bytes.Equal(got, body) || head.Metadata["n"] != fmt.Sprint(i) {
			t.Fatalf("size %d: upstream has %d bytes, metadata %v", size, len(got), head.Metadata)
		}
	}
	if n := asked.Load(); n != 5 {
		t.Errorf("Authorizer asked %d times; want 5", n)
	}

	serveMultipart(t, cl, p) // low-level multipart through the driver

	// The Authorizer refuses before the body moves: nothing upstream.
	for _, size := range []int{10, 2 << 20} {
		k := fmt.Sprintf("denied/%d", size)
		resp, body := putStream(t, p, k, s3test.RandomBytes(size, 1), nil, "")
		wantS3Error(t, resp, body, 403, "AccessDenied")
		if upstream.ObjectExists(t, p.UpBucket, k) {
			t.Errorf("%s: denied object exists upstream", k)
		}
	}

	servePipelined(t, p)
	noUploadsLeft(t, p.UpBucket)
}

// serveMultipart uploads one part with the low-level multipart calls through p, lists and
// completes it, and checks the object upstream.
func serveMultipart(t *testing.T, cl *s3.Client, p *proxy) {
	t.Helper()
	ctx := context.Background()
	key := "serve/mp"
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	part := s3test.RandomBytes(5<<20, 9)
	up, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
		UploadId: cr.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(p.Bucket), Key: aws.String(key), UploadId: cr.UploadId}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{ETag: up.ETag, PartNumber: aws.Int32(1)}}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, part) {
		t.Fatal("multipart object differs")
	}
}

// servePipelined checks refusals and keep-alive on p: a refused request with its body buffered
// keeps the connection, and two pipelined PUTs are answered in order.
func servePipelined(t *testing.T, p *proxy) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	bad := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/k", Body: []byte("xx"), SK: "wrong", AK: clientAK}
	w1 := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/serve/p1", Body: []byte("one")}
	w2 := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/serve/p2", Body: []byte("two")}
	var wire []byte
	wire = append(wire, bad.bytes(t, p.Addr)...)
	wire = append(wire, w1.bytes(t, p.Addr)...)
	wire = append(wire, w2.bytes(t, p.Addr)...)
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, body := readResponse(t, br)
	wantS3Error(t, resp, body, 403, "SignatureDoesNotMatch")
	for _, k := range []string{"serve/p1", "serve/p2"} {
		resp, body := readResponse(t, br)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", k, resp.StatusCode, body)
		}
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "serve/p2"); string(got) != "two" {
		t.Errorf("p2 = %q", got)
	}
	if upstream.ObjectExists(t, p.UpBucket, "k") {
		t.Error("refused object exists upstream")
	}
}

// Shutdown closes the driver's idle keep-alive connections at once, and Serve returns.
func TestServeShutdownClosesIdle(t *testing.T) {
	g := startProxy(t)
	eng := lastEngine
	p := serveOn(t, eng, g)
	c := dial(t, p.Addr)
	br := bufio.NewReader(c)
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/idle", Body: []byte("x")}
	if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
		t.Fatal(err)
	}
	if resp, body := readResponse(t, br); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := eng.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("idle connection still served after Shutdown")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed %v after Shutdown", d)
	}
}
