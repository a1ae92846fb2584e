package s3sig

import "bytes"

// Algorithm is the SigV4 scheme name that starts an Authorization value and
// a string to sign.
const Algorithm = "AWS4-HMAC-SHA256"

const scopeTerminator = "aws4_request"

// Authorization holds the parts of an AWS4-HMAC-SHA256 Authorization header
// value:
//
//	AWS4-HMAC-SHA256 Credential=<AccessKey>/<Date>/<Region>/<Service>/aws4_request,
//	  SignedHeaders=<SignedHeaders>, Signature=<Signature>
//
// Every field is a view into the value given to ParseAuthorization and is
// valid only as long as that value is.
type Authorization struct {
	AccessKey     []byte
	Date          []byte // yyyymmdd of the credential scope
	Region        []byte
	Service       []byte
	SignedHeaders []byte // ';'-separated header names, as sent
	Signature     []byte // 64 hex digits, as sent
}

// ParseAuthorization parses an Authorization header value into a, whose
// fields then point into v (v is neither copied nor modified).
//
// It accepts the spacing variants clients send: spaces or tabs around the
// value, one or more after the scheme, and around the ',' between components
// ("Credential=..., SignedHeaders=..., Signature=..." with or without a space
// after each comma), in any order. Each of Credential, SignedHeaders and
// Signature must appear exactly once; component names are case-sensitive.
// Credential's access key may contain '/': the scope is taken from the right.
//
// A scheme other than AWS4-HMAC-SHA256 (e.g. SigV2's "AWS") gives
// ErrUnsupportedAuth; any other defect gives an error wrapping
// ErrAuthorizationHeaderMalformed. On error a is left in an unspecified state.
// It does not allocate.
func ParseAuthorization(v []byte, a *Authorization) error {
	*a = Authorization{}
	v = trimOWS(v)
	if len(v) == 0 {
		return errAuthEmpty
	}
	i := 0
	for i < len(v) && v[i] != ' ' && v[i] != '\t' {
		i++
	}
	if string(v[:i]) != Algorithm {
		return ErrUnsupportedAuth
	}
	rest := trimOWS(v[i:])
	if len(rest) == 0 {
		return errAuthNoFields
	}
	var cred []byte
	for len(rest) > 0 {
		var part []byte
		if j := bytes.IndexByte(rest, ','); j >= 0 {
			part, rest = rest[:j], rest[j+1:]
			if len(rest) == 0 {
				return errAuthField // trailing comma
			}
		} else {
			part, rest = rest, nil
		}
		name, value, ok := bytes.Cut(trimOWS(part), []byte{'='})
		if !ok {
			return errAuthField
		}
		var field *[]byte
		switch string(name) {
		case "Credential":
			field = &cred
		case "SignedHeaders":
			field = &a.SignedHeaders
		case "Signature":
			field = &a.Signature
		default:
			return errAuthField
		}
		if *field != nil {
			return errAuthDuplicate
		}
		*field = value // non-nil even when empty
	}
	if cred == nil || a.SignedHeaders == nil || a.Signature == nil {
		return errAuthMissing
	}
	if err := parseCredential(cred, a); err != nil {
		return err
	}
	if !validSignedHeaders(a.SignedHeaders) {
		return errAuthSignedHeaders
	}
	if len(a.Signature) != 64 || !isHex(a.Signature) {
		return errAuthSignature
	}
	return nil
}

// parseCredential splits <key>/<yyyymmdd>/<region>/<service>/aws4_request
// from the right.
func parseCredential(c []byte, a *Authorization) error {
	var parts [4][]byte // terminator, service, region, date
	for k := range parts {
		j := bytes.LastIndexByte(c, '/')
		if j < 0 {
			return errAuthCredential
		}
		parts[k], c = c[j+1:], c[:j]
	}
	if len(c) == 0 || string(parts[0]) != scopeTerminator || len(parts[1]) == 0 ||
		len(parts[2]) == 0 || !isScopeDate(parts[3]) {
		return errAuthCredential
	}
	a.AccessKey, a.Date, a.Region, a.Service = c, parts[3], parts[2], parts[1]
	return nil
}

// validSignedHeaders reports whether s is a non-empty ';'-separated list of
// non-empty names without whitespace, ',' or control bytes.
func validSignedHeaders(s []byte) bool {
	if len(s) == 0 || s[0] == ';' || s[len(s)-1] == ';' {
		return false
	}
	for i, c := range s {
		if c <= ' ' || c == 0x7f || c == ',' || (c == ';' && s[i-1] == ';') {
			return false
		}
	}
	return true
}

func isHex(b []byte) bool {
	for _, c := range b {
		if unhex[c] > 15 {
			return false
		}
	}
	return true
}

// trimOWS removes leading and trailing spaces and tabs.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
