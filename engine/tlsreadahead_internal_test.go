package engine

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
)

// raSource returns its data in reads of at most step bytes, then err.
type raSource struct {
	data  []byte
	step  int
	err   error
	reads int
}

func (c *raSource) Read(b []byte) (int, error) {
	c.reads++
	if len(c.data) == 0 {
		return 0, c.err
	}
	n := min(len(b), len(c.data), c.step)
	copy(b, c.data[:n])
	c.data = c.data[n:]
	if len(c.data) == 0 && c.err != nil {
		return n, c.err // bytes and the error in one read
	}
	return n, nil
}

// readAhead serves small reads from one large read of the socket, and returns the error that came
// with the last bytes only after those bytes.
func TestReadAheadRead(t *testing.T) {
	p := newReadAheads(1, 0, 0)
	data := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320,000 bytes
	src := &raSource{data: data, step: 1 << 20, err: io.ErrUnexpectedEOF}
	var ra readAhead
	ra.buf = p.get()
	var got []byte
	b := make([]byte, 5000)
	var err error
	for err == nil {
		var n int
		n, err = ra.read(src, b)
		got = append(got, b[:n]...)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, err %v; want %d bytes then ErrUnexpectedEOF", len(got), err, len(data))
	}
	if want := (len(data) + tlsReadAheadSize - 1) / tlsReadAheadSize; src.reads != want {
		t.Errorf("%d reads of the socket for %d bytes in 5000-byte reads; want %d", src.reads, len(data), want)
	}
	if p.get() != nil {
		t.Fatal("a second buffer lent past the bound of one")
	}
	p.put(ra.buf)
	if b := p.get(); b == nil {
		t.Fatal("no buffer after the one lent came back")
	}
}

// What was read ahead and not consumed when the connection goes back to its loop is served by the
// memory-mode transport before the ciphertext gnet reads next, and the buffer goes back to the pool.
func TestReadAheadCarry(t *testing.T) {
	p := newReadAheads(1, 0, 0)
	m := &loopTLSConn{sock: nil}
	src := &raSource{data: []byte("body-bytes|next-request"), step: 1 << 20}
	m.startReadAhead(p, 0)
	b := make([]byte, len("body-bytes|"))
	if n, err := m.ra.read(src, b); n != len(b) || err != nil {
		t.Fatalf("read = %d, %v", n, err)
	}
	m.stopReadAhead(p)
	if m.ra.buf != nil || p.get() == nil {
		t.Fatal("the read-ahead buffer was not given back")
	}
	m.in = []byte("+gnet")
	out, _ := io.ReadAll(io.LimitReader(m, 100))
	if string(out) != "next-request+gnet" {
		t.Fatalf("memory mode read %q; want the carried bytes, then gnet's", out)
	}
}

// The goroutine driver's TLS connection reads a body ahead from the engine's pool between
// startBody and endBody only, and keeps what it read ahead for the next reads.
func TestTLSConnReadsAheadDuringBody(t *testing.T) {
	p := newReadAheads(1, 0, 0)
	srv, cli := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	tc := NewTLSConn(srv, &tls.Config{})
	if tc.NetConn() != srv {
		t.Fatal("NetConn is not the socket")
	}
	tc.startBody(p, 0)
	if tc.mc.ra.buf == nil || p.get() != nil {
		t.Fatal("startBody did not take the pool's only buffer")
	}
	tc.endBody(p)
	if tc.mc.ra.buf != nil {
		t.Fatal("endBody kept the buffer")
	}
	if b := p.get(); b == nil {
		t.Fatal("endBody did not give the buffer back")
	}
}

// In socket mode the transport hands crypto/tls at most one record's worth per Read, however much
// room it offers and however much it holds (carried, read ahead, or one read of the socket):
// crypto/tls then never holds more than tlsHeldMax, which read batching relies on.
func TestLoopTLSConnReadsOneRecordAtATime(t *testing.T) {
	for _, ahead := range []bool{false, true} {
		srv, cli := net.Pipe()
		m := &loopTLSConn{sock: srv}
		p := newReadAheads(1, 0, 0)
		if ahead {
			m.startReadAhead(p, 0)
		}
		m.ra.carry = bytes.Repeat([]byte("c"), 3*tlsMaxRecord)
		go func() { _, _ = cli.Write(bytes.Repeat([]byte("s"), 3*tlsMaxRecord)); cli.Close() }()
		b := make([]byte, 1<<20)
		total := 0
		for {
			n, err := m.Read(b)
			if n > tlsMaxRecord {
				t.Fatalf("read-ahead %v: Read returned %d bytes; want at most %d", ahead, n, tlsMaxRecord)
			}
			total += n
			if err != nil {
				break
			}
		}
		if total != 6*tlsMaxRecord {
			t.Fatalf("read-ahead %v: read %d bytes; want %d", ahead, total, 6*tlsMaxRecord)
		}
		srv.Close()
	}
}
