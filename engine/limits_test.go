package engine_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// closedWithin asserts the server closes c within d (read returns EOF or reset).
func closedWithin(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	start := time.Now()
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
		t.Fatalf("connection still open after %v", d)
	}
	t.Logf("closed after %v", time.Since(start).Round(10*time.Millisecond))
}

func TestHeadAndIdleTimeouts(t *testing.T) {
	p := startProxy(t, func(o *engine.Options) {
		o.HeadTimeout = 600 * time.Millisecond
		o.IdleTimeout = 900 * time.Millisecond
	})
	t.Run("slow head", func(t *testing.T) {
		c := dial(t, p.Addr)
		fmt.Fprintf(c, "PUT /%s/k HTTP/1.1\r\nHost: x\r\n", p.Bucket) // never finished
		closedWithin(t, c, 5*time.Second)
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := dial(t, p.Addr)
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/idle", Body: []byte("x")}
		br := bufio.NewReader(c)
		c.Write(r.bytes(t, p.Addr))
		if resp, body := readResponse(t, br); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		closedWithin(t, c, 5*time.Second)
	})
}

// A client that waits for 100 Continue gets it after authentication and then its 200.
func TestExpectContinueSucceeds(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		for _, size := range []int{1000, 1 << 20} {
			body := s3test.RandomBytes(size, 6)
			key := fmt.Sprintf("expect-%d", size)
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: body,
				Header: http.Header{"Expect": {"100-continue"}}}
			wire := r.bytes(t, p.Addr)
			i := bytes.Index(wire, []byte("\r\n\r\n")) + 4
			c := dial(t, p.Addr)
			br := bufio.NewReader(c)
			c.Write(wire[:i])
			line, err := br.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
				t.Fatalf("got %q %v; want 100 Continue", line, err)
			}
			if l2, _ := br.ReadString('\n'); l2 != "\r\n" {
				t.Fatalf("100 Continue not followed by an empty line: %q", l2)
			}
			c.Write(wire[i:])
			if resp, rb := readResponse(t, br); resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, rb)
			}
			got, _ := upstream.GetObject(t, p.UpBucket, key)
			if !bytes.Equal(got, body) {
				t.Fatal("body differs")
			}
		}
	})
}
