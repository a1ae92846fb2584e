package s3sig

// URI encoding as S3 defines it for SigV4 (S3 API Reference, "Signature
// Calculations for the Authorization Header", UriEncode):
//
//	URI encode every byte. UriEncode() must enforce the following rules:
//	- URI encode every byte except the unreserved characters:
//	  'A'-'Z', 'a'-'z', '0'-'9', '-', '.', '_', and '~'.
//	- The space character is a reserved character and must be encoded as "%20".
//	- Each URI encoded byte is formed by a '%' and the two-digit hexadecimal
//	  value of the byte. Letters in the hexadecimal value must be uppercase.
//	- Encode the forward slash character, '/', everywhere except in the object
//	  key name.

const upperHex = "0123456789ABCDEF"

// unreserved is the RFC 3986 unreserved set as a 256-bit mask.
var unreserved = func() (m [4]uint64) {
	for c := 0; c < 256; c++ {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' {
			m[c>>6] |= 1 << (c & 63)
		}
	}
	return m
}()

func isUnreserved(c byte) bool { return unreserved[c>>6]&(1<<(c&63)) != 0 }

// unhex maps an ASCII hex digit to its value and anything else to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < 10; i++ {
		t['0'+i] = byte(i)
	}
	for i := 0; i < 6; i++ {
		t['a'+i] = byte(10 + i)
		t['A'+i] = byte(10 + i)
	}
	return t
}()

// appendEscapedByte appends c, S3-URI-encoded.
func appendEscapedByte(dst []byte, c byte, keepSlash bool) []byte {
	if isUnreserved(c) || (keepSlash && c == '/') {
		return append(dst, c)
	}
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

// AppendURIEncode appends s, which holds raw (already decoded) bytes, to dst
// in S3's URI encoding: the unreserved bytes A-Za-z0-9-._~ (and '/' if
// keepSlash) are kept, every other byte becomes %XX with uppercase hex digits.
// Use keepSlash for object key paths and not for query names and values.
// It allocates only to grow dst; s is not retained.
func AppendURIEncode(dst, s []byte, keepSlash bool) []byte {
	for _, c := range s {
		dst = appendEscapedByte(dst, c, keepSlash)
	}
	return dst
}

// AppendPercentDecode appends s to dst with each %XX escape (either hex case)
// replaced by its byte. '+' is a literal '+', not a space, as in S3 paths and
// in S3's view of query strings. A '%' not followed by two hex digits yields
// ErrInvalidURI, and then dst is returned as given. It allocates only to grow
// dst; s is not retained.
func AppendPercentDecode(dst, s []byte) ([]byte, error) {
	n := len(dst)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return dst[:n], ErrInvalidURI
			}
			hi, lo := unhex[s[i+1]], unhex[s[i+2]]
			if hi > 15 || lo > 15 {
				return dst[:n], ErrInvalidURI
			}
			c = hi<<4 | lo
			i += 2
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// appendCanonicalComponent appends raw, percent-decoded and then S3-URI-encoded,
// in one pass: a byte given as an escape and the same byte given raw produce
// the same output, and nothing is encoded twice. On error dst is returned as
// given.
func appendCanonicalComponent(dst, raw []byte, keepSlash bool) ([]byte, error) {
	n := len(dst)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' {
			if i+2 >= len(raw) {
				return dst[:n], ErrInvalidURI
			}
			hi, lo := unhex[raw[i+1]], unhex[raw[i+2]]
			if hi > 15 || lo > 15 {
				return dst[:n], ErrInvalidURI
			}
			c = hi<<4 | lo
			i += 2
		}
		dst = appendEscapedByte(dst, c, keepSlash)
	}
	return dst, nil
}

// appendCanonicalURI appends the canonical URI of a raw request path: decode,
// then encode every byte but the unreserved ones and '/'. No dot-segment
// normalisation, "//" is kept, and an empty path is "/".
func appendCanonicalURI(dst, rawPath []byte) ([]byte, error) {
	if len(rawPath) == 0 {
		return append(dst, '/'), nil
	}
	return appendCanonicalComponent(dst, rawPath, true)
}
