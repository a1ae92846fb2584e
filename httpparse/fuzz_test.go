package httpparse

import (
	"bytes"
	"reflect"
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
		if one.HeaderCount(data, "transfer-encoding") != 0 {
			t.Fatalf("accepted a Transfer-Encoding")
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
