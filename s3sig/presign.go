package s3sig

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"time"
)

// Query-string authentication (presigned URLs), S3 API Reference,
// "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)":
//
//	X-Amz-Algorithm=AWS4-HMAC-SHA256
//	X-Amz-Credential=<AccessKey>/<yyyymmdd>/<region>/s3/aws4_request
//	X-Amz-Date=<yyyymmddThhmmssZ>
//	X-Amz-Expires=<seconds, 1..604800>
//	X-Amz-SignedHeaders=<name>;<name>...   (host at least)
//	X-Amz-Signature=<64 hex>
//	[X-Amz-Security-Token=<token>]
//
// The canonical request is built as for the Authorization header except that
// the canonical query holds every parameter but X-Amz-Signature (the other
// auth parameters included), and the payload hash is UNSIGNED-PAYLOAD unless
// the request carries x-amz-content-sha256. The string to sign uses X-Amz-Date
// and the scope of X-Amz-Credential.

// MaxPresignExpires is the largest X-Amz-Expires S3 accepts: seven days.
const MaxPresignExpires = 604800

// The query parameter names of query-string authentication. Names are
// case-sensitive, as S3 reads them; a name may be percent-encoded on the wire.
const (
	QueryAlgorithm     = "X-Amz-Algorithm"
	QueryCredential    = "X-Amz-Credential"
	QueryDate          = "X-Amz-Date"
	QueryExpires       = "X-Amz-Expires"
	QuerySignedHeaders = "X-Amz-SignedHeaders"
	QuerySignature     = "X-Amz-Signature"
	QuerySecurityToken = "X-Amz-Security-Token"
)

// Presigned holds the authentication parameters of a presigned request's
// query, percent-decoded. The embedded Authorization's fields (AccessKey,
// Date, Region, Service from X-Amz-Credential; SignedHeaders, a ';'-separated
// list; Signature) and AmzDate point into an internal buffer of p that the
// next ParsePresigned on p reuses; RawSignedHeaders points into the query
// given to ParsePresigned. Keep a Presigned per event loop or goroutine and
// reuse it: ParsePresigned then allocates nothing.
type Presigned struct {
	Authorization
	// AmzDate is X-Amz-Date, yyyymmddThhmmssZ.
	AmzDate []byte
	// Expires is X-Amz-Expires in seconds, 1..MaxPresignExpires.
	Expires int64
	// RawSignedHeaders is the X-Amz-SignedHeaders value as on the wire (';'
	// usually sent as %3B): a view into the query.
	RawSignedHeaders []byte
	// SecurityToken reports an X-Amz-Security-Token parameter. Its value is
	// covered by the signature (it is in the canonical query) and not checked
	// further: this package knows no session tokens, so the caller decides.
	SecurityToken bool

	buf []byte
}

// IsPresigned reports whether the raw query (without '?') carries
// query-string authentication: an X-Amz-Algorithm, X-Amz-Credential or
// X-Amz-Signature parameter. It does not allocate.
func IsPresigned(query []byte) bool {
	for len(query) > 0 {
		var part []byte
		if j := bytes.IndexByte(query, '&'); j >= 0 {
			part, query = query[:j], query[j+1:]
		} else {
			part, query = query, nil
		}
		key, _, _ := bytes.Cut(part, []byte{'='})
		if keyIs(key, QueryAlgorithm) || keyIs(key, QueryCredential) || keyIs(key, QuerySignature) {
			return true
		}
	}
	return false
}

