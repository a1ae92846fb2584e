package httpparse

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// fieldLine scans from i up to the end of one field line or of the head
// (RFC 9112 5, RFC 9110 5.5):
//
//	field-line  = field-name ":" OWS field-value OWS
//	field-name  = token
//	field-value = *field-content
//
// with CRLF line endings. No whitespace is allowed between the name and the
// colon (RFC 9112 5.1: 400). A line starting with SP or HTAB is obs-fold
// (RFC 9112 5.2), rejected, as is whitespace before the first field line
// (RFC 9112 2.2). It returns nil with p.state == stLineStart after a
// complete field line (stored as hs[*n-1]), nil with p.state == stDone after
// the final CRLF, or needMore or an error.
func (p *Parser) fieldLine(buf []byte, i, end int, hs *[MaxHeaders]Header, n *int) (int, *Error) {
	buf = buf[:end] // lets the compiler drop bounds checks below
	for i < len(buf) {
		switch p.state {
		case stLineStart:
			switch buf[i] {
			case '\r':
				p.state = stEndLF
				i++
				continue
			case '\n':
				return i, ErrBareLF
			case ' ', '\t':
				if *n == 0 {
					return i, ErrLeadingWhitespace
				}
				return i, ErrObsFold
			}
			if *n == MaxHeaders {
				return i, ErrTooManyHeaders
			}
			p.mark = int32(i)
			p.state = stName
		case stName:
			for i < len(buf) && class[buf[i]]&cToken != 0 {
				i++
			}
			if i == len(buf) {
				return i, needMore
			}
			switch buf[i] {
			case ':':
			case ' ', '\t':
				return i, ErrSpaceBeforeColon
			case '\r':
				return i, ErrMissingColon
			case '\n':
				return i, ErrBareLF
			default:
				return i, ErrHeaderName
			}
			if i == int(p.mark) {
				return i, ErrEmptyHeaderName
			}
			hs[*n].Name = span(int(p.mark), i)
			i++
			p.state = stValueOWS
		case stValueOWS:
			for i < len(buf) && class[buf[i]]&cOWS != 0 {
				i++
			}
			if i == len(buf) {
				return i, needMore
			}
			p.mark = int32(i)
			p.state = stValue
		case stValue:
			i = scanValue(buf, i, len(buf))
			if i == len(buf) {
				return i, needMore
			}
			switch buf[i] {
			case '\r':
			case '\n':
				return i, ErrBareLF
			default:
				return i, ErrHeaderValue
			}
			// Trim trailing OWS (the value started at a non-OWS byte).
			v := i
			for v > int(p.mark) && class[buf[v-1]]&cOWS != 0 {
				v--
			}
			p.examined += int64(i - v)
			hs[*n].Value = span(int(p.mark), v)
			i++
			p.state = stValueLF
		case stValueLF:
			if buf[i] != '\n' {
				return i, ErrBareCR
			}
			*n++
			p.state = stLineStart
			return i + 1, nil
		case stEndLF:
			if buf[i] != '\n' {
				return i, ErrBareCR
			}
			p.state = stDone
			return i + 1, nil
		}
	}
	return i, needMore
}

