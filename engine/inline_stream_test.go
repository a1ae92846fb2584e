package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// Bodies up to Options.InlineBodyMax (1 MiB by default) are streamed upstream inside the event
// loop, never detached; larger ones are detached and spliced.

const inlineCap = 1 << 20 // the default Options.InlineBodyMax

func TestInlineStreamSizes(t *testing.T) {
	for _, copyMode := range []bool{false, true} {
		t.Run(fmt.Sprint("copy=", copyMode), func(t *testing.T) { testInlineStreamSizes(t, copyMode) })
	}
}

func testInlineStreamSizes(t *testing.T, copyMode bool) {
	var opts []proxyOpt
	if copyMode {
		opts = append(opts, withCopy())
	}
	func(t *testing.T, p *proxy) {
		c := dial(t, p.Addr)
		br := bufio.NewReader(c)
		for i, size := range []int{64<<10 + 1, 256 << 10, inlineCap - 1, inlineCap, inlineCap + 1} {
			key := fmt.Sprintf("stream/%d", size)
			body := s3test.RandomBytes(size, int64(i))
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: body}
			detached := metricValue(t, "mizuchi_detached_requests_total")
			if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
				t.Fatal(err)
			}
			resp, b := readResponse(t, br)
			if resp.StatusCode != 200 || resp.Close {
				t.Fatalf("PUT %d bytes: %d close=%v %s", size, resp.StatusCode, resp.Close, b)
			}
			got, _ := upstream.GetObject(t, p.UpBucket, key)
			if !bytes.Equal(got, body) {
				t.Fatalf("PUT %d bytes: upstream holds %d bytes, not the body", size, len(got))
			}
			d := metricValue(t, "mizuchi_detached_requests_total") - detached
			// Streamed in the loop up to the cap; the goroutine path (copy mode: NoLoopUpstream)
			// cannot stream, and detaches every body above 64 KiB as before.
			want := 0.0
			if size > inlineCap || copyMode && size > 64<<10 {
				want = 1
			}
			if d != want {
				t.Errorf("PUT %d bytes: %v detached; want %v (streamed in the loop up to %d)", size, d, want, inlineCap)
			}
		}
	}(t, startProxy(t, opts...))
}

// aws cli and the SDKs send Expect: 100-continue and withhold the body until they see 100.
func TestInlineStreamExpectContinue(t *testing.T) {
	p := startProxy(t)
	for _, size := range []int{256 << 10, inlineCap} {
		key := fmt.Sprintf("expect/%d", size)
		body := s3test.RandomBytes(size, 7)
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: body, Header: http.Header{"Expect": {"100-continue"}}}
		wire := r.bytes(t, p.Addr)
		head := wire[:len(wire)-size]
		c := dial(t, p.Addr)
		br := bufio.NewReader(c)
		if _, err := c.Write(head); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("want 100 Continue first, got %q %v", line, err)
		}
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(body); err != nil {
			t.Fatal(err)
		}
		resp, b := readResponse(t, br)
		if resp.StatusCode != 200 {
			t.Fatalf("PUT %d with Expect: %d %s", size, resp.StatusCode, b)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("upstream holds %d bytes, not the body", len(got))
		}
	}
}

// A client that goes away in the middle of a streamed body leaves no object: the upstream request
// is reset, not ended with a FIN (versitygw stores a truncated body on a clean FIN).
func TestInlineStreamClientVanishes(t *testing.T) {
	p := startProxy(t)
	for _, size := range []int{256 << 10, inlineCap} {
		for _, rst := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/rst=%v", size, rst), func(t *testing.T) {
				key := fmt.Sprintf("vanish/%d-%v", size, rst)
				r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD",
					Header: http.Header{"Content-Length": {fmt.Sprint(size)}}}
				c := dial(t, p.Addr)
				if _, err := c.Write(append(r.bytes(t, p.Addr), s3test.RandomBytes(size/2, 1)...)); err != nil {
					t.Fatal(err)
				}
				eng := lastEngine
				waitFor(t, "the upload in flight", 5*time.Second, func() bool { return eng.ActiveUploads() == 1 })
				time.Sleep(50 * time.Millisecond) // the half body reaches the upstream
				if rst {
					_ = c.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
				waitFor(t, "the upload to end", 5*time.Second, func() bool { return eng.ActiveUploads() == 0 })
				waitNoObject(t, p.UpBucket, key)
			})
		}
	}
	// The proxy still serves.
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/after", Body: s3test.RandomBytes(300<<10, 2)}
	if resp, b := p.do(t, r.bytes(t, p.Addr)); resp.StatusCode != 200 {
		t.Fatalf("PUT after: %d %s", resp.StatusCode, b)
	}
}

