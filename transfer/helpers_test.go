package transfer_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/transfer"
)

// rig is a relay on loopback TCP: the test writes the body on client, the
// Mover moves it from src to dst, the test reads it on up.
//
//	client ──tcp── src [Mover] dst ──tcp── up
type rig struct {
	client, src, dst, up *net.TCPConn
}

func tcpPair(t testing.TB) (dialed, accepted *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	type res struct {
		c   *net.TCPConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.AcceptTCP()
		ch <- res{c, err}
	}()
	d, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	r := <-ch
	if r.err != nil {
		d.Close()
		t.Fatalf("accept: %v", r.err)
	}
	return d, r.c
}

func newRig(t testing.TB) *rig {
	t.Helper()
	r := &rig{}
	r.client, r.src = tcpPair(t)
	r.dst, r.up = tcpPair(t)
	t.Cleanup(r.close)
	return r
}

func (r *rig) close() {
	for _, c := range []*net.TCPConn{r.client, r.src, r.dst, r.up} {
		c.Close()
	}
}

var (
	bodyOnce sync.Once
	bodyBuf  []byte
)

// body returns n deterministic pseudo-random bytes (shared, read-only).
func body(n int) []byte {
	bodyOnce.Do(func() {
		bodyBuf = make([]byte, 65<<20)
		rng := rand.NewChaCha8([32]byte{'m', 'i', 'z', 'u', 'c', 'h', 'i'})
		_, _ = rng.Read(bodyBuf)
	})
	if n > len(bodyBuf) {
		panic("body too large")
	}
	return bodyBuf[:n]
}

func testMover(t testing.TB, mode transfer.Mode, o transfer.Options) *transfer.Mover {
	t.Helper()
	o.ForceCopy = mode == transfer.ModeCopy
	m := transfer.NewMover(o)
	t.Cleanup(func() { m.Close() })
	return m
}

// sink reads c until EOF or error, hashing everything; it reports the
// digest and the byte count on the returned channel.
type sinkResult struct {
	sum [32]byte
	n   int64
	err error
}

func sink(c net.Conn, slow time.Duration) <-chan sinkResult {
	ch := make(chan sinkResult, 1)
	go func() {
		h := sha256.New()
		buf := make([]byte, 32<<10)
		var res sinkResult
		for {
			k, err := c.Read(buf)
			h.Write(buf[:k])
			res.n += int64(k)
			if err != nil {
				if err != io.EOF {
					res.err = err
				}
				break
			}
			if slow > 0 {
				time.Sleep(slow)
			}
		}
		copy(res.sum[:], h.Sum(nil))
		ch <- res
	}()
	return ch
}

// send writes parts to c in pieces of at most chunk bytes (0: whole), with
// pause between pieces; errors are reported on the channel.
func send(c net.Conn, chunk int, pause time.Duration, parts ...[]byte) <-chan error {
	ch := make(chan error, 1)
	go func() {
		for _, p := range parts {
			for len(p) > 0 {
				k := len(p)
				if chunk > 0 && k > chunk {
					k = chunk
				}
				if _, err := c.Write(p[:k]); err != nil {
					ch <- err
					return
				}
				p = p[k:]
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		}
		ch <- nil
	}()
	return ch
}

func digest(parts ...[]byte) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

// readTrailer reads exactly len(want) bytes from c and compares them.
func readTrailer(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the pipelined trailer back from src: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	if !bytes.Equal(got, want) {
		t.Fatalf("trailer left in src = %q; want %q", got, want)
	}
}

// awaitMove waits up to d for the outcome of a moveAsync, failing the test when Move has not
// returned by then ("Move did not return after <what>").
func awaitMove(t *testing.T, ch <-chan moveOutcome, d time.Duration, what string) (transfer.Result, error) {
	t.Helper()
	select {
	case o := <-ch:
		return o.res, o.err
	case <-time.After(d):
		t.Fatal("Move did not return after " + what)
	}
	return transfer.Result{}, nil
}
