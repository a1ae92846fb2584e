package httpparse

import (
	"strings"
	"testing"
)

var validChunked = []string{
	"0\r\n\r\n",
	"5\r\nhello\r\n0\r\n\r\n",
	"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	"A\r\n0123456789\r\n000\r\n\r\n",
	"a;name=value;q=\"x y\"\r\n0123456789\r\n0 ; last\r\n\r\n",
	"3\r\n\r\n\n\r\n0\r\nExpires: never\r\nX-Amz-Checksum-Crc32: qpIt0w==\r\n\r\n",
	"0000000000000000000000001\r\nx\r\n0\r\n\r\n",
	"7fffffffffffffff\r\n", // incomplete but valid: a huge chunk
}

func TestChunkScannerValid(t *testing.T) {
	for _, body := range validChunked {
		complete := strings.HasSuffix(body, "\r\n\r\n")
		// One shot with trailing bytes of the next message.
		var s ChunkScanner
		in := body + "HTTP/1.1 200 OK\r\n"
		n, done, err := s.Scan([]byte(in))
		if err != nil || done != complete || complete && n != len(body) || !complete && n != len(in) {
			t.Errorf("Scan(%q) = %d, %v, %v; want %d, %v, nil", in, n, done, err, len(body), complete)
		}
		if !complete {
			continue
		}
		// Every split into two pieces, and one byte at a time.
		for cut := 0; cut <= len(body); cut++ {
			s.Reset()
			n1, done1, err1 := s.Scan([]byte(body[:cut]))
			if err1 != nil || n1 != cut || done1 != (cut == len(body)) {
				t.Fatalf("%q cut %d: first Scan = %d, %v, %v", body, cut, n1, done1, err1)
			}
			if done1 {
				continue
			}
			n2, done2, err2 := s.Scan([]byte(body[cut:] + "NEXT"))
			if err2 != nil || !done2 || n2 != len(body)-cut {
				t.Fatalf("%q cut %d: second Scan = %d, %v, %v; want %d, true, nil", body, cut, n2, done2, err2, len(body)-cut)
			}
		}
		s.Reset()
		for i := 0; i < len(body); i++ {
			n, done, err := s.Scan([]byte{body[i]})
			if err != nil || n != 1 || done != (i == len(body)-1) {
				t.Fatalf("%q byte %d: Scan = %d, %v, %v", body, i, n, done, err)
			}
		}
	}
}

func TestChunkScannerErrors(t *testing.T) {
	for _, tc := range []struct {
		body string
		err  error
	}{
		{"\r\n", ErrChunkSize},
		{"x\r\n", ErrChunkSize},
		{"-1\r\n", ErrChunkSize},
		{"5 x\r\n", ErrChunkExtension},
		{"5;a\x00\r\n", ErrChunkExtension},
		{"5;" + strings.Repeat("a", maxChunkLine) + "\r\n", ErrChunkExtension},
		{"8000000000000000\r\n", ErrChunkTooLarge},
		{"10000000000000000\r\n", ErrChunkTooLarge},
		{"5\n", ErrChunkBareLF},
		{"5\rx", ErrChunkBareLF},
		{"5\r\nhelloX", ErrChunkDataEnd},
		{"5\r\nhello\rX", ErrChunkDataEnd},
		{"5\r\nhello\n", ErrChunkDataEnd},
		{"0\r\n\n", ErrChunkBareLF},
		{"0\r\n\rX", ErrChunkBareLF},
		{"0\r\nBad Name: x\r\n\r\n", ErrChunkTrailer},
		{"0\r\n: x\r\n\r\n", ErrChunkTrailer},
		{"0\r\nX: a\x01\r\n\r\n", ErrChunkTrailer},
		{"0\r\nX: a\n\r\n", ErrChunkBareLF},
		{"0\r\nX\r\n\r\n", ErrChunkTrailer},
		{"0\r\n X: a\r\n\r\n", ErrChunkTrailer},
		{"0\r\n" + strings.Repeat("X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", maxTrailerBytes/32), ErrChunkTrailer},
	} {
		var s ChunkScanner
		_, _, err := s.Scan([]byte(tc.body))
		if err != tc.err {
			t.Errorf("Scan(%.40q) = %v; want %v", tc.body, err, tc.err)
		}
		if _, _, err2 := s.Scan([]byte("0\r\n\r\n")); err2 != err {
			t.Errorf("Scan after error = %v; want sticky %v", err2, err)
		}
		// Byte by byte gives the same error.
		s.Reset()
		err = nil
		for i := 0; i < len(tc.body) && err == nil; i++ {
			_, _, err = s.Scan([]byte{tc.body[i]})
		}
		if err != tc.err {
			t.Errorf("Scan(%.40q) byte by byte = %v; want %v", tc.body, err, tc.err)
		}
	}
}

