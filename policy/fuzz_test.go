package policy

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzTemplate checks the key matcher against regexp, the oracle: a template is the regexp with
// literals quoted, '*' as (?s:.*) and placeholders replaced by their (quoted) values.
func FuzzTemplate(f *testing.F) {
	for _, s := range [][3]string{
		{"users/{principal}/*", "users/alice/a.jpg", "alice"},
		{"*a*a*a", "aaaa", ""},
		{"{jwt.sub}/*.png", "u/x.png", "u"},
		{"a**b", "ab", "p"},
		{"*", "", ""},
		{"{principal}", "", ""},
		{"x{", "x", "x"},
		{"*/*/*", "a/b", "p"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pat, key, principal string) {
		tpl, err := parseTemplate(pat)
		if err != nil {
			return
		}
		in := &Input{Principal: principal, Claims: map[string]any{"sub": principal}}
		got := tpl.match([]byte(key), in)
		var re strings.Builder
		re.WriteString(`^(?s:`)
		for _, tk := range tpl.toks {
			switch tk.kind {
			case tokStar:
				re.WriteString(`.*`)
			case tokLit:
				re.WriteString(regexp.QuoteMeta(tk.s))
			default:
				if tk.kind == tokClaim && tk.s != "sub" || principal == "" || strings.Contains(principal, "/") {
					if got {
						t.Fatalf("%q ~ %q (principal %q): matched with an unusable placeholder", pat, key, principal)
					}
					return
				}
				re.WriteString(regexp.QuoteMeta(principal))
			}
		}
		re.WriteString(`)$`)
		if !strings.ContainsRune(key, 0xFFFD) && isUTF8(key) && isUTF8(pat) && isUTF8(principal) {
			if want := regexp.MustCompile(re.String()).MatchString(key); got != want {
				t.Fatalf("%q ~ %q (principal %q): got %v; regexp %s says %v", pat, key, principal, got, re.String(), want)
			}
		}
	})
}

func isUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// FuzzMediaType: no panic, and a match implies a well-formed media type.
func FuzzMediaType(f *testing.F) {
	for _, s := range []string{"image/png", "IMAGE/PNG; charset=x", "image/", "/png", "a/b/c", " text/plain ", ""} {
		f.Add(s)
	}
	pats := []string{"image/*", "application/pdf"}
	f.Fuzz(func(t *testing.T, ct string) {
		if matchMediaType(pats, []byte(ct)) {
			mt, _, _ := strings.Cut(ct, ";")
			mt = strings.ToLower(strings.Trim(mt, " \t"))
			if !strings.HasPrefix(mt, "image/") && mt != "application/pdf" || strings.Count(mt, "/") != 1 || strings.HasSuffix(mt, "/") {
				t.Fatalf("%q matched %v", ct, pats)
			}
		}
		_ = ChecksumsOf([]byte("x-amz-trailer"), []byte(ct))
	})
}
