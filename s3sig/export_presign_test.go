package s3sig

// PresignedStrings returns the canonical request and the string to sign that
// VerifyPresigned builds for req and p (after a call to it).
func PresignedStrings(s *Signer) (creq, sts string) { return string(s.creq), string(s.sts[64:]) }

// PresignedKeyCached reports whether the derived key of (secret, p's scope)
// is in c.
func PresignedKeyCached(c *KeyCache, secret string, p *Presigned) bool {
	return c.cached(appendLookupKey(nil, secret, p.Date, p.Region, p.Service))
}
