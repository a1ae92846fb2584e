package s3sig

// Internals exposed to the tests of package s3sig_test.

// CanonicalRequest returns the canonical request Sign would build for req.
func CanonicalRequest(s *Signer, req *Request) (string, error) {
	if err := s.canonicalForSign(req); err != nil {
		return "", err
	}
	return string(s.creq), nil
}

// StringToSign returns the string to sign Sign would build for req.
func StringToSign(s *Signer, req *Request, amzDate []byte, region, service string) (string, error) {
	if _, err := ParseAmzDate(amzDate); err != nil {
		return "", err
	}
	if err := s.canonicalForSign(req); err != nil {
		return "", err
	}
	signature(s, "unused", amzDate, amzDate[:8], region, service)
	return string(s.sts[64:]), nil
}

// CanonicalURI appends the canonical URI of a raw path.
func CanonicalURI(dst, raw []byte) ([]byte, error) { return appendCanonicalURI(dst, raw) }

// CanonicalQuery appends the canonical query string of a raw query.
func CanonicalQuery(dst, raw []byte) ([]byte, error) {
	var s Signer
	return s.appendCanonicalQuery(dst, raw, nil)
}

// KeyLookup holds the scratch buffer of a KeyCache lookup.
type KeyLookup struct{ buf []byte }

// Get returns the signing key of (secret, date, region, service) from c.
func (l *KeyLookup) Get(c *KeyCache, secret, date, region, service string) [32]byte {
	l.buf = appendLookupKey(l.buf[:0], secret, []byte(date), region, service)
	return c.signingKey(l.buf)
}

// SigningKey returns the signing key of (secret, date, region, service) from c.
func SigningKey(c *KeyCache, secret, date, region, service string) [32]byte {
	var l KeyLookup
	return l.Get(c, secret, date, region, service)
}

// Cached reports whether c holds the key of (secret, date, region, service).
func Cached(c *KeyCache, secret, date, region, service string) bool {
	return c.cached(appendLookupKey(nil, secret, []byte(date), region, service))
}

// Max returns the bound of c.
func (c *KeyCache) Max() int { return c.max }

// CanonicalQueryExcluding is CanonicalQuery leaving out the parameter whose
// encoded key is exclude (X-Amz-Signature in presigned URLs).
func CanonicalQueryExcluding(dst, raw []byte, exclude string) ([]byte, error) {
	var s Signer
	return s.appendCanonicalQuery(dst, raw, []byte(exclude))
}

// DeriveSigningKey exposes the signing-key derivation to tests.
var DeriveSigningKey = deriveSigningKey
