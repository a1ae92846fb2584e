package engine_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// metricValue reads one series from the process's metrics (-1 when absent).
func metricValue(t *testing.T, series string) float64 {
	t.Helper()
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	for _, line := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every gauge returns to its idle value once the clients are gone, whichever path their requests
// took: inline, detached and re-enrolled, detached and closed, refused.
func TestGaugesReturnToIdle(t *testing.T) {
	p := startProxy(t)
	conns := func() float64 { return metricValue(t, "mizuchi_connections_active") }
	waitFor(t, "no connections", 5*time.Second, func() bool { return conns() == 0 })

	put := func(c net.Conn, br *bufio.Reader, key string, size int, closeConn bool) {
		t.Helper()
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: s3test.RandomBytes(size, 1)}
		if closeConn {
			r.Header = http.Header{"Connection": {"close"}}
		}
		if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
			t.Fatal(err)
		}
		resp, body := readResponse(t, br)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", key, resp.StatusCode, body)
		}
	}
	for i, tc := range []struct {
		size      int
		closeConn bool
	}{{10, false}, {10, true}, {1 << 20, false}, {1 << 20, true}} {
		c := dial(t, p.Addr)
		br := bufio.NewReader(c)
		put(c, br, fmt.Sprintf("g/%d-a", i), tc.size, false)
		put(c, br, fmt.Sprintf("g/%d-b", i), tc.size, tc.closeConn)
		if tc.closeConn {
			// The proxy closes: the client sees EOF.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after Connection: close: %v; want EOF", err)
			}
		}
		c.Close()
	}
	// A refused large body (drained) and a wrong signature.
	resp, body := putStream(t, p, "g/refused", s3test.RandomBytes(2<<20, 2), nil, "UNSIGNED-PAYLOAD-X")
	wantS3Error(t, resp, body, 400, "InvalidArgument")

	waitFor(t, "mizuchi_connections_active back to 0", 5*time.Second, func() bool { return conns() == 0 })
	waitFor(t, "mizuchi_uploads_active back to 0", 5*time.Second, func() bool {
		return metricValue(t, "mizuchi_uploads_active") == 0
	})
	if idle, open := metricValue(t, "mizuchi_upstream_idle_connections"), metricValue(t, "mizuchi_upstream_open_connections"); idle > open {
		t.Errorf("idle upstream connections %v > open %v", idle, open)
	}
}

// An upstream that sends x-amz-request-id twice: the client and the access log get one id.
func TestUpstreamRequestIDOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nx-amz-request-id: FIRSTID0000000AA\r\n"+
						"ETag: \"e\"\r\nx-amz-request-id: SECONDID000000BB\r\nContent-Length: 0\r\n\r\n")
				}
			}(c)
		}
	}()
	var logBuf syncBuf
	p := startProxy(t, func(o *engine.Options) {
		o.Buckets[0].Upstream.Endpoint = "http://" + l.Addr().String()
		o.AccessLog = slog.New(slog.NewJSONHandler(&logBuf, nil))
	})
	for _, size := range []int{10, 1 << 20} {
		resp, body := putStream(t, p, "id/"+itoa(size), s3test.RandomBytes(size, 1), nil, "")
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if got := resp.Header.Values("x-mizuchi-upstream-request-id"); len(got) != 1 || got[0] != "FIRSTID0000000AA" {
			t.Errorf("size %d: upstream ids relayed = %q; want one", size, got)
		}
		if got := resp.Header.Values("x-amz-request-id"); len(got) != 1 || len(got[0]) != 16 || got[0] == "FIRSTID0000000AA" {
			t.Errorf("size %d: x-amz-request-id = %q; want the proxy's one", size, got)
		}
	}
	waitFor(t, "two access log lines", 5*time.Second, func() bool { return strings.Count(logBuf.String(), "\n") >= 2 })
	if n := strings.Count(logBuf.String(), `"upstream_request_id":"FIRSTID0000000AA"`); n != 2 {
		t.Errorf("access log has the first upstream id %d times; want 2:\n%s", n, logBuf.String())
	}
	if strings.Contains(logBuf.String(), "SECONDID") {
		t.Errorf("access log carries the repeated id:\n%s", logBuf.String())
	}
}
