package s3sig

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"time"
)

// Values of x-amz-content-sha256 (and of the last line of the canonical
// request) other than the hex SHA-256 of a payload.
const (
	UnsignedPayload          = "UNSIGNED-PAYLOAD"
	EmptySHA256              = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	StreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	StreamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
)

// MaxSkew is the largest difference between x-amz-date and the verifier's
// clock that Verify accepts, as S3 does.
const MaxSkew = 15 * time.Minute

// Header is one request header. Name may be in any case. Both slices are
// borrowed for the duration of a call and never retained.
type Header struct{ Name, Value []byte }

// Request is what SigV4 covers of an HTTP request. All slices are borrowed
// for the duration of the call they are passed to and never retained or
// modified.
type Request struct {
	// Method is the request method, used as is (S3 methods are uppercase).
	Method []byte
	// Path is the raw path as on the wire, percent-encoded, without the query.
	// Its canonical form follows S3: percent-decode, then encode every byte
	// but A-Za-z0-9-._~ and '/' as %XX. Nothing is encoded twice, there is no
	// dot-segment normalisation, "//" stays, a literal '+' becomes %2B and an
	// empty path is "/". A malformed %-escape is ErrInvalidURI.
	Path []byte
	// Query is the raw query without '?'. Its canonical form: split on '&'
	// (empty parts dropped), each part into key[=value], each percent-decoded
	// then encoded like Path but with '/' encoded too ('+' is literal), pairs
	// sorted by encoded key then encoded value, and "key" without '=' written
	// "key=". A malformed %-escape is ErrInvalidURI.
	Query []byte
	// Headers are, for Sign, the headers to sign: every one is signed, so leave
	// out hop-by-hop and proxy-rewritten ones (User-Agent, Expect, ...). For
	// Verify, the candidates: those named in the Authorization's SignedHeaders
	// are used, the others ignored. Canonical value: leading and trailing
	// whitespace trimmed, runs of spaces collapsed to one; values of repeated
	// names joined with ',' in order; names lowercased (Sign) and sorted.
	Headers []Header
	// PayloadHash is the last line of the canonical request: the
	// x-amz-content-sha256 value (hex SHA-256, UnsignedPayload, Streaming...).
	PayloadHash []byte
}

// Credentials are an access key pair.
type Credentials struct{ AccessKey, SecretKey string }

// Signer signs and verifies requests. It keeps scratch buffers that grow to
// the largest request seen and are reused, so that Sign and Verify allocate
// nothing once the KeyCache holds the signing key.
//
// A Signer is NOT safe for concurrent use: keep one per event loop or
// goroutine. The zero value is ready to use and shares a process-wide
// KeyCache of DefaultKeyCacheSize entries.
type Signer struct {
	keys *KeyCache

	creq   []byte // canonical request
	sts    []byte // 64 bytes of HMAC block, then the string to sign
	lk     []byte // KeyCache lookup key
	signed []byte // SignedHeaders list built by Sign
	names  []byte // lowercased header names (Sign)
	hdrs   []headerRef
	qbuf   []byte // canonical query components
	qs     []queryParam
}

// NewSigner returns a Signer that takes signing keys from keys, which may be
// shared with other Signers; nil means the process-wide cache.
func NewSigner(keys *KeyCache) *Signer { return &Signer{keys: keys} }

func (s *Signer) keyCache() *KeyCache {
	if s.keys == nil {
		s.keys = sharedKeyCache()
	}
	return s.keys
}

// Sign computes the SigV4 signature of req and appends the Authorization
// header value to dst:
//
//	AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=<64 hex>
//
// Every header in req.Headers is signed; the caller must include host,
// x-amz-date (equal to amzDate) and x-amz-content-sha256 (equal to
// req.PayloadHash) and send exactly those headers upstream. amzDate is the
// x-amz-date value, yyyymmddThhmmssZ; region and service form the credential
// scope. On error (ErrMissingDate for a bad amzDate, ErrInvalidURI) dst is
// returned unchanged. req and amzDate are not retained. Sign allocates only
// to grow dst, the Signer's buffers, and on a KeyCache miss.
func (s *Signer) Sign(dst []byte, req *Request, cred Credentials, amzDate []byte, region, service string) ([]byte, error) {
	if _, err := ParseAmzDate(amzDate); err != nil {
		return dst, err
	}
	if err := s.canonicalForSign(req); err != nil {
		return dst, err
	}
	date := amzDate[:8]
	sig := signature(s, cred.SecretKey, amzDate, date, region, service)

	dst = append(dst, Algorithm+" Credential="...)
	dst = append(dst, cred.AccessKey...)
	dst = append(dst, '/')
	dst = appendScope(dst, date, region, service)
	dst = append(dst, ", SignedHeaders="...)
	dst = append(dst, s.signed...)
	dst = append(dst, ", Signature="...)
	return appendHex(dst, sig[:]), nil
}