// scanValue returns the index of the first byte at or after i that is not
// field-vchar, SP or HTAB, or end. Eight bytes at a time while no CTL or DEL
// is among them; such a byte is then classified alone.
func scanValue(buf []byte, i, end int) int {
	for i < end {
		if i+8 <= end {
			m := ctlOrDel(binary.LittleEndian.Uint64(buf[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		}
		if class[buf[i]]&cValue == 0 {
			return i
		}
		i++
	}
	return i
}

// Field names with a meaning to the parser.
const (
	kOther uint8 = iota
	kHost
	kContentLength
	kTransferEncoding
	kConnection
	kExpect
)

// fieldKind classifies a field name (a valid token) case-insensitively.
func (p *Parser) fieldKind(name []byte) uint8 {
	var k uint8
	var s string
	switch len(name) {
	case 4:
		k, s = kHost, "host"
	case 6:
		k, s = kExpect, "expect"
	case 10:
		k, s = kConnection, "connection"
	case 14:
		k, s = kContentLength, "content-length"
	case 17:
		k, s = kTransferEncoding, "transfer-encoding"
	default:
		return kOther
	}
	p.examined += int64(len(name))
	if equalFold(name, s) {
		return k
	}
	return kOther
}

// requestField applies the meaning of a completed request field line.
func (p *Parser) requestField(buf []byte, req *Request, h *Header) *Error {
	k := p.fieldKind(h.Name.Bytes(buf))
	if k == kOther {
		return nil
	}
	v := h.Value.Bytes(buf)
	switch k {
	case kHost:
		// RFC 9112 3.2: more than one Host, or an invalid one, is a 400.
		if p.flags&fHost != 0 {
			return ErrDuplicateHost
		}
		p.flags |= fHost
		p.examined += int64(len(v))
		for _, c := range v {
			if class[c]&cHost == 0 {
				return ErrInvalidHost
			}
		}
		req.Host = h.Value
	case kContentLength:
		n, e := p.contentLength(v)
		if e != nil {
			return e
		}
		req.ContentLength = n
	case kTransferEncoding:
		// Noted here, decided once the head is complete (requestTE).
		p.flags |= fTransferEncoding
		p.examined += int64(len(v))
		for j := 0; j < len(v); {
			var el []byte
			el, j = nextElement(v, j)
			switch {
			case !equalFold(el, "chunked"):
				p.flags |= fTEOther
			case p.flags&fChunked != 0:
				p.flags |= fTETwice
			default:
				p.flags |= fChunked
			}
		}
		if len(v) == 0 {
			p.flags |= fTEOther
		}
	case kConnection:
		p.connection(v)
	case kExpect:
		// RFC 9110 10.1.1: Expect = #expectation; only 100-continue is
		// defined, anything else "may" be answered 417. S3 ignores any
		// other expectation (and sends no 100 Continue for it), so it is
		// ignored here too; 100-continue in the same list still counts.
		p.examined += int64(len(v))
		for j := 0; j < len(v); {
			var el []byte
			el, j = nextElement(v, j)
			switch {
			case len(el) == 0:
			case equalFold(el, "100-continue"):
				// "A server that receives a 100-continue expectation in
				// an HTTP/1.0 request MUST ignore that expectation."
				req.Expect100 = req.Minor == 1
			}
		}
	}
	return nil
}

// contentLength parses a Content-Length value (RFC 9110 8.6):
//
//	Content-Length = 1*DIGIT
//
// strictly: no sign, no list, no second field line (even with the same
// value), no overflow of int64.
func (p *Parser) contentLength(v []byte) (int64, *Error) {
	if p.flags&fContentLength != 0 {
		return 0, ErrDuplicateContentLength
	}
	p.flags |= fContentLength
	if len(v) == 0 {
		return 0, ErrInvalidContentLength
	}
	const cutoff = math.MaxInt64 / 10
	var n int64
	for j, c := range v {
		d := int64(c) - '0'
		if d < 0 || d > 9 || n > cutoff || n == cutoff && d > math.MaxInt64%10 {
			p.examined += int64(j + 1)
			return 0, ErrInvalidContentLength
		}
		n = n*10 + d
	}
	p.examined += int64(len(v))
	return n, nil
}

// connection records the "close" and "keep-alive" options of a Connection
// field (RFC 9110 7.6.1: Connection = #connection-option, case-insensitive).
func (p *Parser) connection(v []byte) {
	p.examined += int64(len(v))
	for j := 0; j < len(v); {
		var el []byte
		el, j = nextElement(v, j)
		switch {
		case equalFold(el, "close"):
			p.flags |= fConnClose
		case equalFold(el, "keep-alive"):
			p.flags |= fConnKeepAlive
		}
	}
}

// nextElement returns the list element of v starting at j, trimmed of OWS,
// and the index after its comma (RFC 9110 5.6.1: #element, empty elements
// allowed).
func nextElement(v []byte, j int) (el []byte, next int) {
	k := j
	for k < len(v) && v[k] != ',' {
		k++
	}
	next = k + 1
	for j < k && class[v[j]]&cOWS != 0 {
		j++
	}
	for k > j && class[v[k-1]]&cOWS != 0 {
		k--
	}
	return v[j:k], next
}
