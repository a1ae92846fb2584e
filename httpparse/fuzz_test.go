package httpparse

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// fuzzLimits are small so that the fuzzer reaches both limits.
var fuzzLimits = Limits{MaxHeadBytes: 2048, MaxTargetBytes: 200}

func checkSpan(t *testing.T, what string, s Span, headLen int) {
	if s.Start < 0 || s.Start > s.End || int(s.End) > headLen {
		t.Fatalf("%s = %+v out of [0, %d]", what, s, headLen)
	}
}

// checkHeaders checks what holds for every complete head.
func checkHeaders(t *testing.T, data []byte, headLen int, hs []Header) {
	if headLen < 4 || headLen > len(data) || !bytes.HasSuffix(data[:headLen], []byte("\r\n\r\n")) {
		t.Fatalf("HeadLen %d does not end a CRLF CRLF in %q", headLen, data)
	}
	for i := 0; i < headLen; i++ {
		if data[i] == '\n' && (i == 0 || data[i-1] != '\r') {
			t.Fatalf("accepted a bare LF at %d", i)
		}
	}
	if len(hs) > MaxHeaders {
		t.Fatalf("NumHeaders %d > %d", len(hs), MaxHeaders)
	}
	for _, h := range hs {
		checkSpan(t, "Name", h.Name, headLen)
		checkSpan(t, "Value", h.Value, headLen)
		if h.Name.Len() == 0 {
			t.Fatalf("empty header name")
		}
		if v := h.Value.Bytes(data); len(v) > 0 && (class[v[0]]&cOWS != 0 || class[v[len(v)-1]]&cOWS != 0) {
			t.Fatalf("value %q not trimmed", v)
		}
	}
}

// FuzzParseRequest checks that parsing never panics, that feeding the input
// one byte at a time and in two pieces gives exactly the one-shot result,
// and that a complete head's spans lie inside it.
func FuzzParseRequest(f *testing.F) {
	for _, tc := range validRequests {
		f.Add([]byte(tc.raw))
	}
	for _, tc := range badRequests {
		f.Add([]byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Parser
		one := new(Request)
		err := p.Parse(data, fuzzLimits, one)

		var pb Parser
		inc := new(Request)
		ierr := ErrNeedMore
		for i := 1; i <= len(data) && ierr == ErrNeedMore; i++ {
			ierr = pb.Parse(data[:i], fuzzLimits, inc)
		}
		if ierr != err {
			t.Fatalf("byte by byte: %v; one-shot: %v", ierr, err)
		}
		if len(data) > 1 {
			var p2 Parser
			two := new(Request)
			cut := len(data) / 3
			if e := p2.Parse(data[:cut], fuzzLimits, two); e == ErrNeedMore {
				e = p2.Parse(data, fuzzLimits, two)
				if e != err {
					t.Fatalf("two pieces: %v; one-shot: %v", e, err)
				}
			}
		}
		if err != nil {
			if _, ok := err.(*Error); !ok && err != ErrNeedMore {
				t.Fatalf("error %v is neither *Error nor ErrNeedMore", err)
			}
			return
		}
		if !reflect.DeepEqual(inc, one) {
			t.Fatalf("byte-by-byte result differs from one-shot")
		}
		checkHeaders(t, data, one.HeadLen, one.Headers[:one.NumHeaders])
		for _, s := range []Span{one.Method, one.Target, one.Path, one.Query, one.Host} {
			checkSpan(t, "request span", s, one.HeadLen)
		}
		if one.Method.Len() == 0 || data[one.Path.Start] != '/' || one.Target.Len() > fuzzLimits.MaxTargetBytes {
			t.Fatalf("bad request-line fields %+v", one)
		}
		if one.Minor > 1 || one.ContentLength < -1 {
			t.Fatalf("Minor %d ContentLength %d", one.Minor, one.ContentLength)
		}
		if one.Minor == 1 && one.HeaderCount(data, "host") != 1 || one.HeaderCount(data, "host") > 1 {
			t.Fatalf("accepted Host count %d for HTTP/1.%d", one.HeaderCount(data, "host"), one.Minor)
		}
		if n := one.HeaderCount(data, "content-length"); n > 1 || n == 0 && one.ContentLength != -1 {
			t.Fatalf("Content-Length lines %d, ContentLength %d", n, one.ContentLength)
		}
		if n := one.HeaderCount(data, "transfer-encoding"); n > 1 || (n == 1) != one.Chunked ||
			one.Chunked && (one.ContentLength != -1 || one.Minor != 1) {
			t.Fatalf("Transfer-Encoding lines %d, Chunked %v, ContentLength %d, Minor %d", n, one.Chunked, one.ContentLength, one.Minor)
		}
	})
}

