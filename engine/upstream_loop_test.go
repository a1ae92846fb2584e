package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
)

// startFlakySink is a fault-injecting upstream: it answers each PUT 200 with keep-alive, then closes
// the connection after closeAfter (0 = keep it), or never answers when mute is set.
func startFlakySink(t *testing.T, closeAfter time.Duration, mute bool) string {
	t.Helper()
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
					io.Copy(io.Discard, req.Body)
					if mute {
						time.Sleep(time.Minute)
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n")
					if closeAfter > 0 {
						time.Sleep(closeAfter)
						return
					}
				}
			}(c)
		}
	}()
	return "http://" + l.Addr().String()
}

// A pooled upstream connection that died while idle is noticed, and the request is sent on a fresh one.
func TestLoopUpstreamSurvivesDeadPooledConnections(t *testing.T) {
	for _, delay := range []time.Duration{time.Millisecond, 50 * time.Millisecond} {
		ep := startFlakySink(t, delay, false)
		p := startProxy(t, func(o *engine.Options) { o.Buckets[0].Upstream.Endpoint = ep })
		c := dial(t, p.Addr)
		br := bufio.NewReader(c)
		for i := 0; i < 10; i++ {
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/k" + strconv.Itoa(i), Body: []byte("x")}
			c.Write(r.bytes(t, p.Addr))
			resp, body := readResponse(t, br)
			if resp.StatusCode != 200 {
				t.Fatalf("delay %v, request %d: %d %s", delay, i, resp.StatusCode, body)
			}
			time.Sleep(delay * 2)
		}
	}
}

// An upstream that never answers: 504 after the response timeout, on both small-request paths.
func TestUpstreamResponseTimeout(t *testing.T) {
	for _, goroutine := range []bool{false, true} {
		t.Run(fmt.Sprint("goroutine=", goroutine), func(t *testing.T) {
			ep := startFlakySink(t, 0, true)
			p := startProxy(t, func(o *engine.Options) {
				o.Buckets[0].Upstream.Endpoint = ep
				o.ResponseTimeout = 700 * time.Millisecond
				o.NoLoopUpstream = goroutine
			})
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/k", Body: []byte("x")}
			start := time.Now()
			resp, body := p.do(t, r.bytes(t, p.Addr))
			wantS3Error(t, resp, body, 504, "GatewayTimeout")
			if d := time.Since(start); d > 5*time.Second || d < 500*time.Millisecond {
				t.Errorf("answered after %v", d)
			}
			_ = strings.TrimSpace
		})
	}
}