// The upstream answers 412 to If-None-Match: * before the body is complete: the client reads the
// 412 while it is still sending, and the object stays as it was.
func TestInlineStreamEarlyAnswer(t *testing.T) {
	p := startProxy(t)
	key := "early/412"
	first := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: []byte("first")}
	if resp, b := p.do(t, first.bytes(t, p.Addr)); resp.StatusCode != 200 {
		t.Fatalf("first PUT: %d %s", resp.StatusCode, b)
	}
	size := inlineCap
	second := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Payload: "UNSIGNED-PAYLOAD",
		Header: http.Header{"If-None-Match": {"*"}, "Content-Length": {fmt.Sprint(size)}}}
	c := dial(t, p.Addr)
	if _, err := c.Write(append(second.bytes(t, p.Addr), make([]byte, size/4)...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	expectEarly412(t, c, bufio.NewReader(c), size-size/4, p.UpBucket, key)
}

// expectEarly412 reads the 412 a conditional PUT got while its body was still coming, sends the
// rest of the body (rest bytes; the proxy drains it), and checks that the connection then closes
// cleanly and that the object is still "first".
func expectEarly412(t *testing.T, w io.Writer, br *bufio.Reader, rest int, upBucket, key string) {
	t.Helper()
	resp, b := readResponse(t, br)
	if resp.StatusCode != 412 || !resp.Close {
		t.Fatalf("conditional PUT mid-body: %d close=%v %s; want 412 and close", resp.StatusCode, resp.Close, b)
	}
	if _, err := w.Write(make([]byte, rest)); err != nil {
		t.Fatalf("rest of the body: %v", err)
	}
	if n, err := io.Copy(io.Discard, br); err != nil || n != 0 {
		t.Fatalf("after the answer: %d bytes, %v; want a clean close", n, err)
	}
	if got, _ := upstream.GetObject(t, upBucket, key); string(got) != "first" {
		t.Fatalf("object overwritten despite If-None-Match")
	}
}

// slowUpstream accepts connections, reads request heads and bodies only when released, then
// answers 200 to each. It reads with a small receive buffer so that the kernel holds little.
type slowUpstream struct {
	ln      net.Listener
	release chan struct{}
	mu      sync.Mutex
	bodies  int
}

func startSlowUpstream(t *testing.T) *slowUpstream {
	t.Helper()
	lc := net.ListenConfig{}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &slowUpstream{ln: ln, release: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
			go u.serve(c)
		}
	}()
	return u
}

func (u *slowUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 4<<10)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		<-u.release
		n, err := io.Copy(io.Discard, req.Body)
		if err != nil || n != req.ContentLength {
			return
		}
		u.mu.Lock()
		u.bodies++
		u.mu.Unlock()
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 0\r\n\r\n"); err != nil {
			return
		}
	}
}