// FuzzParseResponse is FuzzParseRequest for response heads.
func FuzzParseResponse(f *testing.F) {
	for _, tc := range validResponses {
		f.Add([]byte(tc.raw))
	}
	for _, tc := range badResponses {
		f.Add([]byte(tc.raw))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Parser
		one := new(Response)
		err := p.ParseResponse(data, fuzzLimits, one)

		var pb Parser
		inc := new(Response)
		ierr := ErrNeedMore
		for i := 1; i <= len(data) && ierr == ErrNeedMore; i++ {
			ierr = pb.ParseResponse(data[:i], fuzzLimits, inc)
		}
		if ierr != err {
			t.Fatalf("byte by byte: %v; one-shot: %v", ierr, err)
		}
		if err != nil {
			if _, ok := err.(*Error); !ok && err != ErrNeedMore {
				t.Fatalf("error %v is neither *Error nor ErrNeedMore", err)
			}
			return
		}
		if !reflect.DeepEqual(inc, one) {
			t.Fatalf("byte-by-byte result differs from one-shot")
		}
		checkHeaders(t, data, one.HeadLen, one.Headers[:one.NumHeaders])
		checkSpan(t, "Reason", one.Reason, one.HeadLen)
		if one.Status < 100 || one.Status > 999 || one.Minor > 1 || one.Chunked && one.ContentLength != -1 {
			t.Fatalf("Status %d Minor %d Chunked %v ContentLength %d", one.Status, one.Minor, one.Chunked, one.ContentLength)
		}
	})
}

// FuzzChunkScanner checks that scanning never panics and that one shot,
// byte by byte and two pieces agree on where the body ends and on the error.
func FuzzChunkScanner(f *testing.F) {
	for _, b := range validChunked {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s ChunkScanner
		n, done, err := s.Scan(data)
		if n < 0 || n > len(data) || done && err != nil || !done && err == nil && n != len(data) {
			t.Fatalf("Scan = %d, %v, %v for %d bytes", n, done, err, len(data))
		}

		var sb ChunkScanner
		total, bdone, berr := 0, false, error(nil)
		for i := 0; i < len(data) && !bdone && berr == nil; i++ {
			k, d, e := sb.Scan(data[i : i+1])
			total, bdone, berr = total+k, d, e
		}
		if bdone != done || berr != err || total != n {
			t.Fatalf("byte by byte: %d, %v, %v; one-shot: %d, %v, %v", total, bdone, berr, n, done, err)
		}

		cut := len(data) / 2
		var s2 ChunkScanner
		k1, d1, e1 := s2.Scan(data[:cut])
		if !d1 && e1 == nil {
			k2, d2, e2 := s2.Scan(data[cut:])
			k1, d1, e1 = k1+k2, d2, e2
		}
		if d1 != done || e1 != err || k1 != n {
			t.Fatalf("two pieces: %d, %v, %v; one-shot: %d, %v, %v", k1, d1, e1, n, done, err)
		}
	})
}

