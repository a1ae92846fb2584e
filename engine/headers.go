package engine

import (
	"bytes"

	"github.com/mizuchi/uploadr/s3sig"
)

// Which client headers go upstream.
//
// The proxy re-signs every request with the bucket's upstream credentials, and that signature covers
// every header it forwards. A header the client did not sign would otherwise be laundered: added by
// anyone on the path, it would reach the upstream under the proxy's valid signature. Three rules:
//
// x-amz-* headers must be in the client's SignedHeaders, else the request is refused with 403
// AccessDenied (S3's answer: "There were headers present in the request which were not signed"), on
// the loop, before anything goes upstream (authenticate, mustBeSigned). The one exception is
// x-amz-content-sha256: its value is the last line of the canonical request, so the signature covers
// it whether or not SignedHeaders lists it.
//
// A header the client signed goes upstream, except the hop-by-hop ones and those the proxy sets
// itself (hopHeaders in sign.go).
//
// Of the headers the client did not sign, only those S3 itself accepts unsigned go upstream. AWS's
// SigV4 guide for S3 ("Signature Calculations for the Authorization Header") requires host and every
// x-amz-* header in SignedHeaders, asks for Content-Type when present and recommends signing the
// rest; S3 enforces host and x-amz-* only, and minio-go never signs Content-Type or Content-Length.
// Forwarding what S3 accepts unsigned gives someone on the path no power over the upstream that he
// would not have against S3 directly:
//
//	header                unsigned  why
//	Content-Length        forwarded framing: the proxy checks the body against it
//	Content-Type          forwarded stored as sent; S3 accepts it unsigned, minio-go never signs it
//	Content-MD5           forwarded an integrity check the upstream verifies: a change can only fail the request
//	Content-Encoding      forwarded stored metadata; aws-chunked framing is checked by proxy and upstream
//	Cache-Control         forwarded stored metadata, accepted unsigned by S3
//	Content-Disposition   forwarded stored metadata, accepted unsigned by S3
//	Content-Language      forwarded stored metadata, accepted unsigned by S3
//	Expires               forwarded stored metadata, accepted unsigned by S3
//	If-Match              forwarded conditional write (PutObject, Complete): can only make it fail
//	If-None-Match         forwarded conditional write (If-None-Match: *): can only make it fail
//	x-amz-content-sha256  forwarded covered by the canonical request (the proxy sends its own value)
//	other x-amz-*         refused   403 AccessDenied, nothing goes upstream
//	anything else         dropped   User-Agent, X-Forwarded-For, Cookie, Origin, Range, If-Modified-Since, …:
//	                                S3 ignores them for uploads, so they are dropped, not refused
//
// Buckets with auth: none have no client signature: every end-to-end header goes upstream as before
// and none is refused. The operator declared the clients' network trusted, and a client there can
// send any header it likes anyway.

// unsignedOK lists the headers forwarded without a client signature (see the table above).
var unsignedOK = [...]string{"content-length", "content-type", "content-md5", "content-encoding",
	"cache-control", "content-disposition", "content-language", "expires", "if-match", "if-none-match",
	"x-amz-content-sha256"}

// forwardHeader reports whether a client header named name may go upstream, given signed, the
// SignedHeaders list of the client's Authorization (';'-separated names, as sent), or nil for a
// bucket with auth: none. It does not look at hop-by-hop headers: callers drop those first
// (isHopHeader). name and signed are borrowed; it does not allocate.
func forwardHeader(name, signed []byte) bool {
	if signed == nil {
		return true
	}
	for _, h := range unsignedOK {
		if len(name) == len(h) && equalFoldASCII(name, h) {
			return true
		}
	}
	return signedListHas(signed, name)
}

// mustBeSigned reports whether a request carrying the header name must list it in SignedHeaders:
// every x-amz-* header but x-amz-content-sha256 (which the canonical request covers anyway).
func mustBeSigned(name []byte) bool {
	const prefix = "x-amz-"
	return len(name) >= len(prefix) && equalFoldASCII(name[:len(prefix)], prefix) &&
		!(len(name) == len("x-amz-content-sha256") && equalFoldASCII(name, "x-amz-content-sha256"))
}

