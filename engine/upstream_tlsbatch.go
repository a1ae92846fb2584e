package engine

import (
	"crypto/tls"
	"net"
	"sync"
)

// https upstreams on the goroutine paths (detached exchanges, auto-chunked parts, aborts): crypto/tls
// writes each record of at most 16 KiB to its transport with a system call of its own, so a 256 KiB
// chunk of the copy path took 16 writes — 16 passes through the TCP stack and as many wake-ups of
// the upstream. batchTLS collects the records of one large Write and sends them in one.

// batchMin is the smallest Write batched: anything up to one record is one write anyway.
const batchMin = 16 << 10

// batchKeep bounds a batch: a larger write leaves in writes of at most about this size (a copy
// chunk's records and their overhead fit in one).
const batchKeep = 512 << 10

var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 264<<10); return &b }}

// batchConn is the transport under an https upstream's tls.Conn. While a batch is open, what
// crypto/tls writes is appended to buf; closing it sends buf in one write. The mutex keeps the
// order of records when crypto/tls writes from a reading goroutine during a batch (a KeyUpdate
// answer): such a record joins the batch, or follows it.
type batchConn struct {
	net.Conn
	mu  sync.Mutex
	buf *[]byte // non-nil while a batch is open
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf != nil {
		if len(*b.buf) > 0 && len(*b.buf)+len(p) > batchKeep {
			// A write larger than a copy chunk (a Complete document): send what is gathered so
			// far rather than grow past batchKeep.
			if _, err := b.Conn.Write(*b.buf); err != nil {
				return 0, err
			}
			*b.buf = (*b.buf)[:0]
		}
		*b.buf = append(*b.buf, p...)
		return len(p), nil
	}
	return b.Conn.Write(p)
}

// NetConn returns the socket (transfer.ResetClose resets it).
func (b *batchConn) NetConn() net.Conn { return b.Conn }

func (b *batchConn) open() {
	b.mu.Lock()
	b.buf = batchBufs.Get().(*[]byte)
	b.mu.Unlock()
}

// close sends what the batch collected and closes it.
func (b *batchConn) close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	buf := b.buf
	b.buf = nil
	var err error
	if len(*buf) > 0 {
		_, err = b.Conn.Write(*buf)
	}
	if cap(*buf) <= batchKeep {
		*buf = (*buf)[:0]
		batchBufs.Put(buf)
	}
	return err
}

// batchTLS is an https upstream connection whose large writes leave in one system call.
type batchTLS struct {
	*tls.Conn
	bc *batchConn
}

// tlsUpstream returns the client side of TLS over c (not yet handshaken) with batched writes.
func tlsUpstream(c net.Conn, cfg *tls.Config) *batchTLS {
	bc := &batchConn{Conn: c}
	return &batchTLS{Conn: tls.Client(bc, cfg), bc: bc}
}

func (t *batchTLS) Write(p []byte) (int, error) {
	if len(p) <= batchMin {
		return t.Conn.Write(p)
	}
	t.bc.open()
	n, err := t.Conn.Write(p)
	if ferr := t.bc.close(); ferr != nil && err == nil {
		return 0, ferr // the records were sealed but never sent: the connection is unusable
	}
	return n, err
}

// NetConn returns the transport (whose NetConn is the socket).
func (t *batchTLS) NetConn() net.Conn { return t.bc }
