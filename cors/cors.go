// Package cors evaluates a bucket's CORS rules the way Amazon S3 does: it compiles rules in the
// shape of S3's CORSRule, finds the first rule that allows a preflight (Origin,
// Access-Control-Request-Method, Access-Control-Request-Headers) or an actual request (Origin,
// method), and renders the Access-Control-* response headers into a caller's buffer. It imports no
// project package, does no I/O and, once a Config is compiled, allocates nothing.
//
// S3's rules ("Configuring cross-origin resource sharing", "CORSRule" in the S3 API reference):
//
//   - AllowedOrigin: an origin ("https://app.example.com") or a pattern with at most one '*'
//     ("https://*.example.com", "*"); compared case-insensitively, the '*' matching any run of
//     bytes.
//   - AllowedMethod: GET, PUT, POST, DELETE or HEAD (case as written).
//   - AllowedHeader: header names with at most one '*' each; every name an
//     Access-Control-Request-Headers lists must match one of them (case-insensitively).
//   - ExposeHeader: response headers the browser lets the script read.
//   - MaxAgeSeconds: how long a browser may cache the preflight's answer.
//
// The rules are tried in order and the first match wins. For the answer, S3 sends
// Access-Control-Allow-Origin with the request's origin (and Access-Control-Allow-Credentials:
// true), or "*" when the matching rule's origin is "*"; Access-Control-Allow-Methods with the rule's
// methods; Access-Control-Allow-Headers with the requested headers (preflight only);
// Access-Control-Expose-Headers and Access-Control-Max-Age when configured; and
// "Vary: Origin, Access-Control-Request-Headers, Access-Control-Request-Method".
package cors

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxRules is S3's limit on the rules of one CORS configuration.
const MaxRules = 100

// Rule is one CORS rule as configured (S3's CORSRule).
type Rule struct {
	AllowedOrigins []string
	AllowedMethods []string
	AllowedHeaders []string
	ExposeHeaders  []string
	MaxAgeSeconds  int // 0: no Access-Control-Max-Age
}

// Config is a compiled, immutable list of rules, safe for concurrent use.
type Config struct {
	rules []rule
}

type rule struct {
	origins  []pattern
	methods  methodSet
	headers  []pattern
	anyOrig  []bool // origins[i] is "*": the answer's Allow-Origin is "*", without credentials
	allowM   string // "PUT, POST"
	expose   string // "ETag, x-amz-version-id"; "" = none
	maxAge   string // decimal seconds; "" = none
	original Rule
}

// pattern is a string with at most one '*': prefix '*' suffix, or exact when !star.
type pattern struct {
	prefix, suffix string
	star           bool
}

// methodSet is a bit set of the five methods S3 accepts in AllowedMethod.
type methodSet uint8

var methodNames = [...]string{"GET", "PUT", "POST", "DELETE", "HEAD"}

// methodBit is the bit of method m (exact, upper case as HTTP methods are), 0 for any other.
func methodBit(m []byte) methodSet {
	for i, n := range methodNames {
		if string(m) == n {
			return 1 << i
		}
	}
	return 0
}

// Errors of New; each wrapped with the rule's position and the offending value.
var (
	ErrTooManyRules = errors.New("cors: more than 100 rules")
	ErrNoOrigin     = errors.New("cors: a rule needs at least one allowed_origins entry")
	ErrNoMethod     = errors.New("cors: a rule needs at least one allowed_methods entry")
	ErrMethod       = errors.New("cors: allowed_methods entries are GET, PUT, POST, DELETE or HEAD")
	ErrWildcard     = errors.New("cors: at most one '*' per allowed_origins or allowed_headers entry")
	ErrValue        = errors.New("cors: entries must be non-empty printable ASCII without spaces, commas or quotes")
	ErrHeaderName   = errors.New("cors: expose_headers entries must be header names")
	ErrMaxAge       = errors.New("cors: max_age_seconds must not be negative")
)

