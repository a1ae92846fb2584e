package httpparse

// Parser states. The start-line states differ between requests and
// responses; the field-line states are shared.
const (
	stInit uint8 = iota // zero value: nothing parsed yet (mode is modeNone)
	// request-line (RFC 9112 3): method SP request-target SP HTTP-version CRLF
	stLeading   // optional empty lines before the request-line (RFC 9112 2.2)
	stLeadingLF // CR of such an empty line seen
	stMethod
	stTarget
	stVersion
	// status-line (RFC 9112 4): HTTP-version SP status-code SP [ reason-phrase ] CRLF
	stRespVersion
	stStatus
	stReason
	stStatusLF
	// field lines (RFC 9112 5): *( field-line CRLF ) CRLF
	stLineStart // first byte of a field line or of the final CRLF
	stName
	stValueOWS
	stValue
	stValueLF
	stEndLF
	stDone
	stFailed
)

// Modes: which kind of head the Parser is on (0 before the first call).
const (
	modeRequest uint8 = iota + 1
	modeResponse
)

// Field flags remembered across calls.
const (
	fHost uint16 = 1 << iota
	fContentLength
	fTransferEncoding
	fChunked
	fConnClose
	fConnKeepAlive
	fTEOther // a request's Transfer-Encoding names a coding other than chunked, or an empty one
	fTETwice // a request's Transfer-Encoding names chunked more than once
)

// maxEmptyLines bounds the empty lines skipped before a request-line.
const maxEmptyLines = 8

// needMore is the internal "ran out of bytes" result; Parse turns it into
// ErrNeedMore or ErrHeadTooLarge.
var needMore = &Error{Reason: "need more"}

// Parser is the resumable state of one head being parsed. Its zero value is
// ready to use. It keeps offsets only, never a slice of the buffer, so it may
// live in per-connection state across event-loop callbacks. A Parser is not
// safe for concurrent use.
type Parser struct {
	pos      int32 // next byte to examine
	mark     int32 // start of the token being scanned
	query    int32 // index of the first '?' in the target, -1 if none yet
	state    uint8
	mode     uint8
	empties  uint8 // leading empty lines skipped
	major    uint8 // HTTP major version digit
	flags    uint16
	err      *Error // sticky error once state is stFailed
	examined int64  // bytes read so far, for tests (export_test.go)
}

// Reset prepares p for the next head, e.g. the next request on the same
// connection (whose buffer then starts at the previous HeadLen plus body).
// It must be called after Parse returned nil or an error before parsing
// another head.
func (p *Parser) Reset() { *p = Parser{} }

// Parse parses the request head at the start of buf. It returns nil when the
// head is complete (req filled, req.HeadLen bytes used), ErrNeedMore when buf
// holds an incomplete but so far valid head, or an *Error.
//
// Resuming: after ErrNeedMore, call Parse again with the same req and a buf
// that keeps the same prefix with more bytes appended (it may be a different
// slice, e.g. a new Peek). Parse continues where it stopped and never reads
// again the bytes it already scanned, except the few it re-reads to interpret
// a completed field line (Host, Content-Length, Connection, Expect values)
// or to trim a value's trailing whitespace. All Spans in req refer to the buf
// of the call that returned nil. Parse keeps no reference to buf or req.
//
// After nil the same result is returned again until Reset; after an error
// the same error is returned again until Reset. Parse does not allocate.
func (p *Parser) Parse(buf []byte, lim Limits, req *Request) error {
	switch {
	case p.state == stDone:
		return nil
	case p.state == stFailed:
		return p.err
	case p.mode == modeResponse || int(p.pos) > len(buf):
		return p.fail(ErrMisuse)
	case p.state == stInit:
		p.mode = modeRequest
		p.state = stLeading
		req.reset()
	}
	maxHead := lim.head()
	end := min(len(buf), maxHead)
	start := int(p.pos)
	i, e := start, (*Error)(nil)
	if p.state < stLineStart {
		i, e = p.requestLine(buf, i, end, lim.target(), req)
	}
	for e == nil && p.state != stDone {
		i, e = p.fieldLine(buf, i, end, &req.Headers, &req.NumHeaders)
		if e == nil && p.state == stLineStart {
			e = p.requestField(buf, req, &req.Headers[req.NumHeaders-1])
		}
	}
	p.examined += int64(i - start)
	p.pos = int32(i)
	switch {
	case e == needMore:
		if len(buf) >= maxHead {
			return p.fail(ErrHeadTooLarge)
		}
		return ErrNeedMore
	case e != nil:
		return p.fail(e)
	}
	if req.Minor == 1 && p.flags&fHost == 0 {
		return p.fail(ErrMissingHost)
	}
	if p.flags&fTransferEncoding != 0 {
		if e := p.requestTE(req.Minor); e != nil {
			return p.fail(e)
		}
		req.Chunked = true
	}
	req.KeepAlive = p.keepAlive(req.Minor)
	req.HeadLen = i
	return nil
}

