package engine

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"testing"
)

// writeCounter counts the writes that reach a socket.
type writeCounter struct {
	net.Conn
	writes atomic.Int64
}

func (w *writeCounter) Write(b []byte) (int, error) {
	w.writes.Add(1)
	return w.Conn.Write(b)
}

// An https upstream connection sends a large write's TLS records in one write of its socket (not one
// per 16 KiB record); what the upstream decrypts is the bytes written, in order, and a small write
// is one record in one write.
func TestUpstreamTLSBatchesRecords(t *testing.T) {
	ca, ln := loopbackTLSListener(t)
	const big = 256 << 10
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		sc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate()}})
		b, _ := io.ReadAll(io.LimitReader(sc, big+3<<20+100))
		got <- b
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	wc := &writeCounter{Conn: raw}
	c := tlsUpstream(wc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("abcdefghijklmnop"), big/16)
	before := wc.writes.Load()
	if n, err := c.Write(payload); n != big || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if w := wc.writes.Load() - before; w != 1 {
		t.Errorf("a %d-byte write took %d socket writes; want 1 (%d records)", big, w, big/(16<<10))
	}
	before = wc.writes.Load()
	huge := bytes.Repeat([]byte("0123456789ABCDEF"), (3<<20)/16)
	if n, err := c.Write(huge); n != len(huge) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if w := wc.writes.Load() - before; w < 6 || w > 8 {
		t.Errorf("a 3 MiB write took %d socket writes; want 6–8 (batches bounded by %d bytes)", w, batchKeep)
	}
	before = wc.writes.Load()
	if _, err := c.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if w := wc.writes.Load() - before; w != 1 {
		t.Errorf("a 100-byte write took %d socket writes; want 1", w)
	}
	want := append(append(payload, huge...), make([]byte, 100)...)
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("upstream decrypted %d bytes, not the %d written", len(b), len(want))
	}
}