func TestChunkScannerDoneIsSticky(t *testing.T) {
	var s ChunkScanner
	if n, done, err := s.Scan([]byte("0\r\n\r\nGET")); n != 5 || !done || err != nil {
		t.Fatalf("Scan = %d, %v, %v; want 5, true, nil", n, done, err)
	}
	if n, done, err := s.Scan([]byte("GET")); n != 0 || !done || err != nil {
		t.Errorf("Scan after done = %d, %v, %v; want 0, true, nil", n, done, err)
	}
}

func TestChunkScannerLargeChunk(t *testing.T) {
	var s ChunkScanner
	head := "100000\r\n" // 1 MiB chunk
	if n, done, err := s.Scan([]byte(head)); n != len(head) || done || err != nil {
		t.Fatalf("Scan(head) = %d, %v, %v", n, done, err)
	}
	piece := make([]byte, 64<<10)
	for i := 0; i < 16; i++ {
		if n, done, err := s.Scan(piece); n != len(piece) || done || err != nil {
			t.Fatalf("piece %d: Scan = %d, %v, %v", i, n, done, err)
		}
	}
	if n, done, err := s.Scan([]byte("\r\n0\r\n\r\n")); n != 7 || !done || err != nil {
		t.Fatalf("Scan(tail) = %d, %v, %v; want 7, true, nil", n, done, err)
	}
}

// Request bodies (ResetRequest) are scanned strictly: no whitespace around the chunk size, at most
// 16 hex digits and maxRequestChunk, extensions only as ";" token [ "=" ( token / quoted-string ) ]
// within maxRequestChunkLine bytes. These are the smuggling shapes that lenient parsers disagree on.
func TestChunkScannerRequestStrict(t *testing.T) {
	for _, tc := range []struct {
		body string
		err  error
	}{
		{"0x10\r\n", ErrChunkSize},
		{"+10\r\n", ErrChunkSize},
		{"-0\r\n", ErrChunkSize},
		{" 10\r\n", ErrChunkSize},
		{"\t10\r\n", ErrChunkSize},
		{"10 \r\n", ErrChunkSize},
		{"10\t\r\n", ErrChunkSize},
		{"10 ;a\r\n", ErrChunkSize},
		{"1_0\r\n", ErrChunkSize},
		{"00000000000000010\r\n", ErrChunkTooLarge},      // 17 digits, however small
		{"10000000001\r\n", ErrChunkTooLarge},            // above maxRequestChunk
		{"ffffffffffffffffffff\r\n", ErrChunkTooLarge},   // overflow
		{"10\n", ErrChunkBareLF},                         // bare LF after the size
		{"10\rX", ErrChunkBareLF},                        // bare CR
		{"5\r\nhello\n0\r\n\r\n", ErrChunkDataEnd},       // bare LF after data
		{"5\r\nhelloo\r\n0\r\n\r\n", ErrChunkDataEnd},    // more data than the size says
		{"0\r\n\n", ErrChunkBareLF},                      // bare LF ends the trailer
		{"0\r\n\r\r\n", ErrChunkBareLF},                  // CR CR LF
		{"0\r\nGET / HTTP/1.1\r\n\r\n", ErrChunkTrailer}, // a request smuggled as a trailer
		{"0\r\nX: a\nGET / HTTP/1.1\r\n\r\n", ErrChunkBareLF},
		{"0\r\nX : a\r\n\r\n", ErrChunkTrailer},
		{"5;\r\nhello\r\n", ErrChunkExtension}, // empty extension name
		{"5;;a\r\n", ErrChunkExtension},
		{"5; a\r\n", ErrChunkExtension}, // BWS inside an extension
		{"5;a =b\r\n", ErrChunkExtension},
		{"5;a= b\r\n", ErrChunkExtension},
		{"5;a=\r\n", ErrChunkExtension},
		{"5;a=b c\r\n", ErrChunkExtension},
		{"5;a=\"b\r\n", ErrChunkExtension}, // CR inside a quoted-string
		{"5;a=\"b\"c\r\n", ErrChunkExtension},
		{"5;a=\"\\\x01\"\r\n", ErrChunkExtension},
		{"5;a\x00\r\n", ErrChunkExtension},
		{"5;a=b\n", ErrChunkBareLF},
		{"5;" + strings.Repeat("a", maxRequestChunkLine) + "\r\n", ErrChunkExtension}, // too long
		{"5;a=\"" + strings.Repeat("b", maxRequestChunkLine) + "\"\r\n", ErrChunkExtension},
	} {
		var s ChunkScanner
		s.ResetRequest()
		_, _, err := s.Scan([]byte(tc.body))
		if err != tc.err {
			t.Errorf("request Scan(%.50q) = %v; want %v", tc.body, err, tc.err)
		}
		s.ResetRequest()
		err = nil
		for i := 0; i < len(tc.body) && err == nil; i++ {
			_, _, err = s.Scan([]byte{tc.body[i]})
		}
		if err != tc.err {
			t.Errorf("request Scan(%.50q) byte by byte = %v; want %v", tc.body, err, tc.err)
		}
	}
	for _, body := range []string{
		"0\r\n\r\n",
		"5\r\nhello\r\n0\r\n\r\n",
		"5;a\r\nhello\r\n5;a=b;c=\"q \\\" \\\\ x\";d\r\nworld\r\n0;last=yes\r\nX-Trailer: v\r\nY:\r\n\r\n",
		"000000000000000A\r\n0123456789\r\n0000000000000000\r\n\r\n", // 16 digits
		"10000000000\r\n", // maxRequestChunk itself: incomplete but valid
	} {
		var s ChunkScanner
		s.ResetRequest()
		n, done, err := s.Scan([]byte(body + "PUT"))
		complete := strings.HasSuffix(body, "\r\n\r\n")
		if err != nil || done != complete || complete && n != len(body) {
			t.Errorf("request Scan(%q) = %d, %v, %v; want %d, %v, nil", body, n, done, err, len(body), complete)
		}
	}
}

