package httpparse

import "math"

// Bounds on the framing a ChunkScanner accepts. Chunk data is not bounded in a
// response; in a request a chunk is at most MaxRequestChunk bytes.
const (
	maxChunkLine    = 4 << 10  // chunk-size line: size, extensions, CRLF
	maxTrailerBytes = 16 << 10 // trailer section including its final CRLF

	maxRequestChunkLine   = 256 // a request's chunk-size line: size, extensions, CRLF
	maxRequestChunkDigits = 16  // hex digits of a request's chunk-size, leading zeros included
	// MaxRequestChunk bounds one chunk of a request body (1 TiB): far above what clients send
	// (the SDKs' chunks are at most a few MiB), far below an int64 overflow.
	MaxRequestChunk = 1 << 40
)

// ChunkScanner states.
const (
	csSize uint8 = iota // first byte of a chunk-size line
	csSizeDigits
	csSizeOWS // BWS after the size, before ";" or CR
	csExt     // after ";": chunk-ext up to CR
	csSizeLF
	csData
	csDataCR
	csDataLF
	csTrailerStart // first byte of a trailer field line or of the final CRLF
	csTrailerName
	csTrailerValue
	csTrailerLF
	csEndLF
	csDone
	csFailed
	// Request chunk extensions (strict): ";" name [ "=" ( token / quoted-string ) ].
	csXName0  // after ";": the first byte of a name
	csXName   // in a name
	csXVal0   // after "=": the first byte of a value
	csXVal    // in a token value
	csXQuoted // in a quoted-string
	csXQEsc   // after a backslash in a quoted-string
	csXQEnd   // after the closing quote
)

// ChunkScanner finds the end of a chunked message body (RFC 9112 7.1)
// without decoding it, so a proxy can relay the framed bytes verbatim:
//
//	chunked-body = *chunk last-chunk trailer-section CRLF
//	chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//	chunk-size   = 1*HEXDIG
//	last-chunk   = 1*("0") [ chunk-ext ] CRLF
//	chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//	trailer-section = *( field-line CRLF )
//
// Chunk extensions are checked only for field-value bytes after the first
// ";" (their inner grammar is left to the final recipient); a chunk-size line
// is at most 4 KiB and a trailer section at most 16 KiB. Trailer field lines
// are checked like header field lines. Its zero value is ready to use; it
// keeps no slice of its input and is not safe for concurrent use.
//
// A request body is scanned strictly instead (ResetRequest): the chunk-size is
// 1 to 16 HEXDIG with no whitespace around it and at most MaxRequestChunk,
// and extensions follow RFC 9112 7.1.1 without BWS,
//
//	chunk-ext      = *( ";" chunk-ext-name [ "=" chunk-ext-val ] )
//	chunk-ext-name = token
//	chunk-ext-val  = token / quoted-string
//
// within a chunk-size line of at most 256 bytes; anything else is an error,
// never a second reading of the framing.
type ChunkScanner struct {
	remain int64 // chunk-data bytes still to come (csData), or the size being read
	line   int32 // bytes of the current chunk-size line, or of the trailer section
	state  uint8
	strict bool // a request body (ResetRequest)
	err    *Error
}

// Reset prepares s for the next chunked response body.
func (s *ChunkScanner) Reset() { *s = ChunkScanner{} }

// ResetRequest prepares s for the next chunked request body, scanned strictly
// (see ChunkScanner).
func (s *ChunkScanner) ResetRequest() { *s = ChunkScanner{strict: true} }