func (p *Parser) fail(e *Error) error {
	p.state = stFailed
	p.err = e
	return e
}

// requestTE decides a request's Transfer-Encoding once the head is complete, so that the
// answer does not depend on the order of the field lines (RFC 9112 6.1, 6.3):
//
//	Transfer-Encoding = #transfer-coding
//
// Only a lone "chunked" (any case, no parameters, one field line) is accepted. With Content-Length
// it is 400 (likely smuggling), as on HTTP/1.0 (whose framing it would make faulty) and when
// chunked is applied twice; any other coding, or an empty one, is 501 Not Implemented.
func (p *Parser) requestTE(minor uint8) *Error {
	switch {
	case p.flags&fContentLength != 0:
		return ErrTEWithContentLength
	case minor == 0:
		return ErrTEHTTP10
	case p.flags&fTETwice != 0:
		return ErrChunkedTwice
	case p.flags&fTEOther != 0 || p.flags&fChunked == 0:
		return ErrTransferCoding
	}
	return nil
}

// keepAlive applies RFC 9112 9.3: HTTP/1.1 persists unless "close";
// HTTP/1.0 persists only with "keep-alive" (and without "close").
func (p *Parser) keepAlive(minor uint8) bool {
	if p.flags&fConnClose != 0 {
		return false
	}
	return minor == 1 || p.flags&fConnKeepAlive != 0
}

func (r *Request) reset() {
	r.Method, r.Target, r.Path, r.Query = Span{}, Span{}, Span{}, Span{}
	r.HasQuery = false
	r.Minor = 0
	r.NumHeaders = 0
	r.HeadLen = 0
	r.ContentLength = -1
	r.Host = Span{}
	r.Expect100 = false
	r.KeepAlive = false
	r.Chunked = false
}

func span(start, end int) Span { return Span{Start: int32(start), End: int32(end)} }

// requestLine scans the request-line from i (RFC 9112 3):
//
//	request-line   = method SP request-target SP HTTP-version
//	method         = token
//	request-target = origin-form ; only this form is accepted
//	origin-form    = absolute-path [ "?" query ]
//	HTTP-version   = HTTP-name "/" DIGIT "." DIGIT ; HTTP-name = %s"HTTP"
//
// ending in CRLF. Empty lines before it are skipped, at most maxEmptyLines.
// It returns with p.state == stLineStart when the line is complete.
func (p *Parser) requestLine(buf []byte, i, end, maxTarget int, req *Request) (int, *Error) {
	for i < end {
		switch p.state {
		case stLeading:
			switch buf[i] {
			case '\r':
				p.state = stLeadingLF
				i++
			case '\n':
				return i, ErrBareLF
			default:
				p.mark = int32(i)
				p.state = stMethod
			}
		case stLeadingLF:
			if buf[i] != '\n' {
				return i, ErrBareCR
			}
			i++
			if p.empties++; p.empties > maxEmptyLines {
				return i, ErrEmptyLines
			}
			p.state = stLeading
		case stMethod:
			for i < end && class[buf[i]]&cToken != 0 {
				i++
			}
			if i == end {
				return i, needMore
			}
			switch c := buf[i]; {
			case c == '\n':
				return i, ErrBareLF
			case c != ' ' || i == int(p.mark):
				return i, ErrMethod
			}
			req.Method = span(int(p.mark), i)
			i++
			p.mark, p.query = int32(i), -1
			p.state = stTarget
		case stTarget:
			var e *Error
			if i, e = p.target(buf, i, end, maxTarget, req); e != nil {
				return i, e
			}
		case stVersion:
			for i < end {
				var e *Error
				if i, e = p.version(buf[i], i, &req.Minor, '\r'); e != nil {
					return i, e
				}
				if p.state == stLineStart {
					break
				}
			}
		default:
			return i, nil
		}
	}
	if p.state == stLineStart {
		return i, nil
	}
	return i, needMore
}

