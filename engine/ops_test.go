package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// One JSON access-log line per request with the documented fields, and never a secret or signature.
func TestAccessLog(t *testing.T) {
	var buf syncBuf
	p := startProxy(t, func(o *engine.Options) { o.AccessLog = slog.New(slog.NewJSONHandler(&buf, nil)) })
	cl := p.sdkClient(t)
	if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String("log/a b"),
		Body: bytes.NewReader(make([]byte, 100))}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String("log/big"),
		Body: bytes.NewReader(make([]byte, 2<<20))}); err != nil { // above the inline cap: spliced
		t.Fatal(err)
	}
	r := rawReq{Method: "GET", Path: "/" + p.Bucket + "/log/x"}
	p.do(t, r.bytes(t, p.Addr))
	waitFor(t, "three access log lines", 5*time.Second, func() bool { return strings.Count(buf.String(), "\n") >= 3 })
	out := buf.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d access-log lines; want 3:\n%s", len(lines), out)
	}
	var recs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %s", l)
		}
		for _, f := range []string{"time", "request_id", "remote", "principal", "bucket", "key", "operation", "status", "bytes_in", "bytes_out", "duration_ms", "mode", "upstream_status"} {
			if _, ok := m[f]; !ok {
				t.Errorf("field %s missing in %s", f, l)
			}
		}
		recs = append(recs, m)
	}
	// Lines are written when each request finishes: order them as the requests were made.
	sort.Slice(recs, func(i, j int) bool { return recs[i]["request_id"].(string) < recs[j]["request_id"].(string) })
	if recs[0]["key"] != "log/a b" || recs[0]["principal"] != clientAK || recs[0]["status"] != 200.0 || recs[0]["mode"] != "inline" ||
		recs[0]["upstream_status"] != 200.0 || recs[0]["bytes_in"] != 100.0 {
		t.Errorf("inline record: %v", recs[0])
	}
	if recs[1]["mode"] != "splice" || recs[1]["bytes_in"] != float64(2<<20) {
		t.Errorf("spliced record: %v", recs[1])
	}
	if recs[2]["status"] != 405.0 || recs[2]["operation"] != "Unknown" || recs[2]["mode"] != "refused" {
		t.Errorf("refused record: %v", recs[2])
	}
	// A relayed answer carries the proxy's request id, the one in the access log.
	r = rawReq{Method: "PUT", Path: "/" + p.Bucket + "/log/id", Body: []byte("x")}
	resp, _ := p.do(t, r.bytes(t, p.Addr))
	id := resp.Header.Get("x-amz-request-id")
	if resp.StatusCode != 200 || !reqIDRE.MatchString("<RequestId>"+id+"</RequestId>") {
		t.Fatalf("relayed PUT: %d, x-amz-request-id %q", resp.StatusCode, id)
	}
	waitFor(t, "the relayed PUT's log line", 5*time.Second, func() bool {
		return strings.Contains(buf.String(), `"request_id":"`+id+`"`)
	})
	if !strings.Contains(buf.String(), `"request_id":"`+id+`"`) {
		t.Errorf("request id %s of a relayed answer is not in the access log", id)
	}
	out = buf.String()
	for _, secret := range []string{clientSK, upstream.SecretKey, "Signature=", "AWS4-HMAC-SHA256"} {
		if strings.Contains(out, secret) {
			t.Errorf("access log contains %q", secret)
		}
	}
}

// UpdateBuckets adds a bucket without dropping connections; an invalid table is refused.
func TestUpdateBuckets(t *testing.T) {
	var eng *engine.Engine
	p := startProxyEngine(t, &eng)
	c := dial(t, p.Addr)
	br := bufio.NewReader(c)
	put := func(bucket, key string) int {
		r := rawReq{Method: "PUT", Path: "/" + bucket + "/" + key, Body: []byte("x")}
		c.Write(r.bytes(t, p.Addr))
		resp, _ := readResponse(t, br)
		return resp.StatusCode
	}
	if s := put(p.Bucket, "before"); s != 200 {
		t.Fatalf("before reload: %d", s)
	}
	if s := put("added", "k"); s != 403 {
		t.Fatalf("unknown bucket before reload: %d", s)
	}
	addedUp := fmt.Sprintf("added-upstream-%d", bucketSeq.Add(1)) // the shared server outlives -count runs
	upstream.CreateBucket(t, addedUp)
	bs := []engine.Bucket{
		{Name: p.Bucket, Upstream: engine.Upstream{Endpoint: upstream.Endpoint, Bucket: p.UpBucket, AccessKey: upstream.AccessKey, SecretKey: upstream.SecretKey},
			Credentials: map[string]string{clientAK: clientSK}},
		{Name: "added", Upstream: engine.Upstream{Endpoint: upstream.Endpoint, Bucket: addedUp, AccessKey: upstream.AccessKey, SecretKey: upstream.SecretKey},
			Credentials: map[string]string{clientAK: clientSK}},
	}
	if err := eng.UpdateBuckets(bs[:1:1][:0]); err == nil {
		t.Fatal("an empty bucket table was accepted")
	}
	if err := eng.UpdateBuckets(bs); err != nil {
		t.Fatal(err)
	}
	// Same connection, new bucket.
	if s := put("added", "k"); s != 200 {
		t.Fatalf("new bucket after reload: %d", s)
	}
	if s := put(p.Bucket, "after"); s != 200 {
		t.Fatalf("old bucket after reload: %d", s)
	}
	if !upstream.ObjectExists(t, addedUp, "k") {
		t.Fatal("object in the added bucket missing")
	}
}

