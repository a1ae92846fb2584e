package engine_test

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// De-chunked bodies (aws-chunked decoded to be auto-chunked, HTTP chunked) copy through the copy
// path's buffers, within server.copy_memory_max: one waiting for its client's next bytes holds one
// buffer of the cap; with the cap taken, a second copies through an overflow buffer (a de-chunker
// holds decoded bytes, so it cannot give its buffer back and wait, as a TLS client cannot), and
// both complete. Both buffers go back when they end.
func TestDechunkedBodyBorrowsCopyBuffer(t *testing.T) {
	var eng *engine.Engine
	p := startProxyEngine(t, &eng, withAutoChunk("", 6<<20, 5<<20, 2),
		func(o *engine.Options) { o.Transfer.CopyMemoryMax = 256 << 10 }) // one buffer
	data := randomBytes(12<<20+7, 22)
	type upload struct {
		key  string
		conn net.Conn
		rest []byte
	}
	start := func(key string, te int) upload {
		c := chunkedPut{unsigned: true, trailer: "x-amz-checksum-crc32", chunk: 1 << 20, te: te,
			path: "/" + p.Bucket + "/" + key, data: data, decoded: -1, flip: -1}
		wire := c.wire(t, p.Addr)
		conn := dial(t, p.Addr)
		half := len(wire) / 2 // in the second part: its copy waits for the rest
		if _, err := conn.Write(wire[:half]); err != nil {
			t.Fatal(err)
		}
		return upload{key, conn, wire[half:]}
	}
	stats := eng.TransferStats
	if s := stats(); s.CopyBuffersMax != 1 {
		t.Fatalf("CopyBuffersMax %d; want 1", s.CopyBuffersMax)
	}
	first := start("copymem/aws-chunked", 0)
	waitFor(t, "the first de-chunked body to hold the one copy buffer", 10*time.Second,
		func() bool { return stats().CopyBuffersInUse == 1 })
	overflows := stats().CopyOverflows
	second := start("copymem/te-chunked", 64<<10)
	waitFor(t, "the second de-chunked body to copy through an overflow buffer", 10*time.Second,
		func() bool { return stats().CopyOverflows > overflows })
	if s := stats(); s.CopyBuffersInUse != 1 || s.CopyWaiting != 0 {
		t.Errorf("with both waiting: %d buffers in use, %d transfers waiting; want 1 and 0", s.CopyBuffersInUse, s.CopyWaiting)
	}
	for _, u := range []upload{first, second} {
		if _, err := u.conn.Write(u.rest); err != nil {
			t.Fatal(err)
		}
		resp, body := readResponse(t, bufio.NewReader(u.conn))
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %s", u.key, resp.StatusCode, body)
		}
		if got, _ := upstream.GetObject(t, p.UpBucket, u.key); !bytes.Equal(got, data) {
			t.Errorf("%s: stored %d bytes; want %d", u.key, len(got), len(data))
		}
	}
	waitFor(t, "the copy buffer to come back", 10*time.Second, func() bool { return stats().CopyBuffersInUse == 0 })
}

// PostObject's file, streamed (above postWholeMax), copies through a copy buffer of the cap too.
func TestPostObjectFileBorrowsCopyBuffer(t *testing.T) {
	var eng *engine.Engine
	p := startProxyEngine(t, &eng)
	conds := stdConditions(p.Bucket)
	conds[4] = []any{"content-length-range", 1, 8 << 20} // stdConditions allows 1 MiB
	auth := postPolicy{Conditions: conds}.sign(t)
	file := s3test.RandomBytes(3<<20, 24)
	body, ct := postBody(t, append(stdFields("uploads/copymem.png"), auth...), "copymem.png", file)
	wire := postWire(p.Addr, "/"+p.Bucket, ct, body)
	conn := dial(t, p.Addr)
	half := len(wire) / 2 // in the file
	if _, err := conn.Write(wire[:half]); err != nil {
		t.Fatal(err)
	}
	stats := eng.TransferStats
	waitFor(t, "the file's copy to hold a copy buffer", 10*time.Second, func() bool { return stats().CopyBuffersInUse == 1 })
	if _, err := conn.Write(wire[half:]); err != nil {
		t.Fatal(err)
	}
	resp, rb := readResponse(t, bufio.NewReader(conn))
	if resp.StatusCode != 204 {
		t.Fatalf("POST: %d %s", resp.StatusCode, rb)
	}
	if got, _ := upstream.GetObject(t, p.UpBucket, "uploads/copymem.png"); !bytes.Equal(got, file) {
		t.Errorf("stored %d bytes; want %d", len(got), len(file))
	}
	waitFor(t, "the copy buffer to come back", 10*time.Second, func() bool { return stats().CopyBuffersInUse == 0 })
}
