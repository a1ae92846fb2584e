package httpparse

import (
	"strings"
	"testing"
)

func BenchmarkParseRequest(b *testing.B) {
	for _, name := range realHeads {
		buf := readHead(b, name)
		b.Run(strings.TrimSuffix(name, ".http"), func(b *testing.B) {
			var p Parser
			var req Request
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				p.Reset()
				if err := p.Parse(buf, Limits{}, &req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseRequestByteByByte feeds the aws cli head one byte more per
// call: the cost stays linear because the parser resumes.
func BenchmarkParseRequestByteByByte(b *testing.B) {
	buf := readHead(b, "awscli-put.http")
	var p Parser
	var req Request
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		p.Reset()
		for i := 1; i < len(buf); i++ {
			if err := p.Parse(buf[:i], Limits{}, &req); err != ErrNeedMore {
				b.Fatal(err)
			}
		}
		if err := p.Parse(buf, Limits{}, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := realResponse(b, "versitygw-put-200.http")
	var p Parser
	var resp Response
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		p.Reset()
		if err := p.ParseResponse(buf, Limits{}, &resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChunkScanner scans a 1 MiB body in 16 KiB chunks delivered in
// 64 KiB pieces: framing bytes are examined, data is skipped.
func BenchmarkChunkScanner(b *testing.B) {
	var sb strings.Builder
	data := strings.Repeat("x", 16<<10)
	for i := 0; i < 64; i++ {
		sb.WriteString("4000;chunk-signature=0123456789abcdef\r\n")
		sb.WriteString(data)
		sb.WriteString("\r\n")
	}
	sb.WriteString("0\r\nx-amz-checksum-crc32: qpIt0w==\r\n\r\n")
	body := []byte(sb.String())
	var s ChunkScanner
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		total, done := 0, false
		for off := 0; off < len(body) && !done; off += 64 << 10 {
			n, d, err := s.Scan(body[off:min(off+64<<10, len(body))])
			if err != nil {
				b.Fatal(err)
			}
			total, done = total+n, d
		}
		if !done || total != len(body) {
			b.Fatalf("done %v total %d; want true %d", done, total, len(body))
		}
	}
}

// BenchmarkChunkDecode de-chunks a 1 MiB request body in 16 KiB chunks read in pieces bounded by
// MinRemaining and 64 KiB, in place: the cost of the proxy's de-chunker beside the copy itself.
func BenchmarkChunkDecode(b *testing.B) {
	var sb strings.Builder
	data := strings.Repeat("x", 16<<10)
	for i := 0; i < 64; i++ {
		sb.WriteString("4000\r\n")
		sb.WriteString(data)
		sb.WriteString("\r\n")
	}
	sb.WriteString("0\r\n\r\n")
	body := []byte(sb.String())
	work := make([]byte, 64<<10)
	var s ChunkScanner
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		s.ResetRequest()
		off, out, done := 0, 0, false
		for !done {
			k := min(int64(len(work)), s.MinRemaining(), int64(len(body)-off))
			p := work[:k]
			copy(p, body[off:])
			n, d, dn, err := s.Decode(p)
			if err != nil {
				b.Fatal(err)
			}
			off, out, done = off+n, out+d, dn
		}
		if off != len(body) || out != 64*len(data) {
			b.Fatalf("consumed %d, decoded %d", off, out)
		}
	}
}
