package engine

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// trickleReader hands out src in reads of at most step bytes and remembers how far it was read.
type trickleReader struct {
	src  []byte
	step int
}

func (r *trickleReader) Read(p []byte) (int, error) {
	if len(r.src) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.step)], r.src)
	r.src = r.src[n:]
	return n, nil
}

// readTE de-chunks body (split into pre and the rest, read step bytes at a time) and returns the
// data, what the source still holds, and the error.
func readTE(body string, cut, step int, maxRaw int64) ([]byte, string, error) {
	cut = min(cut, len(body))
	src := &trickleReader{src: []byte(body[cut:]), step: step}
	var t teReader
	t.reset([]byte(body[:cut]), src, maxRaw)
	var out []byte
	buf := make([]byte, 5)
	for {
		n, err := t.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, string(src.src), nil
		}
		if err != nil {
			return out, string(src.src), err
		}
	}
}

// TestTEReader: the de-chunker yields exactly the chunk data and leaves what follows the body (a
// pipelined request) unread, whatever the split between the buffered prefix and the socket.
func TestTEReader(t *testing.T) {
	const next = "PUT /next HTTP/1.1\r\n"
	for _, tc := range []struct{ body, data string }{
		{"0\r\n\r\n", ""},
		{"5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nT: x\r\n\r\n", "hello world"},
		{"1\r\na\r\n1\r\nb\r\n0\r\n\r\n", "ab"},
	} {
		for cut := 0; cut <= len(tc.body); cut++ {
			for _, step := range []int{1, 3, 1 << 20} {
				data, left, err := readTE(tc.body+next, cut, step, 1<<20)
				if err != nil || string(data) != tc.data || left != next {
					t.Fatalf("%q cut %d step %d: %q, %v, left %q", tc.body, cut, step, data, err, left)
				}
			}
		}
	}
}

// TestTEReaderRefuses: smuggling shapes and a framing flood are the client's 400; a body cut short
// is an unexpected EOF (400 IncompleteBody).
func TestTEReaderRefuses(t *testing.T) {
	for _, tc := range []struct {
		body string
		want *s3Error
	}{
		{"0x5\r\nhello\r\n0\r\n\r\n", errChunkedBody},
		{"+5\r\nhello\r\n0\r\n\r\n", errChunkedBody},
		{" 5\r\nhello\r\n0\r\n\r\n", errChunkedBody},
		{"5 \r\nhello\r\n0\r\n\r\n", errChunkedBody},
		{"5\nhello\r\n0\r\n\r\n", errChunkedBody},
		{"5\r\nhello\n0\r\n\r\n", errChunkedBody},
		{"00000000000000005\r\nhello\r\n0\r\n\r\n", errChunkedBody},
		{"5;a= b\r\nhello\r\n0\r\n\r\n", errChunkedBody},
		{"5\r\nhello\r\n0\r\nPUT / HTTP/1.1\r\n\r\n", errChunkedBody},
		{strings.Repeat("1\r\nx\r\n", 200) + "0\r\n\r\n", errChunkFraming}, // more framing than maxRaw allows
	} {
		_, _, err := readTE(tc.body, 0, 7, 1000)
		var ce *chunkError
		if !errors.As(err, &ce) || ce.s3err != tc.want {
			t.Errorf("%.40q: %v; want %s", tc.body, err, tc.want.Message)
		}
		if chunkReadFailure(err) != tc.want {
			t.Errorf("%.40q: the client's answer is %v", tc.body, chunkReadFailure(err))
		}
	}
	for _, short := range []string{"5\r\nhel", "5\r\nhello\r\n", "5\r\nhello\r\n0\r\n", "5\r\nhello\r\n0\r\n\r"} {
		_, _, err := readTE(short, 2, 3, 1000)
		if err != io.ErrUnexpectedEOF || chunkReadFailure(err) != errIncompleteBody {
			t.Errorf("%q: %v; want io.ErrUnexpectedEOF", short, err)
		}
	}
}

// FuzzTEReader: whatever the bytes and the split, the de-chunker never yields more than it read,
// never reads past the body's end, and yields what a one-shot decode of the same bytes yields.
func FuzzTEReader(f *testing.F) {
	f.Add([]byte("5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nT: x\r\n\r\nPUT"), uint8(3), uint8(4))
	f.Add([]byte("0x10\r\n"), uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, cut, step uint8) {
		data, left, err := readTE(string(in), int(cut), int(step)+1, 1<<20)
		if len(data) > len(in) {
			t.Fatalf("%d bytes out of %d", len(data), len(in))
		}
		var t2 teReader
		t2.reset(nil, bytes.NewReader(nil), 1<<20)
		one := append([]byte(nil), in...)
		n, d, done, derr := t2.sc.Decode(one)
		switch {
		case done && (err != nil || string(data) != string(one[:d])):
			t.Fatalf("one-shot done with %q; reader: %q, %v", one[:d], data, err)
		case done && int(cut) <= n && left != string(in[n:]):
			t.Fatalf("read past the body: left %q; want %q", left, in[n:])
		case derr != nil && err == nil:
			t.Fatalf("one-shot %v; reader accepted %q", derr, data)
		}
	})
}
