//go:build !race

package engine

import (
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// memConn is a net.Conn reading from memory, with no-op deadlines.
type memConn struct {
	net.Conn
	r *bytes.Reader
}

func (m *memConn) Read(p []byte) (int, error)       { return m.r.Read(p) }
func (m *memConn) SetReadDeadline(time.Time) error  { return nil }
func (m *memConn) SetWriteDeadline(time.Time) error { return nil }
func (m *memConn) SetDeadline(time.Time) error      { return nil }

// signedBody frames n chunks of 64 KiB as a signed aws-chunked body chained from seed.
func signedBody(seed *s3sig.ChunkSeed, n int) []byte {
	var v s3sig.ChunkVerifier
	v.Reset(seed)
	data := bytes.Repeat([]byte("a"), 64<<10)
	var b []byte
	for range n {
		b = strconv.AppendInt(b, int64(len(data)), 16)
		b = append(b, ";chunk-signature="...)
		b = v.SignChunk(b, data)
		b = append(b, "\r\n"...)
		b = append(b, data...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "0;chunk-signature="...)
	b = v.SignChunk(b, nil)
	return append(b, "\r\n\r\n"...)
}

// TestChunkDecodeAllocsPerChunk: decoding and verifying a signed body allocates nothing per chunk.
func TestChunkDecodeAllocsPerChunk(t *testing.T) {
	seed, err := s3sig.NewChunkSeed("secret", []byte("20130524T000000Z"), "us-east-1", []byte("4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"))
	if err != nil {
		t.Fatal(err)
	}
	fwd := func([]byte) error { return nil }
	allocs := func(n int) float64 {
		body := signedBody(&seed, n)
		ci := chunkInfo{mode: chunksSigned, decoded: int64(n) << 16}
		j := &job{}
		j.chunked.seed = seed
		j.remaining = int64(len(body))
		conn := &memConn{r: bytes.NewReader(body)}
		return testing.AllocsPerRun(20, func() {
			conn.r.Reset(body)
			cs := getChunkState(j, conn, time.Second)
			if s3err, err := cs.decode(&ci, fwd); s3err != nil || err != nil {
				t.Fatalf("%d chunks: %v %v", n, s3err, err)
			}
			cs.release()
		})
	}
	one, many := allocs(1), allocs(32)
	if many > one {
		t.Fatalf("1 chunk: %v allocs, 32 chunks: %v; want none per chunk", one, many)
	}
}
