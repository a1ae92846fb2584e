package httpparse

import "math"

// Bounds on the framing a ChunkScanner accepts. Chunk data is not bounded.
const (
	maxChunkLine    = 4 << 10  // chunk-size line: size, extensions, CRLF
	maxTrailerBytes = 16 << 10 // trailer section including its final CRLF
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
type ChunkScanner struct {
	remain int64 // chunk-data bytes still to come (csData), or the size being read
	line   int32 // bytes of the current chunk-size line, or of the trailer section
	state  uint8
	err    *Error
}

// Reset prepares s for the next chunked body.
func (s *ChunkScanner) Reset() { *s = ChunkScanner{} }

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

// step advances the framing state machine by one byte c.
func (s *ChunkScanner) step(c byte) *Error {
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