// An upstream that does not read keeps what the proxy holds bounded by the inline cap per
// connection: the body sits in user space about once — in gnet's outbound buffer, in pooled blocks;
// on a freshly dialled upstream connection also in the client's inbound buffer and the first write
// meanwhile — measured 1.0–2.2 MiB of heap per connection for 1 MiB bodies.
func TestInlineStreamSlowUpstreamMemoryBounded(t *testing.T) {
	up := startSlowUpstream(t)
	p := startProxy(t, func(o *engine.Options) {
		o.Buckets[0].Upstream.Endpoint = "http://" + up.ln.Addr().String()
	})
	checkSlowUpstreamHeap(t, "plain", up, lastEngine, 24, func(i int) (net.Conn, *bufio.Reader, []byte) {
		r := rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/slow/%d", p.Bucket, i), Payload: "UNSIGNED-PAYLOAD",
			Header: http.Header{"Content-Length": {fmt.Sprint(inlineCap)}}}
		c := dial(t, p.Addr)
		return c, bufio.NewReader(c), r.bytes(t, p.Addr)
	})
}

// checkSlowUpstreamHeap sends conns uploads of inlineCap bytes (open gives each its connection,
// reader and head) through a proxy whose upstream reads nothing until released. The proxy reads
// whatever comes (gnet has no backpressure), so every client's write returns; the heap in use may
// grow by at most 3× the cap per connection meanwhile. Then the upstream is released and each
// upload must be answered 200 with its whole body at the upstream.
func checkSlowUpstreamHeap(t *testing.T, what string, up *slowUpstream, eng *engine.Engine, conns int, open func(i int) (net.Conn, *bufio.Reader, []byte)) {
	t.Helper()
	body := make([]byte, inlineCap)
	cs := make([]net.Conn, conns)
	brs := make([]*bufio.Reader, conns)
	heads := make([][]byte, conns)
	for i := range cs {
		cs[i], brs[i], heads[i] = open(i)
	}
	var mem0 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem0)
	var sent sync.WaitGroup
	for i, c := range cs {
		sent.Go(func() {
			if _, err := c.Write(append(heads[i], body...)); err != nil {
				t.Errorf("%s client %d: %v", what, i, err)
			}
		})
	}
	sent.Wait()
	waitFor(t, "the uploads in flight", 10*time.Second, func() bool { return eng.ActiveUploads() == int64(conns) })
	var mem1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem1)
	grew := int64(mem1.HeapInuse) - int64(mem0.HeapInuse)
	t.Logf("%d %s connections, 1 MiB bodies, upstream not reading: heap in use grew %.1f MiB (%.0f KiB per connection)",
		conns, what, float64(grew)/(1<<20), float64(grew)/float64(conns)/1024)
	if limit := int64(conns) * 3 * inlineCap; grew > limit {
		t.Errorf("heap grew %d bytes with %d stalled %s uploads; want at most %d (3× the cap per connection)", grew, conns, what, limit)
	}
	close(up.release)
	for i := range cs {
		if resp, rb := readResponse(t, brs[i]); resp.StatusCode != 200 {
			t.Fatalf("%s upload %d: %d %s", what, i, resp.StatusCode, rb)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.bodies != conns {
		t.Fatalf("upstream got %d whole bodies; want %d", up.bodies, conns)
	}
}

// Shutdown lets a streamed upload finish; at the drain deadline one still streaming is cut (the
// upstream request reset: no object) and its client told 503.
func TestInlineStreamDrain(t *testing.T) {
	t.Run("finishes", func(t *testing.T) {
		var eng *engine.Engine
		p := startProxyEngine(t, &eng)
		body := s3test.RandomBytes(768<<10, 3)
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/drained", Body: body}
		wire := r.bytes(t, p.Addr)
		c := dial(t, p.Addr)
		if _, err := c.Write(wire[:len(wire)-len(body)/2]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the upload in flight", 5*time.Second, func() bool { return eng.ActiveUploads() == 1 })
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- eng.Shutdown(ctx)
		}()
		waitFor(t, "the engine to drain", 5*time.Second, func() bool { return !eng.Ready() })
		if _, err := c.Write(wire[len(wire)-len(body)/2:]); err != nil {
			t.Fatal(err)
		}
		resp, b := readResponse(t, bufio.NewReader(c))
		if resp.StatusCode != 200 {
			t.Fatalf("upload during drain: %d %s", resp.StatusCode, b)
		}
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, "drained"); !bytes.Equal(got, body) {
			t.Fatal("drained upload differs")
		}
	})
	t.Run("deadline", func(t *testing.T) {
		var eng *engine.Engine
		p := startProxyEngine(t, &eng)
		size := inlineCap
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/cut", Payload: "UNSIGNED-PAYLOAD",
			Header: http.Header{"Content-Length": {fmt.Sprint(size)}}}
		c := dial(t, p.Addr)
		if _, err := c.Write(append(r.bytes(t, p.Addr), make([]byte, size*2/3)...)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the upload in flight", 5*time.Second, func() bool { return eng.ActiveUploads() == 1 })
		time.Sleep(50 * time.Millisecond) // the bytes sent reach the upstream
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_ = eng.Shutdown(ctx)
		resp, b := readResponse(t, bufio.NewReader(c))
		wantS3Error(t, resp, b, 503, "ServiceUnavailable")
		waitNoObject(t, p.UpBucket, "cut")
	})
}

