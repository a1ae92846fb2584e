package engine

import (
	"bytes"
	"errors"
	"sync"

	"github.com/mizuchi/uploadr/s3sig"
)

// Presigned URLs: query-string SigV4.
//
// A request whose query carries X-Amz-Algorithm, X-Amz-Credential or X-Amz-Signature is
// authenticated from its query (s3sig.ParsePresigned, s3sig.VerifyPresigned) instead of its
// Authorization header, under the same rules as header authentication: the host and every signed
// header are checked, every x-amz-* header must be signed (unsignedHeader), the credential
// scope's region must be one the bucket signs for, and the principal is the access key id (Method
// "sigv4-presigned", which the access log's auth field shows). The payload hash is the
// x-amz-content-sha256 header when sent, else UNSIGNED-PAYLOAD. X-Amz-Expires must be 1..604800
// (else 400 AuthorizationQueryParametersError); past X-Amz-Date + X-Amz-Expires the answer is 403
// AccessDenied "Request has expired"; an X-Amz-Date more than 15 minutes ahead of the clock is 403
// AccessDenied "Request is not valid yet".
//
// Upstream, nothing of the query-string signature survives: buildUpstreamHead rebuilds the query
// from the route (the operation's own parameters only) and signs with header auth. The headers
// forwarded are those in X-Amz-SignedHeaders and those S3 accepts unsigned, as for header auth.
//
// Decisions:
//   - X-Amz-Security-Token is accepted and ignored, as a signed x-amz-security-token header is:
//     the proxy has no STS and authenticates static access keys only; the token is covered by the
//     signature (it is in the canonical query), and the proxy's own credentials go upstream.
//   - An x-amz-* query parameter other than the authentication ones is a header the presigner
//     hoisted into the URL, which S3 takes as that header: x-amz-checksum-crc32 (what the JS SDK's
//     presigner bakes into PutObject URLs, the expected checksum), x-amz-meta-*, x-amz-acl, … The
//     upstream query is rebuilt from the route, so it would be dropped (the body stored unverified,
//     the metadata lost): such a request is refused with 400 InvalidRequest. Presign these as signed
//     headers (boto3 and aws-sdk-go-v2 do by default), or without them (JS SDK:
//     requestChecksumCalculation: "WHEN_REQUIRED"). X-Amz-Sdk-Checksum-Algorithm names the
//     algorithm of a checksum sent as a header or trailer (aws-sdk-go-v2 puts it in the query when
//     a ChecksumAlgorithm is set): it is allowed, and not forwarded.
//   - A request with both an Authorization header and query-string auth is refused (400
//     InvalidArgument), as S3 does.

// presignedPool holds the parsed query-string parameters while the loop verifies.
var presignedPool = sync.Pool{New: func() any { return new(s3sig.Presigned) }}

// authenticatePresigned is sigv4Auth.Authenticate for a request signed in its query. Cheap
// refusals come first and all before the signature is verified (so that a key derived for a
// refused region never enters the key cache). On success it notes in h.signed where the
// X-Amz-SignedHeaders value sits in buf, '=' included: the '=' tells signedListHas that the list
// is percent-encoded (headers.go). It does not allocate with a warm key cache.
func (s *sigv4Auth) authenticatePresigned(h *Head, query []byte) (Principal, *Error) {
	e, req, buf := s.e, h.req, h.buf
	if _, ok := req.Lookup(buf, "authorization"); ok {
		return Principal{}, errMultipleAuth
	}
	p := presignedPool.Get().(*s3sig.Presigned)
	defer presignedPool.Put(p)
	if err := s3sig.ParsePresigned(query, p); err != nil {
		return Principal{}, mapPresignError(err)
	}
	if hoistedParam(query) {
		return Principal{}, errPresignedHoisted
	}
	if !s.regionOK(p.Region) {
		return Principal{}, wrongRegionQuery(p.Region, s.regions[0])
	}
	if unsignedHeader(h, p.SignedHeaders) {
		return Principal{}, errHeadersNotSigned
	}
	cred, ok := s.creds[string(p.AccessKey)]
	if !ok {
		return Principal{}, errInvalidAccessKeyID
	}
	var payload []byte // nil: UNSIGNED-PAYLOAD
	if pv, ok := req.Lookup(buf, "x-amz-content-sha256"); ok {
		payload = pv.Bytes(buf)
	}
	sc := sigPool.Get().(*sigScratch)
	defer sigPool.Put(sc)
	sreq := sc.request(h, payload)
	n := len(sreq.Headers)
	signer := e.getSigner()
	err := signer.VerifyPresigned(&sreq, p, cred.secret, e.opts.Now())
	e.signers.Put(signer)
	clear(sc.h[:n])
	if err != nil {
		return Principal{}, mapPresignError(err)
	}
	// p.RawSignedHeaders is a subslice of query, itself a subslice of buf; the byte before it is
	// the '=' of X-Amz-SignedHeaders=.
	off := int(req.Query.Start) + cap(query) - cap(p.RawSignedHeaders)
	if off < 1 || buf[off-1] != '=' {
		return Principal{}, errInternal
	}
	h.signed = [2]int32{int32(off - 1), int32(off + len(p.RawSignedHeaders))}
	return Principal{ID: cred.accessKey, Method: "sigv4-presigned"}, nil
}