// MinRemaining returns the fewest bytes the body can still have after what was
// scanned: 0 once it is done (or failed). A reader that never asks its source
// for more than this many bytes at a time cannot read past the body's end, so
// whatever follows it (a pipelined request) stays unread. It saturates at
// math.MaxInt64.
func (s *ChunkScanner) MinRemaining() int64 {
	const last = int64(len("0\r\n\r\n"))
	switch s.state {
	case csSize:
		return last
	case csSizeDigits, csSizeOWS, csExt, csXName0, csXName, csXVal0, csXVal, csXQuoted, csXQEsc, csXQEnd, csSizeLF:
		n := int64(2) // the line's CRLF
		if s.state == csSizeLF {
			n = 1
		}
		if s.remain == 0 {
			return n + 2 // the last chunk and the final CRLF
		}
		return satAdd(s.remain, n+2+last)
	case csData:
		return satAdd(s.remain, 2+last)
	case csDataCR:
		return 2 + last
	case csDataLF:
		return 1 + last
	case csTrailerStart:
		return 2
	case csTrailerName:
		return 5 // ":" CRLF CRLF, and a name byte at least
	case csTrailerValue:
		return 4
	case csTrailerLF:
		return 3
	case csEndLF:
		return 1
	}
	return 0
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Scan consumes the next piece p of the body (the bytes that follow those of
// the previous call). It returns how many bytes of p belong to the body and
// whether the body (last chunk, trailer section and final CRLF) ended within
// them: when done, p[n:] belongs to whatever follows the body; otherwise
// n == len(p). A malformed body gives an error in ErrBadChunk's category
// with n the bytes before the offending one; errors are sticky, and after
// done Scan returns 0, true, nil until Reset. Scan does not allocate and
// keeps no reference to p; chunk data is skipped without being read.
func (s *ChunkScanner) Scan(p []byte) (n int, done bool, err error) {
	switch s.state {
	case csDone:
		return 0, true, nil
	case csFailed:
		return 0, false, s.err
	}
	i := 0
	for i < len(p) {
		if s.state == csData {
			k := int64(len(p) - i)
			if k > s.remain {
				k = s.remain
			}
			i += int(k)
			if s.remain -= k; s.remain == 0 {
				s.state = csDataCR
			}
			continue
		}
		if e := s.step(p[i]); e != nil {
			s.state, s.err = csFailed, e
			return i, false, e
		}
		i++
		if s.state == csDone {
			return i, true, nil
		}
	}
	return i, false, nil
}

// Decode is Scan that also decodes: it consumes p exactly as Scan does and
// moves the chunk-data bytes among the consumed ones, in order, to the front
// of p; data is how many (p[:data] is the decoded body, p[data:n] is
// overwritten framing). When done, p[n:] is untouched and belongs to what
// follows the body. Decode does not allocate and keeps no reference to p.
func (s *ChunkScanner) Decode(p []byte) (n, data int, done bool, err error) {
	switch s.state {
	case csDone:
		return 0, 0, true, nil
	case csFailed:
		return 0, 0, false, s.err
	}
	i := 0
	for i < len(p) {
		if s.state == csData {
			k := int64(len(p) - i)
			if k > s.remain {
				k = s.remain
			}
			if data != i { // data already in place (a read that began inside a chunk) stays put
				copy(p[data:], p[i:i+int(k)])
			}
			data += int(k)
			i += int(k)
			if s.remain -= k; s.remain == 0 {
				s.state = csDataCR
			}
			continue
		}
		if e := s.step(p[i]); e != nil {
			s.state, s.err = csFailed, e
			return i, data, false, e
		}
		i++
		if s.state == csDone {
			return i, data, true, nil
		}
	}
	return i, data, false, nil
}

// step advances the framing state machine by one byte c.
func (s *ChunkScanner) step(c byte) *Error {
	if s.strict {
		return s.stepStrict(c)
	}
	switch s.state {
	case csSize, csSizeDigits:
		if s.line++; s.line > maxChunkLine {
			return ErrChunkExtension
		}
		if d := unhex(c); d >= 0 {
			if s.remain > math.MaxInt64>>4 {
				return ErrChunkTooLarge
			}
			s.remain = s.remain<<4 | int64(d)
			s.state = csSizeDigits
			return nil
		}
		if s.state == csSize {
			return ErrChunkSize
		}
		return s.afterSize(c)
	case csSizeOWS:
		if s.line++; s.line > maxChunkLine {
			return ErrChunkExtension
		}
		return s.afterSize(c)
	case csExt:
		if s.line++; s.line > maxChunkLine {
			return ErrChunkExtension
		}
		switch {
		case c == '\r':
			s.state = csSizeLF
		case c == '\n':
			return ErrChunkBareLF
		case class[c]&cValue == 0:
			return ErrChunkExtension
		}
	default:
		return s.stepShared(c)
	}
	return nil
}

// stepShared advances the states requests and responses share: the LF of a chunk-size line, the
// CRLF after chunk data, the trailer section and the final CRLF.
func (s *ChunkScanner) stepShared(c byte) *Error {
	switch s.state {
	case csSizeLF:
		if c != '\n' {
			return ErrChunkBareLF
		}
		s.line = 0
		if s.remain == 0 {
			s.state = csTrailerStart
		} else {
			s.state = csData
		}
	case csDataCR:
		if c != '\r' {
			return ErrChunkDataEnd
		}
		s.state = csDataLF
	case csDataLF:
		if c != '\n' {
			return ErrChunkDataEnd
		}
		s.state = csSize
	default:
		return s.trailer(c)
	}
	return nil
}

// stepStrict is step for a request body: the chunk-size line is checked as
// ChunkScanner says; data ends, the last chunk and the trailer section are
// shared with responses.
func (s *ChunkScanner) stepStrict(c byte) *Error {
	switch s.state {
	case csSize, csSizeDigits, csXName0, csXName, csXVal0, csXVal, csXQuoted, csXQEsc, csXQEnd:
	default:
		return s.stepShared(c)
	}
	if s.line++; s.line > maxRequestChunkLine {
		return ErrChunkExtension
	}
	switch s.state {
	case csSize, csSizeDigits:
		if d := unhex(c); d >= 0 {
			if s.line > maxRequestChunkDigits || s.remain > MaxRequestChunk>>4 {
				return ErrChunkTooLarge
			}
			s.remain = s.remain<<4 | int64(d)
			if s.remain > MaxRequestChunk {
				return ErrChunkTooLarge
			}
			s.state = csSizeDigits
			return nil
		}
		switch {
		case s.state == csSize:
			return ErrChunkSize
		case c == ';':
			s.state = csXName0
			return nil
		}
		return s.lineEnd(c, ErrChunkSize)
	case csXName0, csXVal0:
		switch {
		case class[c]&cToken != 0:
			s.state++ // csXName, csXVal
		case c == '"' && s.state == csXVal0:
			s.state = csXQuoted
		default:
			return ErrChunkExtension
		}
	case csXName, csXVal:
		switch {
		case class[c]&cToken != 0:
		case c == '=' && s.state == csXName:
			s.state = csXVal0
		case c == ';':
			s.state = csXName0
		default:
			return s.lineEnd(c, ErrChunkExtension)
		}
	case csXQuoted:
		// qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
		switch {
		case c == '"':
			s.state = csXQEnd
		case c == '\\':
			s.state = csXQEsc
		case c == '\n':
			return ErrChunkBareLF
		case class[c]&cValue == 0:
			return ErrChunkExtension
		}
	case csXQEsc:
		// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
		if class[c]&cValue == 0 {
			return ErrChunkExtension
		}
		s.state = csXQuoted
	case csXQEnd:
		if c == ';' {
			s.state = csXName0
			return nil
		}
		return s.lineEnd(c, ErrChunkExtension)
	}
	return nil
}

// lineEnd accepts the CR that ends a request's chunk-size line; any other
// byte is bad (a bare LF precisely).
func (s *ChunkScanner) lineEnd(c byte, bad *Error) *Error {
	switch c {
	case '\r':
		s.state = csSizeLF
		return nil
	case '\n':
		return ErrChunkBareLF
	}
	return bad
}

// afterSize handles a byte after the chunk-size digits: BWS, then ";" or CR.
func (s *ChunkScanner) afterSize(c byte) *Error {
	switch {
	case c == ';':
		s.state = csExt
	case c == '\r':
		s.state = csSizeLF
	case c == '\n':
		return ErrChunkBareLF
	case class[c]&cOWS != 0:
		s.state = csSizeOWS
	default:
		return ErrChunkExtension
	}
	return nil
}

// trailer advances through the trailer section and the final CRLF:
// field lines as in a head (field-name ":" OWS field-value OWS CRLF).
func (s *ChunkScanner) trailer(c byte) *Error {
	if s.line++; s.line > maxTrailerBytes {
		return ErrChunkTrailer
	}
	switch s.state {
	case csTrailerStart:
		switch {
		case c == '\r':
			s.state = csEndLF
		case c == '\n':
			return ErrChunkBareLF
		case class[c]&cToken != 0:
			s.state = csTrailerName
		default:
			return ErrChunkTrailer
		}
	case csTrailerName:
		switch {
		case c == ':':
			s.state = csTrailerValue
		case c == '\n':
			return ErrChunkBareLF
		case class[c]&cToken == 0:
			return ErrChunkTrailer
		}
	case csTrailerValue:
		switch {
		case c == '\r':
			s.state = csTrailerLF
		case c == '\n':
			return ErrChunkBareLF
		case class[c]&cValue == 0:
			return ErrChunkTrailer
		}
	case csTrailerLF, csEndLF:
		if c != '\n' {
			return ErrChunkBareLF
		}
		if s.state == csEndLF {
			s.state = csDone
		} else {
			s.state = csTrailerStart
		}
	}
	return nil
}

// unhex returns the value of the hex digit c (RFC 5234 HEXDIG, either case),
// or -1.
func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