// A client that half-closes once it has sent its whole request (nc -N, some scripts) still reads
// the answer of a request exchanged in the loop, buffered or streamed.
func TestInlineHalfCloseAfterBody(t *testing.T) {
	p := startProxy(t)
	for _, size := range []int{1000, 256 << 10, inlineCap} {
		key := fmt.Sprintf("halfclose/%d", size)
		body := s3test.RandomBytes(size, 5)
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: body}
		c := dial(t, p.Addr)
		if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, b := readResponse(t, bufio.NewReader(c))
		if resp.StatusCode != 200 {
			t.Fatalf("PUT %d bytes then half-close: %d %s", size, resp.StatusCode, b)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("PUT %d bytes: upstream holds %d bytes, not the body", size, len(got))
		}
	}
}

// A client that queues more than maxPipelinedBytes behind a request in flight still gets that
// request's answer, with Connection: close, and the connection then closes; what it queued is
// dropped unanswered (a pipelining client resends what was not answered) and never goes upstream.
func TestPipelinedOverflowAnswersRequestInFlight(t *testing.T) {
	for _, transport := range []string{"plain", "tls"} {
		t.Run(transport, func(t *testing.T) {
			up := startSlowUpstream(t)
			opt := func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = "http://" + up.ln.Addr().String() }
			var (
				c            net.Conn
				br           *bufio.Reader
				addr, bucket string
			)
			if transport == "plain" {
				p := startProxy(t, opt)
				c, addr, bucket = dial(t, p.Addr), p.Addr, p.Bucket
				br = bufio.NewReader(c)
			} else {
				b := startTLSBed(t, opt)
				c, br = b.dial(t)
				addr, bucket = b.addr, b.Bucket
			}
			eng := lastEngine
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			first := rawReq{Method: "PUT", Path: "/" + bucket + "/overflow/first", Body: []byte("hello")}
			if _, err := c.Write(first.bytes(t, addr)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the first request in flight", 5*time.Second, func() bool { return eng.ActiveUploads() == 1 })
			const queuedSize = 2 << 20
			queued := rawReq{Method: "PUT", Path: "/" + bucket + "/overflow/queued", Payload: "UNSIGNED-PAYLOAD",
				Header: http.Header{"Content-Length": {fmt.Sprint(queuedSize)}}}
			if _, err := c.Write(append(queued.bytes(t, addr), make([]byte, queuedSize)...)); err != nil {
				t.Fatalf("writing the queued request: %v", err)
			}
			time.Sleep(200 * time.Millisecond) // the proxy has read what was queued
			close(up.release)
			resp, body := readResponse(t, br)
			if resp.StatusCode != 200 || !resp.Close {
				t.Fatalf("request in flight: %d close=%v %s; want 200 with Connection: close", resp.StatusCode, resp.Close, body)
			}
			if n, err := br.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("after the answer: read %d bytes, %v; want the connection closed", n, err)
			}
			up.mu.Lock()
			defer up.mu.Unlock()
			if up.bodies != 1 {
				t.Fatalf("the upstream got %d bodies; want 1 (the queued request is dropped)", up.bodies)
			}
		})
	}
}