// authParams are the query parameters of query-string authentication (case-sensitive, as S3 reads
// them), and X-Amz-Sdk-Checksum-Algorithm, which names the algorithm of a checksum sent as a header
// or a trailer and may stay behind: no other x-amz-* parameter is allowed in a presigned request.
var authParams = [...]string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}

// hoistedParam reports whether the raw query has an x-amz-* parameter other than authParams and
// X-Amz-Sdk-Checksum-Algorithm (and X-Amz-Content-Sha256=UNSIGNED-PAYLOAD, the default stated): a
// header hoisted into the URL by the presigner (x-amz-checksum-*,
// x-amz-meta-*, x-amz-acl, …), which S3 takes as that header. Names are read percent-decoded, as
// the verifier and S3 read them. It does not allocate.
func hoistedParam(query []byte) bool {
	for len(query) > 0 {
		part := query
		if j := bytes.IndexByte(query, '&'); j >= 0 {
			part, query = query[:j], query[j+1:]
		} else {
			query = nil
		}
		var value []byte
		if j := bytes.IndexByte(part, '='); j >= 0 {
			part, value = part[:j], part[j+1:]
		}
		if !decodedHasPrefixFold(part, "x-amz-") || decodedEqualFold(part, "x-amz-sdk-checksum-algorithm") {
			continue
		}
		if decodedEqualFold(part, "x-amz-content-sha256") && decodedEqual(value, s3sig.UnsignedPayload) {
			continue // the JS SDK's presigner states the default; the proxy verifies it as such
		}
		auth := false
		for _, name := range authParams {
			if decodedEqual(part, name) {
				auth = true
				break
			}
		}
		if !auth {
			return true
		}
	}
	return false
}

// decodedEqual, decodedEqualFold and decodedHasPrefixFold compare a raw query key, percent-decoded
// on the fly (a malformed escape is taken literally), with s. They do not allocate.
func decodedEqual(raw []byte, s string) bool { return decodedCompare(raw, s, false, false) }

func decodedEqualFold(raw []byte, s string) bool { return decodedCompare(raw, s, true, false) }

func decodedHasPrefixFold(raw []byte, s string) bool { return decodedCompare(raw, s, true, true) }

func decodedCompare(raw []byte, s string, fold, prefix bool) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		if prefix && j == len(s) {
			return true
		}
		c := raw[i]
		if c == '%' && i+2 < len(raw) {
			if v, ok := unhex2(raw[i+1], raw[i+2]); ok {
				c = v
				i += 2
			}
		}
		if j >= len(s) {
			return false
		}
		if d := s[j]; c != d && !(fold && lowerASCII(c) == lowerASCII(d)) {
			return false
		}
		j++
	}
	return j == len(s)
}

func unhex2(hi, lo byte) (byte, bool) {
	h, ok1 := unhex1(hi)
	l, ok2 := unhex1(lo)
	return h<<4 | l, ok1 && ok2
}

func unhex1(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// mapPresignError maps an s3sig error of query-string authentication to the S3 answer.
func mapPresignError(err error) *s3Error {
	switch {
	case errors.Is(err, s3sig.ErrPresignExpired):
		return errPresignedRequestExpired
	case errors.Is(err, s3sig.ErrPresignNotYetValid):
		return errPresignNotYetValid
	case errors.Is(err, s3sig.ErrPresignExpiresRange):
		return errPresignExpiresRange
	case errors.Is(err, s3sig.ErrAuthorizationQueryParameters):
		return errAuthQueryParams
	}
	return mapSigError(err)
}

// wrongRegionQuery is wrongRegion for X-Amz-Credential, with S3's message: "Error parsing the
// X-Amz-Credential parameter; the region 'got' is wrong; expecting 'want'". It allocates:
// refusals only.
func wrongRegionQuery(got []byte, want string) *s3Error {
	msg := "Error parsing the X-Amz-Credential parameter; the region is wrong"
	if isRegion(got) {
		msg = "Error parsing the X-Amz-Credential parameter; the region '" + string(got) + "' is wrong"
	}
	return &s3Error{errAuthQueryParams.Code, errAuthQueryParams.Status, msg + "; expecting '" + want + "'"}
}
