package engine

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A TLS client's large body is read in batches (SO_RCVLOWAT on its socket, tlsreadahead.go). These
// tests hold the batching to what a connection needs: the mark is set while the body lasts, dropped
// for its tail (a client awaiting its answer sends nothing more), back to 1 when the body ends (the
// loop reads the next head), and a client slower than a batch per stall timeout is served, not
// failed.

// tlsBatchConn is the server side of a TLS connection on loopback whose transport is a loopTLSConn
// in socket mode, and the client side.
type tlsBatchConn struct {
	sock   *net.TCPConn
	mc     *loopTLSConn
	server *tls.Conn
	client *tls.Conn
}

func newTLSBatchConn(t *testing.T) *tlsBatchConn {
	t.Helper()
	ca, ln := loopbackTLSListener(t)
	type accepted struct {
		c   *tlsBatchConn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			ch <- accepted{err: err}
			return
		}
		mc := &loopTLSConn{sock: raw}
		sc := tls.Server(mc, &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate()}})
		ch <- accepted{&tlsBatchConn{sock: raw.(*net.TCPConn), mc: mc, server: sc}, sc.Handshake()}
	}()
	cc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13,
		DynamicRecordSizingDisabled: true}) // full records from the first byte
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		t.Fatal(a.err)
	}
	a.c.client = cc
	t.Cleanup(func() { cc.Close(); a.c.sock.Close() })
	return a.c
}

func sockLowat(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		v, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT)
	}); err != nil || serr != nil {
		t.Fatalf("getsockopt SO_RCVLOWAT: %v %v", err, serr)
	}
	return max(v, 1) // an untouched socket reports 0, which means 1
}

// readBody reads n bytes through c.server with a fresh read deadline of stall before every read, as
// the copy path does; at is called once after the first mid bytes.
func (c *tlsBatchConn) readBody(n, mid int, stall time.Duration, at func()) ([]byte, error) {
	got := make([]byte, 0, n)
	buf := make([]byte, 256<<10)
	for len(got) < n {
		_ = c.server.SetReadDeadline(time.Now().Add(stall))
		k, err := c.server.Read(buf[:min(len(buf), n-len(got))])
		if at != nil && len(got) < mid && len(got)+k >= mid {
			at()
		}
		got = append(got, buf[:k]...)
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

// markWhileReading sends body from the client, starts the read-ahead for it, reads its first n bytes
// and returns the socket's mark after the read that reached mid bytes.
func (c *tlsBatchConn) markWhileReading(t *testing.T, p *readAheads, body []byte, n, mid int) int {
	t.Helper()
	go func() { _, _ = c.client.Write(body) }()
	c.mc.startReadAhead(p, int64(len(body)))
	var mark int
	if _, err := c.readBody(n, mid, 5*time.Second, func() { mark = sockLowat(t, c.sock) }); err != nil {
		t.Fatal(err)
	}
	return mark
}

// The mark is the batch while more than a batch of the body is certain to come, 1 for its tail (the
// client sends the whole body, then waits), and 1 once the body ends, so the next request's head is
// read as soon as it comes.
func TestTLSReadBatchWhileBodyLasts(t *testing.T) {
	const batch = 64 << 10
	const stall = 10 * time.Second
	c := newTLSBatchConn(t)
	p := newReadAheads(1, batch, stall)
	body := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	sent := make(chan error, 1)
	next := make(chan struct{})
	go func() {
		// The last bytes come after the reader has caught up: only the tail rule wakes it then.
		tail := len(body) - 10000
		_, err := c.client.Write(body[:tail])
		if err == nil {
			time.Sleep(300 * time.Millisecond)
			_, err = c.client.Write(body[tail:])
		}
		sent <- err
		<-next // awaits its answer, as an HTTP client does
		_, err = c.client.Write([]byte("NEXT"))
		sent <- err
	}()
	c.mc.startReadAhead(p, int64(len(body)))
	var during int
	start := time.Now()
	got, err := c.readBody(len(body), 1<<20, stall, func() { during = sockLowat(t, c.sock) })
	if err != nil {
		t.Fatalf("read %d of %d body bytes: %v (mark %d)", len(got), len(body), err, sockLowat(t, c.sock))
	}
	if d := time.Since(start); d > stall/2 {
		// Only a stall deadline woke the reader for the tail (then batching turns off).
		t.Fatalf("the body took %v to read; its tail waited for the stall timeout (%v)", d, stall)
	}
	if !bytes.Equal(got, body) {
		t.Fatal("the body read is not the body sent")
	}
	if during != batch {
		t.Errorf("SO_RCVLOWAT mid-body = %d; want the batch %d", during, batch)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	c.mc.stopReadAhead(p)
	if got := sockLowat(t, c.sock); got != 1 {
		t.Fatalf("SO_RCVLOWAT after the body = %d; want 1", got)
	}
	close(next)
	_ = c.server.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4)
	if _, err := io.ReadFull(c.server, b); err != nil || string(b) != "NEXT" {
		t.Fatalf("next request: %q, %v", b, err)
	}
}

// What crypto/tls already holds when the body starts (records read with the head) never counts as
// still to come: with the smallest batch the tail is still read at once.
func TestTLSReadBatchAfterBufferedHead(t *testing.T) {
	const batch = 16 << 10
	const stall = 10 * time.Second
	c := newTLSBatchConn(t)
	p := newReadAheads(1, batch, stall)
	msg := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	const head = 100
	first := head + 64<<10
	tail := len(msg) - 10000
	go func() {
		_, _ = c.client.Write(msg[:first]) // the head and the body's first records in one write
		time.Sleep(200 * time.Millisecond)
		_, _ = c.client.Write(msg[first:tail])
		time.Sleep(300 * time.Millisecond)
		_, _ = c.client.Write(msg[tail:])
	}()
	_ = c.server.SetReadDeadline(time.Now().Add(stall))
	h := make([]byte, head)
	if _, err := io.ReadFull(c.server, h); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // crypto/tls has buffered what followed the head
	c.mc.startReadAhead(p, int64(len(msg)-head))
	start := time.Now()
	got, err := c.readBody(len(msg)-head, 0, stall, nil)
	if err != nil || !bytes.Equal(got, msg[head:]) {
		t.Fatalf("read %d of %d body bytes: %v", len(got), len(msg)-head, err)
	}
	if d := time.Since(start); d > stall/2 {
		t.Fatalf("the body took %v to read; its tail waited for the stall timeout (%v)", d, stall)
	}
}

// A body no larger than a batch plus what crypto/tls may hold is never batched.
func TestTLSReadBatchSmallBodyUntouched(t *testing.T) {
	const batch = 64 << 10
	c := newTLSBatchConn(t)
	p := newReadAheads(1, batch, 5*time.Second)
	body := bytes.Repeat([]byte("x"), batch+tlsHeldMax-1)
	if during := c.markWhileReading(t, p, body, len(body), 1); during != 1 {
		t.Fatalf("SO_RCVLOWAT = %d for a %d-byte body; want 1", during, len(body))
	}
}

// A client that sends less than a batch per stall timeout mid-body is slow, not stalled: the read
// returns what came and batching is off for the rest of that body.
func TestTLSReadBatchSlowClient(t *testing.T) {
	const batch = 64 << 10
	const stall = 300 * time.Millisecond
	c := newTLSBatchConn(t)
	p := newReadAheads(1, batch, stall)
	fast1 := bytes.Repeat([]byte("a"), 1<<20)
	fast2 := bytes.Repeat([]byte("c"), 2<<20)
	slow := []byte("bbbbbbbbbbbbbbbb")
	var body []byte
	body = append(body, fast1...)
	for range 12 {
		body = append(body, slow...)
	}
	body = append(body, fast2...)
	go func() {
		_, _ = c.client.Write(fast1)
		for range 12 { // 16 bytes per 100 ms: far below a batch per stall timeout
			time.Sleep(100 * time.Millisecond)
			_, _ = c.client.Write(slow)
		}
		_, _ = c.client.Write(fast2)
	}()
	c.mc.startReadAhead(p, int64(len(body)))
	got, err := c.readBody(len(body), 0, stall, nil)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a slow client failed as stalled after %d of %d bytes: %v", len(got), len(body), err)
	}
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(body), err)
	}
	c.mc.stopReadAhead(p)
	if got := sockLowat(t, c.sock); got != 1 {
		t.Fatalf("SO_RCVLOWAT after the body = %d; want 1", got)
	}
}