// ParsePresigned parses the authentication parameters of the raw query
// (without '?') into p. Other parameters are skipped (they are signed, and
// Verify covers them). In order, it refuses with an error wrapping
// ErrAuthorizationQueryParameters: an auth parameter given twice or with a
// malformed %-escape; one of X-Amz-Algorithm, -Credential, -Date, -Expires,
// -SignedHeaders, -Signature missing; an algorithm other than
// AWS4-HMAC-SHA256; a malformed credential, date, SignedHeaders list or
// signature; X-Amz-Expires not a decimal number (ErrPresignExpiresRange when
// it is one outside 1..MaxPresignExpires).
//
// query is not modified; p's views are described on Presigned. It allocates
// only to grow p's buffer.
func ParsePresigned(query []byte, p *Presigned) error {
	buf := p.buf[:0]
	*p = Presigned{}
	defer func() { p.buf = buf[:0] }()
	var alg, cred, date, expires []byte
	for q := query; len(q) > 0; {
		var part []byte
		if j := bytes.IndexByte(q, '&'); j >= 0 {
			part, q = q[:j], q[j+1:]
		} else {
			part, q = q, nil
		}
		key, value, _ := bytes.Cut(part, []byte{'='})
		var field *[]byte
		switch {
		case len(key) < len("X-Amz-"):
			continue
		case keyIs(key, QueryAlgorithm):
			field = &alg
		case keyIs(key, QueryCredential):
			field = &cred
		case keyIs(key, QueryDate):
			field = &date
		case keyIs(key, QueryExpires):
			field = &expires
		case keyIs(key, QuerySignedHeaders):
			field = &p.SignedHeaders
			p.RawSignedHeaders = value
		case keyIs(key, QuerySignature):
			field = &p.Signature
		case keyIs(key, QuerySecurityToken):
			if p.SecurityToken {
				return errQueryDuplicate
			}
			p.SecurityToken = true
			continue
		default:
			continue
		}
		if *field != nil {
			return errQueryDuplicate
		}
		n := len(buf)
		var err error
		if buf, err = AppendPercentDecode(buf, value); err != nil {
			return errQueryEscape
		}
		*field = buf[n:len(buf):len(buf)] // non-nil even when empty
	}
	if alg == nil || cred == nil || date == nil || expires == nil || p.SignedHeaders == nil || p.Signature == nil {
		return errQueryMissing
	}
	if string(alg) != Algorithm {
		return errQueryAlgorithm
	}
	if parseCredential(cred, &p.Authorization) != nil {
		return errQueryCredential
	}
	if _, err := ParseAmzDate(date); err != nil {
		return errQueryDate
	}
	p.AmzDate = date
	num := expires
	if len(num) > 0 && num[0] == '-' {
		num = num[1:] // a negative number is out of range, not malformed
	}
	n, ok := digits(num)
	switch {
	case len(num) == 0 || !ok:
		return errQueryExpires
	case len(expires) != len(num) || len(num) > 7 || n < 1 || n > MaxPresignExpires:
		return ErrPresignExpiresRange
	}
	p.Expires = int64(n)
	if !validSignedHeaders(p.SignedHeaders) {
		return errQuerySignedHeaders
	}
	if len(p.Signature) != 64 || !isHex(p.Signature) {
		return errQuerySignature
	}
	return nil
}

// VerifyPresigned checks the signature of a presigned request whose query
// parameters were parsed into p (ParsePresigned) against secret, the secret
// key of p.AccessKey (looking it up is the caller's job). req.Query is the
// whole raw query, X-Amz-Signature included (it is left out of the canonical
// query here); req.PayloadHash is the x-amz-content-sha256 header's value,
// or nil without that header, which stands for UNSIGNED-PAYLOAD.
//
// In order, it checks: now no later than X-Amz-Date + X-Amz-Expires (else
// ErrPresignExpired); X-Amz-Date no more than MaxSkew after now (else
// ErrPresignNotYetValid); the scope date equal to X-Amz-Date's day, service
// "s3" and "host" in X-Amz-SignedHeaders (else an error wrapping
// ErrAuthorizationQueryParameters); path and query escapes (else
// ErrInvalidURI); every signed header present and the signature, compared in
// constant time (else ErrSignatureDoesNotMatch). The scope's region is used as
// sent: checking it is the caller's policy. A derived signing key enters the
// cache only after a signature made with it verified.
//
// req and p are not retained. It allocates only to grow the Signer's buffers
// and on a KeyCache miss.
func (s *Signer) VerifyPresigned(req *Request, p *Presigned, secret string, now time.Time) error {
	t, err := ParseAmzDate(p.AmzDate)
	if err != nil {
		return errQueryDate
	}
	if now.Sub(t) > time.Duration(p.Expires)*time.Second {
		return ErrPresignExpired
	}
	if t.Sub(now) > MaxSkew {
		return ErrPresignNotYetValid
	}
	if !bytes.Equal(p.Date, p.AmzDate[:8]) {
		return errQueryScopeDate
	}
	if string(p.Service) != "s3" {
		return errQueryScopeService
	}
	if !listHas(p.SignedHeaders, "host") {
		return errQueryHostNotSigned
	}
	var sent [sha256.Size]byte
	if !decodeHex(sent[:], p.Signature) {
		return errQuerySignature
	}
	payload := req.PayloadHash
	if payload == nil {
		payload = unsignedPayload
	}
	if err := s.canonicalForVerifyQuery(req, p.SignedHeaders, payload, querySignature); err != nil {
		return err
	}
	sig, key, cached := signatureKey(s, secret, p.AmzDate, p.Date, p.Region, p.Service)
	if subtle.ConstantTimeCompare(sig[:], sent[:]) != 1 {
		return ErrSignatureDoesNotMatch
	}
	if !cached {
		s.keyCache().store(s.lk, key)
	}
	return nil
}

var (
	unsignedPayload = []byte(UnsignedPayload)
	querySignature  = []byte(QuerySignature)
)

// keyIs reports whether the raw query key, percent-decoded, is name (case-
// sensitively). A malformed escape never matches. It does not allocate.
func keyIs(raw []byte, name string) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				return false
			}
			hi, lo := unhex[raw[i+1]], unhex[raw[i+2]]
			if hi > 15 || lo > 15 {
				return false
			}
			c = hi<<4 | lo
			i += 2
		}
		if j >= len(name) || name[j] != c {
			return false
		}
		j++
	}
	return j == len(name)
}