// TestChunkDecode: Decode yields exactly the chunk data, in place, and MinRemaining never asks for a
// byte past the body: a reader that reads at most MinRemaining bytes at a time stops exactly at
// the end and leaves the next request unread.
func TestChunkDecode(t *testing.T) {
	for _, tc := range []struct{ body, data string }{
		{"0\r\n\r\n", ""},
		{"5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nT: x\r\n\r\n", "hello world"},
		{"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", "abc"},
		{"A\r\n0123456789\r\n0000\r\n\r\n", "0123456789"},
	} {
		// One shot, with the next request behind it.
		in := []byte(tc.body + "PUT / HTTP/1.1\r\n")
		var s ChunkScanner
		s.ResetRequest()
		n, data, done, err := s.Decode(in)
		if err != nil || !done || n != len(tc.body) || string(in[:data]) != tc.data {
			t.Errorf("Decode(%q) = %d, %q, %v, %v; want %d, %q, true, nil", tc.body, n, in[:data], done, err, len(tc.body), tc.data)
		}
		// Bounded reads from a stream.
		s.ResetRequest()
		src := []byte(tc.body + "PUT / HTTP/1.1\r\n")
		var got []byte
		done = false
		for !done {
			k := s.MinRemaining()
			if k <= 0 || k > int64(len(src)) {
				t.Fatalf("%q: MinRemaining = %d with %d bytes left", tc.body, k, len(src))
			}
			k = min(k, 3) // small reads: every state boundary is crossed
			p := append([]byte(nil), src[:k]...)
			src = src[k:]
			var n, d int
			n, d, done, err = s.Decode(p)
			if err != nil || n != len(p) {
				t.Fatalf("%q: Decode = %d, %d, %v, %v of %d", tc.body, n, d, done, err, len(p))
			}
			got = append(got, p[:d]...)
		}
		if string(got) != tc.data || string(src) != "PUT / HTTP/1.1\r\n" || s.MinRemaining() != 0 {
			t.Errorf("%q streamed: %q, left %q, MinRemaining %d", tc.body, got, src, s.MinRemaining())
		}
	}
}
