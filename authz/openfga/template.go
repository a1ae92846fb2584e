package openfga

import (
	"fmt"
	"strings"
)

// Template builds a tuple's user or object from a request: literal text with placeholders in
// braces. The names a template may use:
//
//	{principal}   the authenticated principal (SigV4 access key id, JWT subject)
//	{bucket}      the client-facing bucket name
//	{key}         the object key
//	{key_prefix}  the key up to its last '/' ("users/alice" for "users/alice/a.png"; "" without '/')
//	{claims.X}    the principal's claim X (a string, number or boolean)
//
// The zero Template expands to "".
type Template struct {
	parts []part
}

type part struct {
	lit  string // literal text, when name == ""
	name string // placeholder name
}

// ParseTemplate parses s. Unknown names, unbalanced braces and empty placeholders are errors.
func ParseTemplate(s string) (Template, error) {
	var t Template
	rest := s
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if rest[open] == '}' {
			return Template{}, fmt.Errorf("template %q: '}' without '{'", s)
		}
		if open > 0 {
			t.parts = append(t.parts, part{lit: rest[:open]})
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return Template{}, fmt.Errorf("template %q: '{' without '}'", s)
		}
		name := rest[open+1 : open+1+end]
		if !validName(name) {
			return Template{}, fmt.Errorf("template %q: unknown placeholder {%s} (want principal, bucket, key, key_prefix or claims.NAME)", s, name)
		}
		t.parts = append(t.parts, part{name: name})
		rest = rest[open+1+end+1:]
	}
	return t, nil
}

func validName(n string) bool {
	switch n {
	case "principal", "bucket", "key", "key_prefix":
		return true
	}
	claim, ok := strings.CutPrefix(n, "claims.")
	return ok && claim != ""
}

// Vars are the values a template is expanded with.
type Vars struct {
	Principal string
	Bucket    string
	Key       string
	Claims    map[string]any
}

// Expand fills t's placeholders from v. It fails (ok false, with the placeholder's name) when a
// placeholder has no value: an empty principal or key, or a claim that is missing or not a
// string, number or boolean. A check must not run with a half-built tuple.
func (t Template) Expand(v *Vars) (s string, missing string, ok bool) {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		var val string
		switch p.name {
		case "principal":
			val = v.Principal
		case "bucket":
			val = v.Bucket
		case "key":
			val = v.Key
		case "key_prefix":
			if i := strings.LastIndexByte(v.Key, '/'); i >= 0 {
				val = v.Key[:i]
			}
			b.WriteString(val)
			continue // an empty prefix is a value: the top of the bucket
		default:
			val = claimString(v.Claims[strings.TrimPrefix(p.name, "claims.")])
		}
		if val == "" {
			return "", p.name, false
		}
		b.WriteString(val)
	}
	return b.String(), "", true
}

// claimString formats a scalar claim; "" for anything else.
func claimString(c any) string {
	switch x := c.(type) {
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%f", x), "0"), ".")
	case int:
		return fmt.Sprint(x)
	case int64:
		return fmt.Sprint(x)
	}
	return ""
}

// String returns the template as written (placeholders in braces).
func (t Template) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
		} else {
			b.WriteString("{" + p.name + "}")
		}
	}
	return b.String()
}
