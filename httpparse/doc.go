// Package httpparse parses HTTP/1.1 message heads (RFC 9112) from a borrowed
// byte buffer without allocating and without keeping any slice of it.
//
// It is written for an event loop that owns the read buffer (gnet's Peek is
// valid only during one callback) and grows it as bytes arrive: the caller
// calls Parser.Parse (or Parser.ParseResponse) with the whole buffer, the
// parser resumes where the previous call stopped, and every result is a Span,
// a pair of offsets into the buffer passed to the call that completed the
// head. The caller turns a Span into bytes with Span.Bytes while the buffer is
// still valid, and copies what must outlive it.
//
// Parsing is strict where laxness enables request smuggling in front of S3:
// bare LF, obs-fold, whitespace before a colon, a request Transfer-Encoding
// other than a lone chunked (or with Content-Length, or on HTTP/1.0),
// duplicate or list-valued Content-Length, and missing or duplicate Host are
// rejected with an *Error that carries the status code to answer.
//
// ChunkScanner finds the end of a chunked body (the upstream's responses)
// without decoding it, so the framed bytes can be relayed verbatim; reset with
// ResetRequest it scans a client's chunked request body strictly, Decode
// de-chunks it in place, and MinRemaining bounds reads so that nothing after
// the body is consumed.
//
// The package imports only the standard library, never logs, and allocates
// nothing on any parsing path. None of its types is safe for concurrent use;
// use one Parser (and one ChunkScanner) per connection.
package httpparse
