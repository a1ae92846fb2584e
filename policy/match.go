package policy

import (
	"errors"
	"strings"
)

// Key templates.
//
//	template    = *( literal / "*" / placeholder )
//	placeholder = "{principal}" / "{jwt." claim-name "}"
//	claim-name  = 1*( any byte but "{", "}" )
//
// A literal is any run of bytes but '*', '{' and '}' and matches itself (keys are case-sensitive).
// '*' matches any run of bytes, '/' included, the empty run too. A placeholder matches its value
// exactly: {principal} the principal id, {jwt.<name>} the string claim <name> ({jwt.sub} is the
// JWT subject). A value that is missing, not a string, empty or holds '/' makes the template match
// no key at all: "users/{principal}/*" must never let principal "a/b" write under users/a/.

// maxTokens bounds a template's tokens, so that Check resolves placeholders into a fixed array.
const maxTokens = 32

type tokKind uint8

const (
	tokLit tokKind = iota
	tokStar
	tokPrincipal
	tokClaim
)

type token struct {
	kind tokKind
	s    string // the literal, or the claim name
}

type template struct{ toks []token }

func parseTemplate(s string) (template, error) {
	var t template
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '*':
			if n := len(t.toks); n == 0 || t.toks[n-1].kind != tokStar { // "**" is "*"
				t.toks = append(t.toks, token{kind: tokStar})
			}
			i++
		case '}':
			return t, errors.New("'}' without '{'")
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return t, errors.New("'{' without '}'")
			}
			name := s[i+1 : i+end]
			switch {
			case strings.ContainsRune(name, '{'):
				return t, errors.New("nested '{'")
			case name == "principal":
				t.toks = append(t.toks, token{kind: tokPrincipal})
			case strings.HasPrefix(name, "jwt.") && len(name) > len("jwt."):
				t.toks = append(t.toks, token{kind: tokClaim, s: name[len("jwt."):]})
			default:
				return t, errors.New("unknown placeholder {" + name + "}: want {principal}, {jwt.sub} or {jwt.<claim>}")
			}
			i += end + 1
		default:
			j := i
			for j < len(s) && s[j] != '*' && s[j] != '{' && s[j] != '}' {
				j++
			}
			t.toks = append(t.toks, token{kind: tokLit, s: s[i:j]})
			i = j
		}
		if len(t.toks) > maxTokens {
			return t, errors.New("too many parts (at most 32 literals, '*' and placeholders)")
		}
	}
	return t, nil
}

// match reports whether key matches t, with placeholders taken from in. It does not allocate.
func (t *template) match(key []byte, in *Input) bool {
	var vals [maxTokens]string
	for i, tk := range t.toks {
		switch tk.kind {
		case tokLit:
			vals[i] = tk.s
		case tokPrincipal, tokClaim:
			v := in.Principal
			if tk.kind == tokClaim {
				s, ok := in.Claims[tk.s].(string)
				if !ok {
					return false
				}
				v = s
			}
			if v == "" || strings.IndexByte(v, '/') >= 0 {
				return false
			}
			vals[i] = v
		}
	}
	return globMatch(t.toks, vals[:len(t.toks)], key)
}

// globMatch matches key against tokens: a tokStar matches any run of bytes, every other token
// matches vals[i] exactly. Greedy with one backtrack point (the last star): O(len(toks)·len(key)).
func globMatch(toks []token, vals []string, key []byte) bool {
	ti, ki := 0, 0
	starT, starK := -1, 0
	for {
		if ti < len(toks) {
			if toks[ti].kind == tokStar {
				starT, starK = ti, ki
				ti++
				continue
			}
			v := vals[ti]
			if len(key)-ki >= len(v) && string(key[ki:ki+len(v)]) == v {
				ki += len(v)
				ti++
				continue
			}
		} else if ki == len(key) {
			return true
		}
		// Mismatch: let the last star take one more byte.
		if starT < 0 || starK >= len(key) {
			return false
		}
		starK++
		ti, ki = starT+1, starK
	}
}

// Media types (RFC 9110 8.3.1):
//
//	media-type = type "/" subtype parameters
//	type       = token
//	subtype    = token
//	token      = 1*tchar
//	tchar      = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
//	             "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA

func isTchar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}

// validMediaPattern: "*/*", "type/*" or "type/subtype", type and subtype tokens other than "*".
func validMediaPattern(p string) bool {
	if p == "*/*" {
		return true
	}
	typ, sub, ok := strings.Cut(p, "/")
	return ok && typ != "*" && isToken(typ) && (sub == "*" || isToken(sub) && !strings.Contains(sub, "*"))
}

// matchMediaType reports whether the Content-Type value ct has a media type one of the lowercased
// patterns allows. Parameters (after ';') and surrounding whitespace are ignored; case is not
// significant. An absent or malformed Content-Type matches nothing.
func matchMediaType(patterns []string, ct []byte) bool {
	for i, c := range ct {
		if c == ';' {
			ct = ct[:i]
			break
		}
	}
	ct = trimOWS(ct)
	slash := -1
	for i, c := range ct {
		if c == '/' && slash < 0 {
			slash = i
		} else if !isTchar(c) {
			return false
		}
	}
	if slash <= 0 || slash == len(ct)-1 {
		return false
	}
	for _, p := range patterns {
		switch {
		case p == "*/*":
			return true
		case strings.HasSuffix(p, "/*"):
			if equalFold(ct[:slash+1], p[:len(p)-1]) {
				return true
			}
		case equalFold(ct, p):
			return true
		}
	}
	return false
}

// equalFold reports whether b equals lower (lower case) ignoring ASCII case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(lower) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