// Verify checks the signature of a request signed in the Authorization
// header, whose parsed value is a (see ParseAuthorization), against secret,
// the secret key of a.AccessKey (looking it up, and ErrInvalidAccessKeyID if
// unknown, is the caller's job). amzDate is the request's x-amz-date value;
// it is required (a request dated only by Date gets ErrMissingDate).
//
// In order, it checks: amzDate well-formed (else ErrMissingDate); |now -
// amzDate| <= MaxSkew (else ErrRequestTimeTooSkewed); the scope date equal to
// amzDate[:8], service "s3", "host" in SignedHeaders, Signature 64 hex digits
// (else ErrAuthorizationHeaderMalformed); path and query escapes (else
// ErrInvalidURI); every name of SignedHeaders present in req.Headers (case-
// insensitively) and the signature, compared in constant time (else
// ErrSignatureDoesNotMatch). The region of the scope is used as sent; checking
// it is the caller's policy.
//
// req, a and amzDate are not retained. Verify allocates only to grow the
// Signer's buffers and on a KeyCache miss.
func (s *Signer) Verify(req *Request, a *Authorization, secret string, amzDate []byte, now time.Time) error {
	_, err := s.verify(req, a, secret, amzDate, now)
	return err
}

// verify is Verify, returning the signing key the signature verified with.
func (s *Signer) verify(req *Request, a *Authorization, secret string, amzDate []byte, now time.Time) (key [sha256.Size]byte, err error) {
	t, err := ParseAmzDate(amzDate)
	if err != nil {
		return key, err
	}
	if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return key, ErrRequestTimeTooSkewed
	}
	if !bytes.Equal(a.Date, amzDate[:8]) {
		return key, errScopeDate
	}
	if string(a.Service) != "s3" {
		return key, errScopeService
	}
	if !validSignedHeaders(a.SignedHeaders) {
		return key, errAuthSignedHeaders
	}
	if !listHas(a.SignedHeaders, "host") {
		return key, errHostNotSigned
	}
	var sent [sha256.Size]byte
	if !decodeHex(sent[:], a.Signature) {
		return key, errAuthSignature
	}
	if err := s.canonicalForVerify(req, a.SignedHeaders); err != nil {
		return key, err
	}
	// The derived key is cached only once a signature made with it verified: a client that knows
	// an access key id but not its secret cannot fill the cache with keys for made-up regions.
	sig, key, cached := signatureKey(s, secret, amzDate, a.Date, a.Region, a.Service)
	if subtle.ConstantTimeCompare(sig[:], sent[:]) != 1 {
		return [sha256.Size]byte{}, ErrSignatureDoesNotMatch
	}
	if !cached {
		s.keyCache().store(s.lk, key)
	}
	return key, nil
}

// signature computes the signature of the canonical request in s.creq: the
// string to sign (in s.sts, after a 64-byte HMAC block), the signing key of
// (secret, date, region, service) from the cache, and their HMAC.
func signature[T string | []byte](s *Signer, secret string, amzDate, date []byte, region, service T) [sha256.Size]byte {
	crHash := sha256.Sum256(s.creq)
	if cap(s.sts) < sha256.BlockSize {
		s.sts = make([]byte, sha256.BlockSize, 256)
	}
	s.sts = appendStringToSign(s.sts[:sha256.BlockSize], amzDate, date, region, service, &crHash)
	s.lk = appendLookupKey(s.lk[:0], secret, date, region, service)
	key := s.keyCache().signingKey(s.lk)
	return hmacSHA256(&key, s.sts)
}

// signatureKey is signature without caching a derived key on a miss: it returns the key and whether
// it was cached, so that Verify stores it only after the signature matched. s.lk holds the lookup key.
func signatureKey[T string | []byte](s *Signer, secret string, amzDate, date []byte, region, service T) (sig, key [sha256.Size]byte, cached bool) {
	crHash := sha256.Sum256(s.creq)
	if cap(s.sts) < sha256.BlockSize {
		s.sts = make([]byte, sha256.BlockSize, 256)
	}
	s.sts = appendStringToSign(s.sts[:sha256.BlockSize], amzDate, date, region, service, &crHash)
	s.lk = appendLookupKey(s.lk[:0], secret, date, region, service)
	key, cached = s.keyCache().lookup(s.lk)
	return hmacSHA256(&key, s.sts), key, cached
}

// appendStringToSign appends
//
//	AWS4-HMAC-SHA256 '\n' amzDate '\n' date/region/service/aws4_request '\n' hex(crHash)
func appendStringToSign[T string | []byte](dst, amzDate, date []byte, region, service T, crHash *[sha256.Size]byte) []byte {
	dst = append(dst, Algorithm+"\n"...)
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = appendScope(dst, date, region, service)
	dst = append(dst, '\n')
	return appendHex(dst, crHash[:])
}

// appendScope appends date/region/service/aws4_request.
func appendScope[T string | []byte](dst, date []byte, region, service T) []byte {
	dst = append(dst, date...)
	dst = append(dst, '/')
	dst = append(dst, region...)
	dst = append(dst, '/')
	dst = append(dst, service...)
	return append(dst, "/"+scopeTerminator...)
}

const lowerHex = "0123456789abcdef"

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, lowerHex[c>>4], lowerHex[c&15])
	}
	return dst
}

// decodeHex decodes exactly len(dst)*2 hex digits of either case.
func decodeHex(dst, src []byte) bool {
	if len(src) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, lo := unhex[src[2*i]], unhex[src[2*i+1]]
		if hi > 15 || lo > 15 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}
