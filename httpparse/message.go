package httpparse

// Span is a half-open byte range [Start, End) into the buffer that was parsed.
// A Span is only meaningful together with that buffer (or a buffer with the
// same prefix); it holds no reference to it.
type Span struct{ Start, End int32 }

// Bytes returns buf[s.Start:s.End] with its capacity clipped, so appending to
// the result never overwrites buf. The result aliases buf and is valid only
// as long as buf is. It panics if s is out of range for buf.
func (s Span) Bytes(buf []byte) []byte { return buf[s.Start:s.End:s.End] }

// Len returns the length of the span in bytes.
func (s Span) Len() int { return int(s.End - s.Start) }

// Header is one header field line: Name and Value are spans into the parsed
// buffer. Value is trimmed of optional whitespace (SP, HTAB) on both sides.
type Header struct{ Name, Value Span }

// MaxHeaders is the most header field lines a head may have; one more gives
// ErrTooManyHeaders (431).
const MaxHeaders = 128

// Default limits used when a Limits field is zero.
const (
	DefaultMaxHeadBytes   = 64 << 10
	DefaultMaxTargetBytes = 16 << 10
)

// maxLimit bounds both limits so that every offset fits in a Span's int32.
const maxLimit = 1 << 30

// Limits bounds what a head may use. The zero value selects the defaults.
// Pass the same Limits to every call for one head.
type Limits struct {
	// MaxHeadBytes bounds the whole head, including leading empty lines, the
	// start-line and the final CRLF CRLF; 0 means DefaultMaxHeadBytes; values
	// above 1 GiB are clamped. A buffer holding at least this many bytes
	// without a complete head gives ErrHeadTooLarge (431) at once.
	MaxHeadBytes int
	// MaxTargetBytes bounds the request-target; 0 means DefaultMaxTargetBytes.
	// Exceeding it gives ErrURITooLong (414) as soon as it is exceeded.
	MaxTargetBytes int
}

func (l Limits) head() int {
	switch {
	case l.MaxHeadBytes <= 0:
		return DefaultMaxHeadBytes
	case l.MaxHeadBytes > maxLimit:
		return maxLimit
	}
	return l.MaxHeadBytes
}

func (l Limits) target() int {
	switch {
	case l.MaxTargetBytes <= 0:
		return DefaultMaxTargetBytes
	case l.MaxTargetBytes > maxLimit:
		return maxLimit
	}
	return l.MaxTargetBytes
}

// Request is a parsed request head. Every Span points into the buffer given
// to the Parse call that returned nil. Fields are only valid after that call;
// while Parse returns ErrNeedMore the Request is partly filled and must be
// passed again, unchanged, to the next call.
type Request struct {
	Method, Target Span // Target is the raw request-target (origin-form)
	Path, Query    Span // Target split at the first '?'; Query excludes the '?'
	HasQuery       bool // the target contains '?' (Query may still be empty)
	Minor          uint8
	Headers        [MaxHeaders]Header
	NumHeaders     int
	HeadLen        int   // bytes of the head including the final empty line; the body starts at buf[HeadLen]
	ContentLength  int64 // -1 when absent (always with Chunked)
	Chunked        bool  // Transfer-Encoding: chunked, the only coding a request may carry; the body is chunked (RFC 9112 7.1)
	Host           Span  // empty if absent
	Expect100      bool  // Expect: 100-continue (case-insensitive); ignored in HTTP/1.0 (RFC 9110 10.1.1)
	KeepAlive      bool  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive"
}

// Lookup returns the value of the first header field named name (compared
// case-insensitively, ASCII only) and whether there is one. buf must be the
// parsed buffer. It does not allocate.
func (r *Request) Lookup(buf []byte, name string) (Span, bool) {
	return lookup(buf, r.Headers[:r.NumHeaders], name)
}

// HeaderCount returns how many header field lines are named name (compared
// case-insensitively). buf must be the parsed buffer. It does not allocate.
func (r *Request) HeaderCount(buf []byte, name string) int {
	n := 0
	for _, h := range r.Headers[:r.NumHeaders] {
		if equalFold(h.Name.Bytes(buf), name) {
			n++
		}
	}
	return n
}

// Response is a parsed response head, with the same buffer rules as Request.
type Response struct {
	Minor         uint8
	Status        int  // 100..999
	Reason        Span // reason-phrase as sent, possibly empty
	Headers       [MaxHeaders]Header
	NumHeaders    int
	HeadLen       int   // the body starts at buf[HeadLen]
	ContentLength int64 // -1 when absent
	Chunked       bool  // Transfer-Encoding with chunked as the final coding
	// KeepAlive follows the version and Connection header only. A response
	// with neither Content-Length nor chunked framing (other than 1xx, 204,
	// 304 and answers to HEAD) is delimited by close: the caller must not
	// reuse the connection then.
	KeepAlive bool
}

// Lookup returns the value of the first header field named name (compared
// case-insensitively) and whether there is one. It does not allocate.
func (r *Response) Lookup(buf []byte, name string) (Span, bool) {
	return lookup(buf, r.Headers[:r.NumHeaders], name)
}

func lookup(buf []byte, hs []Header, name string) (Span, bool) {
	for _, h := range hs {
		if equalFold(h.Name.Bytes(buf), name) {
			return h.Value, true
		}
	}
	return Span{}, false
}

// equalFold reports whether b equals s, ignoring ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lower[b[i]] != lower[s[i]] {
			return false
		}
	}
	return true
}
