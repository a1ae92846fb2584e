package httpparse

// Byte classes, one table lookup per byte.
const (
	// cToken: RFC 9110 5.6.2
	//   token = 1*tchar
	//   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
	//           "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
	cToken = 1 << iota
	// cValue: RFC 9110 5.5
	//   field-value   = *field-content
	//   field-content = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]
	//   field-vchar   = VCHAR / obs-text ; VCHAR = %x21-7E, obs-text = %x80-FF
	// plus SP and HTAB (OWS inside and around the value).
	cValue
	// cTarget: bytes allowed in a request-target here: > 0x20 and != 0x7F.
	// The URI grammar (RFC 3986) is left to the layers that decode it.
	cTarget
	// cHost: RFC 9110 7.2 Host = uri-host [ ":" port ], with RFC 3986
	//   reg-name = *( unreserved / pct-encoded / sub-delims )
	//   IP-literal = "[" ( IPv6address / IPvFuture ) "]"
	// checked per byte only: ALPHA DIGIT - . _ ~ % ! $ & ' ( ) * + , ; = : [ ]
	cHost
	// cOWS: SP / HTAB (RFC 9110 5.6.3 OWS = *( SP / HTAB ))
	cOWS
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if alnum || contains("!#$%&'*+-.^_`|~", b) {
			t[c] |= cToken
		}
		if b == '\t' || b >= 0x20 && b != 0x7f {
			t[c] |= cValue
		}
		if b > 0x20 && b != 0x7f {
			t[c] |= cTarget
		}
		if alnum || contains("-._~%!$&'()*+,;=:[]", b) {
			t[c] |= cHost
		}
		if b == ' ' || b == '\t' {
			t[c] |= cOWS
		}
	}
	return t
}()

// lower maps ASCII upper-case letters to lower case and every other byte to
// itself.
var lower = func() (t [256]byte) {
	for c := 0; c < 256; c++ {
		t[c] = byte(c)
		if 'A' <= c && c <= 'Z' {
			t[c] = byte(c) + 'a' - 'A'
		}
	}
	return t
}()

func contains(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

// SWAR helpers: test 8 bytes at once. For both, the lowest flagged byte is
// exactly the first matching byte (false positives only occur above a true
// match, through the borrow), so bits.TrailingZeros64(m)/8 locates it.
const (
	swarLo = 0x0101010101010101
	swarHi = 0x8080808080808080
)

// ctlOrDel flags bytes < 0x20 and bytes == 0x7F in x.
func ctlOrDel(x uint64) uint64 {
	y := x ^ (0x7f * swarLo)
	return ((x - 0x20*swarLo) &^ x & swarHi) | ((y - swarLo) &^ y & swarHi)
}
