package httpparse

import (
	"reflect"
	"strings"
	"testing"
)

// resumeInputs are complete heads (valid or not) fed prefix by prefix.
func resumeInputs(t *testing.T) []string {
	var in []string
	for _, tc := range validRequests {
		in = append(in, tc.raw)
	}
	for _, tc := range badRequests {
		if tc.lim == (Limits{}) {
			in = append(in, tc.raw)
		}
	}
	for _, name := range realHeads {
		in = append(in, string(readHead(t, name)))
	}
	return in
}

// TestParsePrefixes feeds every prefix buf[:i] of each head to one Parser,
// as a growing buffer would arrive: ErrNeedMore is required until the head
// is complete (or an error is found), then exactly the one-shot result.
func TestParsePrefixes(t *testing.T) {
	for _, raw := range resumeInputs(t) {
		buf := []byte(raw)
		var one Request
		var p1 Parser
		wantErr := p1.Parse(buf, Limits{}, &one)

		var p Parser
		var req Request
		var err error
		i := 1
		for ; i <= len(buf); i++ {
			// A fresh copy each time: the parser may keep no slice of buf.
			b := append([]byte(nil), buf[:i]...)
			if err = p.Parse(b, Limits{}, &req); err != ErrNeedMore {
				break
			}
		}
		if err != wantErr {
			t.Errorf("%q: incremental error %v at prefix %d; one-shot %v", raw, err, i, wantErr)
			continue
		}
		if err == nil {
			if i != one.HeadLen {
				t.Errorf("%q: completed at prefix %d; want HeadLen %d", raw, i, one.HeadLen)
			}
			if !reflect.DeepEqual(req, one) {
				t.Errorf("%q: incremental result differs from one-shot", raw)
			}
		}
		if p.Examined() != p1.Examined() {
			t.Errorf("%q: examined %d bytes byte by byte; %d one-shot", raw, p.Examined(), p1.Examined())
		}
	}
}

// TestParseChunkBoundaries splits each head in two at every position (the
// CRLF split included) and feeds the growing buffer in two calls.
func TestParseChunkBoundaries(t *testing.T) {
	for _, name := range realHeads {
		buf := readHead(t, name)
		var one Request
		var p1 Parser
		if err := p1.Parse(buf, Limits{}, &one); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for cut := 1; cut < len(buf); cut++ {
			var p Parser
			var req Request
			if err := p.Parse(buf[:cut], Limits{}, &req); err != ErrNeedMore {
				t.Fatalf("%s: Parse(buf[:%d]) = %v; want ErrNeedMore", name, cut, err)
			}
			if err := p.Parse(buf, Limits{}, &req); err != nil {
				t.Fatalf("%s: cut %d: Parse(buf) = %v; want nil", name, cut, err)
			}
			if !reflect.DeepEqual(req, one) {
				t.Fatalf("%s: cut %d: result differs from one-shot", name, cut)
			}
		}
	}
}

// TestNoRescan proves the parser resumes: fed one byte at a time, a head of
// n bytes is read about n times in total, not n²/2, and exactly as often as
// in one shot; and bytes before the current line are never looked at again
// (they are overwritten with garbage between calls).
func TestNoRescan(t *testing.T) {
	for _, size := range []int{1 << 10, 8 << 10, 60 << 10} {
		raw := "PUT /k HTTP/1.1\r\nHost: h\r\n"
		for len(raw) < size-64 {
			raw += "X-Amz-Meta-Pad: " + strings.Repeat("v", 500) + "\r\n"
		}
		raw += "Content-Length: 1\r\n\r\n"
		buf := []byte(raw)
		var p Parser
		var req Request
		for i := 1; i <= len(buf); i++ {
			err := p.Parse(buf[:i], Limits{}, &req)
			if i < len(buf) && err != ErrNeedMore || i == len(buf) && err != nil {
				t.Fatalf("size %d: Parse(buf[:%d]) = %v", size, i, err)
			}
		}
		if n := p.Examined(); n > 2*int64(len(buf)) {
			t.Errorf("size %d: examined %d bytes fed one at a time; want <= %d", size, n, 2*len(buf))
		}
	}

	// Poison: garbage before the current line must not matter.
	raw := "PUT /k HTTP/1.1\r\nHost: h\r\nX-A: " + strings.Repeat("a", 30) + "\r\nX-B: b\r\n\r\n"
	buf := []byte(raw)
	var p Parser
	var req Request
	lineStart := 0
	for i := 1; i <= len(buf); i++ {
		b := append([]byte(nil), buf[:i]...)
		for j := 0; j < lineStart; j++ {
			b[j] = 0 // a NUL anywhere in a head is invalid
		}
		err := p.Parse(b, Limits{}, &req)
		if i < len(buf) && err != ErrNeedMore || i == len(buf) && err != nil {
			t.Fatalf("poisoned Parse(buf[:%d]) = %v", i, err)
		}
		if buf[i-1] == '\n' {
			lineStart = i
		}
	}
}