// New compiles rules; an empty list gives a Config that allows nothing (nil rules mean no CORS
// configuration at all: the caller keeps a nil *Config then).
func New(rules []Rule) (*Config, error) {
	if len(rules) > MaxRules {
		return nil, ErrTooManyRules
	}
	c := &Config{rules: make([]rule, len(rules))}
	for i, r := range rules {
		if err := compile(&c.rules[i], r); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i+1, err)
		}
	}
	return c, nil
}

// Rules returns the rules as configured.
func (c *Config) Rules() []Rule {
	out := make([]Rule, len(c.rules))
	for i := range c.rules {
		out[i] = c.rules[i].original
	}
	return out
}

// Problems lists what is wrong with r, each problem naming its key (`allowed_methods "PATCH": …`)
// when it is about one entry; nil when New would accept it.
func (r Rule) Problems() []error {
	var errs []error
	if len(r.AllowedOrigins) == 0 {
		errs = append(errs, ErrNoOrigin)
	}
	if len(r.AllowedMethods) == 0 {
		errs = append(errs, ErrNoMethod)
	}
	if r.MaxAgeSeconds < 0 {
		errs = append(errs, fmt.Errorf("max_age_seconds %d: %w", r.MaxAgeSeconds, ErrMaxAge))
	}
	for _, o := range r.AllowedOrigins {
		if _, err := compilePattern(o); err != nil {
			errs = append(errs, fmt.Errorf("allowed_origins %q: %w", o, err))
		}
	}
	for _, m := range r.AllowedMethods {
		if methodBit([]byte(m)) == 0 {
			errs = append(errs, fmt.Errorf("allowed_methods %q: %w", m, ErrMethod))
		}
	}
	for _, h := range r.AllowedHeaders {
		if _, err := compilePattern(h); err != nil {
			errs = append(errs, fmt.Errorf("allowed_headers %q: %w", h, err))
		}
	}
	for _, h := range r.ExposeHeaders {
		if !isToken(h) {
			errs = append(errs, fmt.Errorf("expose_headers %q: %w", h, ErrHeaderName))
		}
	}
	return errs
}

func compile(dst *rule, r Rule) error {
	if errs := r.Problems(); len(errs) > 0 {
		return errs[0]
	}
	for _, o := range r.AllowedOrigins {
		p, _ := compilePattern(o)
		dst.origins = append(dst.origins, p)
		dst.anyOrig = append(dst.anyOrig, o == "*")
	}
	var names []string
	for _, m := range r.AllowedMethods {
		b := methodBit([]byte(m))
		if dst.methods&b == 0 {
			names = append(names, m)
		}
		dst.methods |= b
	}
	dst.allowM = strings.Join(names, ", ")
	for _, h := range r.AllowedHeaders {
		p, _ := compilePattern(h)
		dst.headers = append(dst.headers, p)
	}
	dst.expose = strings.Join(r.ExposeHeaders, ", ")
	if r.MaxAgeSeconds > 0 {
		dst.maxAge = strconv.Itoa(r.MaxAgeSeconds)
	}
	dst.original = r
	return nil
}

func compilePattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, ErrValue
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ',' || c == '"' {
			return pattern{}, ErrValue
		}
	}
	before, after, found := strings.Cut(s, "*")
	if !found {
		return pattern{prefix: s}, nil
	}
	if strings.Contains(after, "*") {
		return pattern{}, ErrWildcard
	}
	return pattern{prefix: before, suffix: after, star: true}, nil
}

// match reports whether v matches p, ignoring ASCII case.
func (p *pattern) match(v []byte) bool {
	if !p.star {
		return len(v) == len(p.prefix) && equalFold(v, p.prefix)
	}
	return len(v) >= len(p.prefix)+len(p.suffix) &&
		equalFold(v[:len(p.prefix)], p.prefix) && equalFold(v[len(v)-len(p.suffix):], p.suffix)
}

func equalFold(b []byte, s string) bool {
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 token (a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar(s[i]) {
			return false
		}
	}
	return true
}

// tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
// / DIGIT / ALPHA (RFC 9110 5.6.2).
func tchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
