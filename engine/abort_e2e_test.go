package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// The upstream dies during an auto-chunked PutObject: the client gets an error, the abort fails
// while the upstream is down, and once it is back (same address, same data) the background retrier
// aborts the upload — no orphaned upload remains.
func TestAutoChunkAbortSurvivesUpstreamRestart(t *testing.T) {
	ab := startAbortBed(t, time.Minute, 50*time.Millisecond, withAutoChunk("", 6<<20, 5<<20, 1))
	base := readAbortCounters()

	const size = 12 << 20
	r := rawReq{Method: "PUT", Path: "/" + ab.bucket + "/big/dies", Payload: "UNSIGNED-PAYLOAD",
		Header: http.Header{"Content-Length": {fmt.Sprint(size)}}}
	c, err := net.DialTimeout("tcp", ab.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	body := s3test.RandomBytes(size, 12)
	if _, err := c.Write(append(r.bytes(t, ab.addr), body[:6<<20]...)); err != nil {
		t.Fatal(err)
	}
	// The upload exists upstream (the first part went, the second is under way): kill the upstream.
	ok, msg := waitUntil(10*time.Second, func() (bool, string) {
		ups := ab.uploads(t)
		return len(ups) == 1, fmt.Sprintf("uploads: %v", ups)
	})
	if !ok {
		t.Fatal(msg)
	}
	ab.srv.Stop()
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			answer <- nil
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		answer <- resp
	}()
	_, _ = c.Write(body[6<<20:]) // the proxy may stop reading once the part failed
	resp := <-answer
	// 502/503 when the proxy finds the upstream gone; 500 when versitygw, shutting down, still
	// answers the part itself (InternalError "context canceled"), which the proxy relays: all
	// retryable server errors, which is what the client must see.
	if resp == nil || (resp.StatusCode != 500 && resp.StatusCode != 502 && resp.StatusCode != 503) {
		t.Fatalf("answer %v; want 500, 502 or 503", resp)
	}
	waitCounters(t, base, 10*time.Second, "abort handed to the retrier", func(c abortCounters) bool {
		return c.pending == 1 && c.retries >= 1
	})

	ab.srv.Restart(t)
	ok, msg = waitUntil(15*time.Second, func() (bool, string) {
		ups := ab.uploads(t)
		return len(ups) == 0, fmt.Sprintf("uploads left: %v", ups)
	})
	if !ok {
		t.Fatal(msg)
	}
	c2 := waitCounters(t, base, 5*time.Second, "after the abort", func(c abortCounters) bool { return c.pending == 0 })
	if c2.failures != 0 {
		t.Errorf("counters %+v; want no final failure", c2)
	}
	if keys := ab.srv.ListKeys(t, ab.up); len(keys) != 0 {
		t.Errorf("objects stored: %v", keys)
	}
}