// target scans the origin-form request-target from p.mark to the SP after it (i < end), splitting
// it at the first '?' into Path and Query, then moves to stVersion with p.mark at the version's
// start. p.query (the '?' seen so far, or -1) carries over a needMore. A target longer than
// maxTarget is ErrURITooLong.
//
//	origin-form = absolute-path [ "?" query ]
func (p *Parser) target(buf []byte, i, end, maxTarget int, req *Request) (int, *Error) {
	mark := int(p.mark)
	if i == mark && buf[i] != '/' {
		switch buf[i] {
		case ' ', '\r':
			return i, ErrRequestLine
		case '\n':
			return i, ErrBareLF
		}
		return i, ErrTarget
	}
	// At most maxTarget+1 bytes of target are looked at: one more
	// than allowed proves the target too long.
	stop := end
	if t := mark + maxTarget + 1; t < stop {
		stop = t
	}
	for i < stop {
		c := buf[i]
		if class[c]&cTarget == 0 {
			break
		}
		if c == '?' && p.query < 0 {
			p.query = int32(i)
		}
		i++
	}
	if i == stop {
		if i-mark > maxTarget {
			return i, ErrURITooLong
		}
		return i, needMore
	}
	switch buf[i] {
	case ' ':
	case '\r':
		return i, ErrRequestLine
	case '\n':
		return i, ErrBareLF
	default:
		return i, ErrTarget
	}
	req.Target = span(mark, i)
	if q := int(p.query); q >= 0 {
		req.Path, req.Query, req.HasQuery = span(mark, q), span(q+1, i), true
	} else {
		req.Path = req.Target
	}
	i++
	p.mark = int32(i)
	p.state = stVersion
	return i, nil
}

// version checks byte c at offset i of "HTTP/D.D" followed by term (CR for a
// request-line, SP for a status-line) and, for a request, LF. p.mark is the
// version's start. It returns the next offset; p.state becomes stLineStart
// after the request-line's LF, or stStatus after the status-line's SP.
//
//	HTTP-version = HTTP-name "/" DIGIT "." DIGIT
//	HTTP-name    = %s"HTTP"
//
// Only 1.0 and 1.1 are accepted; any other well-formed version gives
// ErrVersion (505), anything else ErrMalformedVersion.
func (p *Parser) version(c byte, i int, minor *uint8, term byte) (int, *Error) {
	switch k := i - int(p.mark); {
	case k < 5:
		if c != "HTTP/"[k] {
			return i, badVersionByte(c)
		}
	case k == 5 || k == 7:
		if c < '0' || c > '9' {
			return i, badVersionByte(c)
		}
		if k == 5 {
			p.major = c - '0'
		} else {
			*minor = c - '0'
		}
	case k == 6:
		if c != '.' {
			return i, badVersionByte(c)
		}
	case k == 8:
		if c != term {
			return i, badVersionByte(c)
		}
		if p.major != 1 || *minor > 1 {
			return i, ErrVersion
		}
		if term == ' ' {
			p.mark = int32(i + 1)
			p.state = stStatus
		}
	default: // k == 9, request-line only
		if c != '\n' {
			return i, ErrBareCR
		}
		p.state = stLineStart
	}
	return i + 1, nil
}

func badVersionByte(c byte) *Error {
	if c == '\n' {
		return ErrBareLF
	}
	return ErrMalformedVersion
}
