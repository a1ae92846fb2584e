package httpparse

import (
	"errors"
	"strconv"
)

// Error is a malformed-head (or malformed chunked body) error with the HTTP
// status a server must answer to the request that caused it. For
// ParseResponse and ChunkScanner errors the status is the one a server would
// answer to such a request; a proxy answers its own client 502 Bad Gateway.
//
// Every cause is its own *Error value, compared with errors.Is. A cause also
// matches the category it belongs to: errors.Is(ErrDuplicateContentLength,
// ErrContentLength) and errors.Is(ErrBareLF, ErrBadRequest) are true.
// Error values are immutable package-level singletons; never modify them.
type Error struct {
	Status int    // HTTP status code to answer, e.g. 400
	Reason string // precise cause, safe to log (never quotes input)

	kind *Error // category this cause belongs to; nil for a category
}

// Error implements error.
func (e *Error) Error() string {
	return "httpparse: " + e.Reason + " (" + strconv.Itoa(e.Status) + ")"
}

// Is reports whether target is the category of e, so that a precise cause
// matches its category with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e.kind == t
}

// ErrNeedMore means the buffer holds an incomplete but so far valid head (or
// chunked body): call again with more bytes. It is not an *Error.
var ErrNeedMore = errors.New("httpparse: need more data")

// Categories. Each is also returned as is when no more precise cause applies.
var (
	ErrBadRequest       = &Error{Status: 400, Reason: "bad request"}
	ErrHeadTooLarge     = &Error{Status: 431, Reason: "head larger than limit"}
	ErrTooManyHeaders   = &Error{Status: 431, Reason: "too many header fields"}
	ErrURITooLong       = &Error{Status: 414, Reason: "request-target longer than limit"}
	ErrVersion          = &Error{Status: 505, Reason: "HTTP version not supported"}
	ErrTransferEncoding = &Error{Status: 501, Reason: "Transfer-Encoding not supported"}
	ErrContentLength    = &Error{Status: 400, Reason: "bad Content-Length"}
	ErrBadChunk         = &Error{Status: 400, Reason: "malformed chunked body"}
	// ErrMisuse is a caller bug: the buffer shrank between calls, or Parse and
	// ParseResponse were mixed without Reset.
	ErrMisuse = &Error{Status: 500, Reason: "parser misuse: buffer shrank or Parse/ParseResponse mixed without Reset"}
)

// Causes within ErrBadRequest (400).
var (
	ErrBareLF              = bad("bare LF")
	ErrBareCR              = bad("CR not followed by LF")
	ErrMethod              = bad("method contains invalid character")
	ErrRequestLine         = bad("malformed request line")
	ErrTarget              = bad("request-target not in origin-form or contains invalid byte")
	ErrMalformedVersion    = bad("malformed HTTP version")
	ErrEmptyLines          = bad("too many empty lines before request line")
	ErrHeaderName          = bad("header name contains invalid character")
	ErrEmptyHeaderName     = bad("empty header name")
	ErrSpaceBeforeColon    = bad("whitespace between header name and colon")
	ErrMissingColon        = bad("header line without colon")
	ErrHeaderValue         = bad("header value contains invalid character")
	ErrObsFold             = bad("obs-fold line folding not supported")
	ErrLeadingWhitespace   = bad("whitespace between start-line and first header field")
	ErrMissingHost         = bad("missing Host")
	ErrDuplicateHost       = bad("duplicate Host")
	ErrInvalidHost         = bad("invalid Host")
	ErrStatusLine          = bad("malformed status line")
	ErrTEWithContentLength = bad("Transfer-Encoding together with Content-Length")
	ErrChunkedTwice        = bad("chunked transfer coding applied more than once")
	ErrTEHTTP10            = bad("Transfer-Encoding in an HTTP/1.0 request")
)

// Causes within ErrContentLength (400).
var (
	ErrDuplicateContentLength = &Error{Status: 400, Reason: "duplicate Content-Length", kind: ErrContentLength}
	ErrInvalidContentLength   = &Error{Status: 400, Reason: "invalid Content-Length", kind: ErrContentLength}
)

// Causes within ErrTransferEncoding (501): a response whose codings do not end
// with one chunked, or a request with any coding but a lone chunked.
var (
	ErrTransferCoding = &Error{Status: 501, Reason: "transfer coding other than a final chunked", kind: ErrTransferEncoding}
)

// Causes within ErrBadChunk (400).
var (
	ErrChunkSize      = chunk("invalid chunk size")
	ErrChunkTooLarge  = chunk("chunk size overflows int64")
	ErrChunkExtension = chunk("invalid or too long chunk extension")
	ErrChunkDataEnd   = chunk("chunk data not followed by CRLF")
	ErrChunkTrailer   = chunk("invalid or too long trailer section")
	ErrChunkBareLF    = chunk("bare CR or LF in chunked framing")
)

func bad(reason string) *Error   { return &Error{Status: 400, Reason: reason, kind: ErrBadRequest} }
func chunk(reason string) *Error { return &Error{Status: 400, Reason: reason, kind: ErrBadChunk} }
