package cors

import "bytes"

// NoMatch is what Match and MatchPreflight return when no rule allows the request.
const NoMatch = -1

// Match returns the index of the first rule that allows an actual request with the given Origin
// header value and method, or NoMatch. An origin with bytes outside printable ASCII matches
// nothing (it is echoed in the answer). The arguments are borrowed; it does not allocate.
func (c *Config) Match(origin, method []byte) int {
	if c == nil || !printable(origin) {
		return NoMatch
	}
	m := methodBit(method)
	if m == 0 {
		return NoMatch
	}
	for i := range c.rules {
		r := &c.rules[i]
		if r.methods&m != 0 && r.originIndex(origin) >= 0 {
			return i
		}
	}
	return NoMatch
}

// MatchPreflight returns the index of the first rule that allows a preflight: its Origin, its
// Access-Control-Request-Method and every name its Access-Control-Request-Headers lists
// (comma-separated, blanks around names ignored; reqHeaders is nil or empty when the preflight
// has none). A list element that is not a header name matches nothing. The arguments are
// borrowed; it does not allocate.
func (c *Config) MatchPreflight(origin, method, reqHeaders []byte) int {
	if c == nil || !printable(origin) || !validHeaderList(reqHeaders) {
		return NoMatch
	}
	m := methodBit(method)
	if m == 0 {
		return NoMatch
	}
	for i := range c.rules {
		r := &c.rules[i]
		if r.methods&m != 0 && r.originIndex(origin) >= 0 && r.allowsHeaders(reqHeaders) {
			return i
		}
	}
	return NoMatch
}

func (r *rule) originIndex(origin []byte) int {
	for i := range r.origins {
		if r.origins[i].match(origin) {
			return i
		}
	}
	return -1
}

// allowsHeaders reports whether every name in the comma-separated list matches an allowed header.
func (r *rule) allowsHeaders(list []byte) bool {
	for len(list) > 0 {
		var name []byte
		name, list = nextName(list)
		if len(name) == 0 {
			continue
		}
		ok := false
		for i := range r.headers {
			if r.headers[i].match(name) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// nextName splits the first element off a comma-separated list, trimmed of blanks.
func nextName(list []byte) (name, rest []byte) {
	name, rest, _ = bytes.Cut(list, []byte{','})
	return bytes.Trim(name, " \t"), rest
}

// validHeaderList reports whether list is empty or a comma-separated list of header names
// (tokens) with optional blanks around them.
func validHeaderList(list []byte) bool {
	for len(list) > 0 {
		var name []byte
		name, list = nextName(list)
		for _, c := range name {
			if !tchar(c) {
				return false
			}
		}
	}
	return true
}

// printable reports whether v is non-empty visible ASCII (spaces allowed inside).
func printable(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c < ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// Vary is the header line S3 sends on every answer to a request with an Origin to a bucket with
// a CORS configuration, matched or not.
const Vary = "Vary: Origin, Access-Control-Request-Headers, Access-Control-Request-Method\r\n"

// AppendActual appends the header lines (each ending in CRLF) of an answer to an actual request
// that rule i (from Match) allows: Access-Control-Allow-Origin, -Allow-Methods,
// -Allow-Credentials (unless the rule's origin is "*"), -Expose-Headers and -Max-Age when
// configured, and Vary. origin is the request's Origin header value. It allocates only when dst
// must grow.
func (c *Config) AppendActual(dst []byte, i int, origin []byte) []byte {
	return c.appendAnswer(dst, i, origin, nil, false)
}

// AppendPreflight appends the header lines of the answer to a preflight that rule i (from
// MatchPreflight) allows: those of AppendActual plus Access-Control-Allow-Headers with the
// requested headers (reqHeaders as sent, when not empty and a list of header names).
func (c *Config) AppendPreflight(dst []byte, i int, origin, reqHeaders []byte) []byte {
	return c.appendAnswer(dst, i, origin, reqHeaders, true)
}

func (c *Config) appendAnswer(dst []byte, i int, origin, reqHeaders []byte, preflight bool) []byte {
	r := &c.rules[i]
	star := r.anyOrig[r.originIndex(origin)]
	dst = append(dst, "Access-Control-Allow-Origin: "...)
	if star {
		dst = append(dst, '*')
	} else {
		dst = append(dst, origin...)
	}
	dst = append(dst, "\r\nAccess-Control-Allow-Methods: "...)
	dst = append(dst, r.allowM...)
	dst = append(dst, "\r\n"...)
	if !star {
		dst = append(dst, "Access-Control-Allow-Credentials: true\r\n"...)
	}
	if preflight && len(bytes.Trim(reqHeaders, " \t,")) > 0 && validHeaderList(reqHeaders) {
		dst = append(dst, "Access-Control-Allow-Headers: "...)
		dst = append(dst, bytes.Trim(reqHeaders, " \t")...)
		dst = append(dst, "\r\n"...)
	}
	if r.expose != "" {
		dst = append(dst, "Access-Control-Expose-Headers: "...)
		dst = append(dst, r.expose...)
		dst = append(dst, "\r\n"...)
	}
	if r.maxAge != "" {
		dst = append(dst, "Access-Control-Max-Age: "...)
		dst = append(dst, r.maxAge...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, Vary...)
}