// FuzzChunkDecode checks the request de-chunker against refDechunk, a plain reading of the strict
// grammar: Decode never yields more bytes than it consumed, finishes exactly where the reference
// finds a complete body and with the same data, and never accepts what the reference rejects;
// reading the input through MinRemaining-bounded pieces gives the same result and stops exactly at
// the body's end.
func FuzzChunkDecode(f *testing.F) {
	for _, b := range validChunked {
		f.Add([]byte(b))
	}
	for _, b := range []string{"5;a=b;c=\"q \\\" x\"\r\nhello\r\n0;z\r\nT: v\r\n\r\nGET", "0x10\r\n", "10 \r\n",
		"0\r\nGET / HTTP/1.1\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "00000000000000010\r\n"} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, wantN, wantOK := refDechunk(in)
		var s ChunkScanner
		s.ResetRequest()
		p := append([]byte(nil), in...)
		n, data, done, err := s.Decode(p)
		if data > n || n > len(in) || done && err != nil || !done && err == nil && n != len(in) {
			t.Fatalf("Decode = %d, %d, %v, %v for %d bytes", n, data, done, err, len(in))
		}
		if done && (!wantOK || n != wantN || string(p[:data]) != string(want)) {
			t.Fatalf("Decode accepted %q (%d bytes, data %q); reference: ok %v, %d bytes, data %q", in, n, p[:data], wantOK, wantN, want)
		}
		if wantOK && !done {
			t.Fatalf("Decode(%q) = %d, %v, %v; the reference accepts %d bytes", in, n, done, err, wantN)
		}
		if done && string(p[n:]) != string(in[n:]) {
			t.Fatalf("Decode touched the bytes after the body")
		}
		// Bounded pieces.
		s.ResetRequest()
		var got []byte
		off, sdone := 0, false
		var serr error
		for off < len(in) && !sdone && serr == nil {
			k := int(min(s.MinRemaining(), int64(len(in)-off), 7))
			if k <= 0 {
				t.Fatalf("MinRemaining = %d before the end", s.MinRemaining())
			}
			piece := append([]byte(nil), in[off:off+k]...)
			var m, d int
			m, d, sdone, serr = s.Decode(piece)
			if serr == nil && m != k {
				t.Fatalf("bounded Decode consumed %d of %d", m, k)
			}
			got = append(got, piece[:d]...)
			off += m
		}
		if sdone != done || serr != err || sdone && (off != n || string(got) != string(p[:data])) {
			t.Fatalf("bounded: %d, %v, %v, %q; one-shot: %d, %v, %v, %q", off, sdone, serr, got, n, done, err, p[:data])
		}
	})
}

// refDechunk decodes a strict request chunked body the simple way (RFC 9112 7.1 with the bounds of
// ResetRequest). ok reports a complete, valid body of n bytes.
func refDechunk(b []byte) (data []byte, n int, ok bool) {
	isTok := func(c byte) bool {
		return c > ' ' && c < 0x7f && !strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c))
	}
	isVal := func(c byte) bool { return c == ' ' || c == '\t' || c > ' ' && c != 0x7f }
	line := func(pos int) ([]byte, int, bool) {
		i := bytes.Index(b[pos:], []byte("\r\n"))
		if i < 0 {
			return nil, 0, false
		}
		return b[pos : pos+i], pos + i + 2, true
	}
	pos := 0
	for {
		l, next, found := line(pos)
		if !found || len(l)+1 > maxRequestChunkLine {
			return nil, 0, false
		}
		d := 0
		var size int64
		for d < len(l) && unhex(l[d]) >= 0 {
			size = size<<4 | int64(unhex(l[d]))
			d++
			if d > maxRequestChunkDigits || size > MaxRequestChunk {
				return nil, 0, false
			}
		}
		if d == 0 || !refExt(l[d:], isTok, isVal) {
			return nil, 0, false
		}
		pos = next
		if size == 0 {
			break
		}
		if int64(len(b)-pos) < size+2 || string(b[pos+int(size):pos+int(size)+2]) != "\r\n" {
			return nil, 0, false
		}
		data = append(data, b[pos:pos+int(size)]...)
		pos += int(size) + 2
	}
	start := pos
	for {
		l, next, found := line(pos)
		if !found || next-start > maxTrailerBytes {
			return nil, 0, false
		}
		pos = next
		if len(l) == 0 {
			return data, pos, true
		}
		name, value, colon := bytes.Cut(l, []byte(":"))
		if !colon || len(name) == 0 {
			return nil, 0, false
		}
		for _, c := range name {
			if !isTok(c) {
				return nil, 0, false
			}
		}
		for _, c := range value {
			if !isVal(c) {
				return nil, 0, false
			}
		}
	}
}

// refExt checks *( ";" token [ "=" ( token / quoted-string ) ] ).
func refExt(x []byte, isTok, isVal func(byte) bool) bool {
	for len(x) > 0 {
		if x[0] != ';' {
			return false
		}
		x = x[1:]
		k := 0
		for k < len(x) && isTok(x[k]) {
			k++
		}
		if k == 0 {
			return false
		}
		x = x[k:]
		if len(x) == 0 || x[0] != '=' {
			continue
		}
		x = x[1:]
		if len(x) > 0 && x[0] == '"' {
			k = 1
			for ; k < len(x) && x[k] != '"'; k++ {
				if x[k] == '\\' {
					k++
				}
				if k >= len(x) || !isVal(x[k]) {
					return false
				}
			}
			if k >= len(x) {
				return false
			}
			x = x[k+1:]
			continue
		}
		k = 0
		for k < len(x) && isTok(x[k]) {
			k++
		}
		if k == 0 {
			return false
		}
		x = x[k:]
	}
	return true
}
