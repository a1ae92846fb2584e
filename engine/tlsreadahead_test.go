package engine_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// heldConn is a client socket whose writes can be held and sent as one: the records of a body and
// of the request pipelined behind it reach the proxy's socket together.
type heldConn struct {
	net.Conn
	held *bytes.Buffer // non-nil: writes collect here
}

func (h *heldConn) Write(b []byte) (int, error) {
	if h.held != nil {
		return h.held.Write(b)
	}
	return h.Conn.Write(b)
}

// A detached TLS client's body is read ahead 128 KiB at a time: a request pipelined right behind it
// (sent in the same write) is read ahead with the body's last bytes, and must still be served once
// the connection is back on its loop — as must the requests after it.
// Both drivers: the loop driver's detached exchange and the goroutine driver's (engine.TLSConn).
func TestServeTLSReadAheadCarriesPipelined(t *testing.T) {
	for _, driver := range []string{"loop", "goroutine"} {
		t.Run(driver, func(t *testing.T) { readAheadCarriesPipelined(t, driver) })
	}
}

func readAheadCarriesPipelined(t *testing.T, driver string) {
	g := startProxy(t)
	cert, pool := selfSigned(t)
	addr := serveTLS(t, driver, cert)
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	hc := &heldConn{Conn: raw}
	c := tls.Client(hc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	send := func(w []byte) {
		hc.held = &bytes.Buffer{}
		if _, err := c.Write(w); err != nil {
			t.Error(err)
		}
		b := hc.held.Bytes()
		hc.held = nil
		go func() { _, _ = raw.Write(b) }() // one write: the proxy reads the last body bytes with the next request
	}
	put := func(key string, body []byte) []byte {
		r := rawReq{Method: "PUT", Path: "/" + g.Bucket + "/" + key, Body: body}
		return r.bytes(t, addr)
	}
	expect := func(key string, body []byte) {
		t.Helper()
		resp, rb := readResponse(t, br)
		if resp.StatusCode != 200 {
			t.Fatalf("PUT %s: %d %s", key, resp.StatusCode, rb)
		}
		if got, _ := upstream.GetObject(t, g.UpBucket, key); !bytes.Equal(got, body) {
			t.Fatalf("%s: upstream has %d bytes; want %d", key, len(got), len(body))
		}
	}
	for i, size := range []int{3<<20 + 12345, 5 << 20} {
		big := s3test.RandomBytes(size, int64(30+i))
		bigKey := fmt.Sprintf("ra/big-%d", i)
		w := put(bigKey, big)
		// 60 small PUTs behind it, ~200 KiB: more than crypto/tls takes from the read-ahead buffer
		// in one read, so some are still there when the big body's last byte is read.
		smalls := make([][]byte, 60)
		for k := range smalls {
			smalls[k] = s3test.RandomBytes(3000+k, int64(100*i+k))
			w = append(w, put(fmt.Sprintf("ra/small-%d-%d", i, k), smalls[k])...)
		}
		send(w)
		expect(bigKey, big)
		for k, b := range smalls {
			expect(fmt.Sprintf("ra/small-%d-%d", i, k), b)
		}
	}
	last := s3test.RandomBytes(100, 50)
	if _, err := c.Write(put("ra/last", last)); err != nil {
		t.Fatal(err)
	}
	expect("ra/last", last)
}
