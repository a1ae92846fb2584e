package engine_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// deadlineCounter is a listener whose connections count their SetDeadline calls (each one is a
// timer operation in the runtime).
type deadlineCounter struct {
	net.Listener
	calls atomic.Int64
}

func (l *deadlineCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, calls: &l.calls}, nil
}

type countingConn struct {
	net.Conn
	calls *atomic.Int64
}

func (c *countingConn) SetDeadline(t time.Time) error {
	c.calls.Add(1)
	return c.Conn.SetDeadline(t)
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.calls.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.calls.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

// A keep-alive connection of the goroutine-per-connection transport sets its deadlines once, not
// per request: small PUTs in a row are stored, with a handful of deadline calls in all.
func TestServeKeepAliveDeadlinesNotPerRequest(t *testing.T) {
	g := startProxy(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &deadlineCounter{Listener: inner}
	done := make(chan error, 1)
	go func() { done <- lastEngine.Serve(l) }()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	addr := inner.Addr().String()
	c := dial(t, addr)
	br := bufio.NewReader(c)
	const n = 40
	for i := range n {
		body := s3test.RandomBytes(2000+i, int64(i))
		r := rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/dl/%d", g.Bucket, i), Body: body}
		if _, err := c.Write(r.bytes(t, addr)); err != nil {
			t.Fatal(err)
		}
		if resp, b := readResponse(t, br); resp.StatusCode != 200 {
			t.Fatalf("PUT %d: %d %s", i, resp.StatusCode, b)
		}
		if got, _ := upstream.GetObject(t, g.UpBucket, fmt.Sprintf("dl/%d", i)); !bytes.Equal(got, body) {
			t.Fatalf("PUT %d: stored body differs", i)
		}
	}
	if calls := l.calls.Load(); calls > 8 {
		t.Fatalf("%d deadline calls for %d keep-alive requests; want a handful (not per request)", calls, n)
	}
}