// signedListHas reports whether the ';'-separated list holds name, compared case-insensitively (the
// verifier looks signed names up that way too). A list starting with '=' is a presigned request's
// X-Amz-SignedHeaders value as on the wire, '=' included (presign.go): percent-encoded, ';' usually
// sent as %3B, and read decoded, as the verifier read it. No verified Authorization list starts
// with '=': '=' is not a token character, so no header name holds one. It does not allocate.
func signedListHas(list, name []byte) bool {
	if len(name) == 0 {
		return false
	}
	if len(list) > 0 && list[0] == '=' {
		return encodedListHas(list[1:], name)
	}
	for len(list) > 0 {
		item := list
		if j := bytes.IndexByte(list, ';'); j >= 0 {
			item, list = list[:j], list[j+1:]
		} else {
			list = nil
		}
		if len(item) == len(name) && bytes.EqualFold(item, name) {
			return true
		}
	}
	return false
}

// encodedListHas is signedListHas for a percent-encoded list: each byte is decoded before it is
// compared, so "host%3Bx-amz-meta-a" holds host and x-amz-meta-a. A malformed escape (which the
// verifier refused) is taken literally.
func encodedListHas(list, name []byte) bool {
	j := 0 // bytes of name matched in the current item; -1 once the item differs
	for i := 0; i < len(list); i++ {
		c := list[i]
		if c == '%' && i+2 < len(list) {
			if v, ok := unhex2(list[i+1], list[i+2]); ok {
				c = v
				i += 2
			}
		}
		if c == ';' {
			if j == len(name) {
				return true
			}
			j = 0
			continue
		}
		if j >= 0 && j < len(name) && lowerASCII(c) == lowerASCII(name[j]) {
			j++
		} else {
			j = -1
		}
	}
	return j == len(name)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// unsignedHeader reports whether the request carries a header that must be signed (mustBeSigned)
// but is not in signed. Header values are never looked at. It does not allocate.
func unsignedHeader(h *Head, signed []byte) bool {
	req, buf := h.req, h.buf
	for i := 0; i < req.NumHeaders; i++ {
		if name := req.Headers[i].Name.Bytes(buf); mustBeSigned(name) && !signedListHas(signed, name) {
			return true
		}
	}
	return false
}

// signedHeaders returns the SignedHeaders list of the request's Authorization, a view into buf, for
// forwardHeader: nil when the bucket has auth: none. The request passed authenticate, so the header
// parses; should it not, the result is empty but not nil, and forwardHeader passes only the
// headers S3 accepts unsigned. It runs on the loop while buf is valid and does not allocate.
func (st *connState) signedHeaders(b *bucketState, buf []byte) []byte {
	if !sigv4Signed(b.auth, st) {
		return nil // no SigV4 signature: auth none, a bearer token, or an Authenticator of the operator's
	}
	if s := st.signed; s[1] > s[0] && int(s[1]) <= len(buf) {
		return buf[s[0]:s[1]] // noted by authentication
	}
	var a s3sig.Authorization
	if av, ok := st.req.Lookup(buf, "authorization"); ok && s3sig.ParseAuthorization(av.Bytes(buf), &a) == nil {
		return a.SignedHeaders
	}
	return noSignedHeaders
}

// noSignedHeaders is an empty, non-nil SignedHeaders list.
var noSignedHeaders = []byte{}

// withoutAWSChunked returns the Content-Encoding value v without its aws-chunked codings, as S3
// stores it: S3 drops "aws-chunked" from the stored Content-Encoding, and a body forwarded plain
// must not claim a framing it no longer has. RFC 9110 8.4:
//
//	Content-Encoding = #content-coding
//
// Without such a coding v itself is returned; otherwise the remaining codings are written into
// the scratch *scratch (kept for reuse), joined by ",", and returned (empty: drop the header). It
// allocates only when the scratch must grow.
func withoutAWSChunked(scratch *[]byte, v []byte) []byte {
	if !containsFoldASCII(v, "aws-chunked") {
		return v
	}
	dst := (*scratch)[:0]
	for i := 0; i < len(v); {
		k := i
		for k < len(v) && v[k] != ',' {
			k++
		}
		el := bytes.TrimSpace(v[i:k]) // OWS is SP / HTAB
		i = k + 1
		if len(el) == 0 || len(el) == len("aws-chunked") && equalFoldASCII(el, "aws-chunked") {
			continue
		}
		if len(dst) > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, el...)
	}
	*scratch = dst
	return dst
}

// isContentEncoding reports whether name is Content-Encoding (any case).
func isContentEncoding(name []byte) bool {
	return len(name) == len("content-encoding") && equalFoldASCII(name, "content-encoding")
}
