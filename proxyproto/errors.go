package proxyproto

// Error is a reason a connection's first bytes are not an acceptable PROXY header. Every cause is
// its own *Error value compared with errors.Is; a cause also matches its category
// (errors.Is(ErrTooLong, ErrMalformed) is true). Reasons never quote the input.
type Error struct {
	Reason string
	kind   *Error // the category; nil for a category
}

// Error implements error.
func (e *Error) Error() string { return "proxyproto: " + e.Reason }

// Is reports whether target is e's category.
func (e *Error) Is(target error) bool { return e.kind != nil && target == e.kind }

var (
	// ErrNeedMore: the bytes so far are a valid beginning of a header; read more and call again.
	ErrNeedMore = &Error{Reason: "need more bytes"}
	// ErrMissing: the bytes do not begin with either signature ("PROXY " or v2's 12 bytes): the
	// peer sent something else (an HTTP request, a TLS ClientHello).
	ErrMissing = &Error{Reason: "no PROXY protocol header"}
	// ErrMalformed is the category of every header that begins with a signature and then breaks
	// the specification.
	ErrMalformed = &Error{Reason: "malformed PROXY protocol header"}

	// ErrTooLong: a v1 line without CRLF within 107 bytes, or a v2 header over MaxV2Len.
	ErrTooLong = &Error{Reason: "PROXY protocol header too long", kind: ErrMalformed}
	// ErrV1Syntax: a v1 line that is not "PROXY TCP4|TCP6 src dst sport dport" or "PROXY UNKNOWN ...".
	ErrV1Syntax = &Error{Reason: "malformed PROXY v1 line", kind: ErrMalformed}
	// ErrV1Address: a v1 address or port that is not a strict IPv4 / IPv6 / port literal of its family.
	ErrV1Address = &Error{Reason: "malformed PROXY v1 address or port", kind: ErrMalformed}
	// ErrV2Version: a v2 version other than 2 or a command other than LOCAL or PROXY.
	ErrV2Version = &Error{Reason: "unsupported PROXY v2 version or command", kind: ErrMalformed}
	// ErrV2Family: a v2 PROXY command with a family/protocol a TCP listener cannot carry, or an
	// address block shorter than its family needs.
	ErrV2Family = &Error{Reason: "unsupported PROXY v2 family, protocol or address length", kind: ErrMalformed}
	// ErrV2TLV: a v2 TLV that overruns the header.
	ErrV2TLV = &Error{Reason: "malformed PROXY v2 TLV", kind: ErrMalformed}
)