// startProxyEngine is startProxy that also hands out the engine.
func startProxyEngine(t *testing.T, out **engine.Engine, opts ...proxyOpt) *proxy {
	t.Helper()
	var captured engine.Options
	opts = append(opts, func(o *engine.Options) { captured = *o })
	p := startProxy(t, opts...)
	_ = captured
	*out = lastEngine
	return p
}

// A per-endpoint connection limit: with one connection busy, the next request gets 503 SlowDown.
func TestUpstreamConnectionLimit(t *testing.T) {
	p := startProxy(t, func(o *engine.Options) {
		o.Upstream.MaxConns = 1
		o.Upstream.DialTimeout = 300 * time.Millisecond
	})
	// Hold the only connection: a large upload whose body stalls.
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/hold", Payload: "UNSIGNED-PAYLOAD", Header: http.Header{"Content-Length": {"10000000"}}}
	c := dial(t, p.Addr)
	c.Write(r.bytes(t, p.Addr))
	c.Write(make([]byte, 100000))
	eng := lastEngine
	// The held upload has its upstream connection once its body is being spliced (a pipe in use).
	waitFor(t, "the held upload moving its body", 5*time.Second, func() bool {
		return eng.ActiveUploads() == 1 && eng.TransferStats().PipesInUse >= 1 // two with the read-ahead pipe (transfer: bodies above 2 pipes)
	})
	r2 := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/second", Body: []byte("x")}
	resp, body := p.do(t, r2.bytes(t, p.Addr))
	wantS3Error(t, resp, body, 503, "SlowDown")
	c.Close()
	waitFor(t, "the held upload to end", 5*time.Second, func() bool { return eng.ActiveUploads() == 0 })
	// The slot is back.
	if resp, body := p.do(t, r2.bytes(t, p.Addr)); resp.StatusCode != 200 {
		t.Fatalf("after the slot was freed: %d %s", resp.StatusCode, body)
	}
}

// Shutdown lets an upload in flight finish.
func TestDrainFinishesUploads(t *testing.T) {
	var eng *engine.Engine
	p := startProxyEngine(t, &eng)
	body := s3test.RandomBytes(4<<20, 9)
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/drained", Body: body}
	wire := r.bytes(t, p.Addr)
	c := dial(t, p.Addr)
	c.Write(wire[:len(wire)-len(body)/2])
	waitFor(t, "the upload in flight", 5*time.Second, func() bool { return eng.ActiveUploads() == 1 })
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- eng.Shutdown(ctx)
	}()
	waitFor(t, "the engine to drain", 5*time.Second, func() bool { return !eng.Ready() })
	// New connections are refused while draining (the plain listener is closed), so a balancer
	// sends them to another node at once instead of seeing them accepted and closed unanswered.
	waitFor(t, "new connections refused", 5*time.Second, func() bool {
		c2, err := dialOnce(p.Addr)
		if err == nil {
			c2.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, _ := c2.Read(make([]byte, 1)); n != 0 {
				t.Error("a new connection was served while draining")
			}
			c2.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	c.Write(wire[len(wire)-len(body)/2:])
	resp, rb := readResponse(t, bufio.NewReader(c))
	if resp.StatusCode != 200 {
		t.Fatalf("upload during drain: %d %s", resp.StatusCode, rb)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	got, _ := upstream.GetObject(t, p.UpBucket, "drained")
	if !bytes.Equal(got, body) {
		t.Fatal("drained upload differs")
	}
}

// At the drain deadline uploads still running are cut so that no partial object or upload remains.
func TestDrainDeadlineLeavesNothing(t *testing.T) {
	var eng *engine.Engine
	p := startProxyEngine(t, &eng, withAutoChunk("", 6<<20, 5<<20, 2))
	for _, size := range []int{3 << 20, 20 << 20} { // spliced, auto-chunked
		key := fmt.Sprintf("cut-%d", size)
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD", Header: http.Header{"Content-Length": {fmt.Sprint(size)}}}
		c := dial(t, p.Addr)
		c.Write(r.bytes(t, p.Addr))
		c.Write(make([]byte, size*2/3))
		go io.Copy(io.Discard, c)
	}
	waitFor(t, "both uploads in flight", 5*time.Second, func() bool { return eng.ActiveUploads() == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = eng.Shutdown(ctx)
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	for _, size := range []int{3 << 20, 20 << 20} {
		waitNoObject(t, p.UpBucket, fmt.Sprintf("cut-%d", size))
	}
	noUploadsLeft(t, p.UpBucket)
}