// A body that ends early for the proxy (an answer before all of it is read: a refusal, an upstream
// error) still leaves the socket's mark at 1.
func TestTLSReadBatchEndsEarly(t *testing.T) {
	const batch = 64 << 10
	c := newTLSBatchConn(t)
	p := newReadAheads(1, batch, 5*time.Second)
	body := bytes.Repeat([]byte("e"), 4<<20)
	if got := c.markWhileReading(t, p, body, 1<<20, 1<<20); got != batch {
		t.Fatalf("SO_RCVLOWAT mid-body = %d; want %d", got, batch)
	}
	c.mc.stopReadAhead(p)
	if got := sockLowat(t, c.sock); got != 1 {
		t.Fatalf("SO_RCVLOWAT after a body cut short = %d; want 1", got)
	}
}

// The loop driver gives each detached exchange a new socket object for the same connection
// (net.FileConn of a duplicate descriptor): the second large body on a keep-alive connection is
// batched on that socket, not on the first exchange's (closed by then).
func TestTLSReadBatchNewSocketEachBody(t *testing.T) {
	const batch = 64 << 10
	c := newTLSBatchConn(t)
	p := newReadAheads(1, batch, 5*time.Second)
	body := bytes.Repeat([]byte("n"), 4<<20)
	for i := range 2 {
		during := c.markWhileReading(t, p, body, len(body), 1<<20)
		c.mc.stopReadAhead(p)
		if during != batch {
			t.Fatalf("body %d: SO_RCVLOWAT mid-body = %d; want %d", i, during, batch)
		}
		// As the loop does between exchanges: the connection's socket object is replaced.
		f, err := c.sock.File()
		if err != nil {
			t.Fatal(err)
		}
		next, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		c.sock.Close()
		c.sock = next.(*net.TCPConn)
		c.mc.sock = c.sock
		t.Cleanup(func() { next.Close() })
	}
}

// Off (a batch of 1 or less): the mark is never touched.
func TestTLSReadBatchOff(t *testing.T) {
	c := newTLSBatchConn(t)
	p := newReadAheads(1, 1, 5*time.Second)
	body := bytes.Repeat([]byte("z"), 4<<20)
	if during := c.markWhileReading(t, p, body, len(body), 1<<20); during != 1 {
		t.Fatalf("SO_RCVLOWAT = %d with batching off; want 1", during)
	}
}
