package cors_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/cors"
)

func mustNew(t testing.TB, rules ...cors.Rule) *cors.Config {
	t.Helper()
	c, err := cors.New(rules)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var appRule = cors.Rule{
	AllowedOrigins: []string{"https://app.example.com", "https://*.example.org"},
	AllowedMethods: []string{"PUT", "POST"},
	AllowedHeaders: []string{"*"},
	ExposeHeaders:  []string{"ETag", "x-amz-version-id"},
	MaxAgeSeconds:  3000,
}

var anyRule = cors.Rule{
	AllowedOrigins: []string{"*"},
	AllowedMethods: []string{"PUT"},
	AllowedHeaders: []string{"content-type", "x-amz-*"},
}

func TestMatch(t *testing.T) {
	c := mustNew(t, appRule, anyRule)
	for _, tc := range []struct {
		origin, method string
		want           int
	}{
		{"https://app.example.com", "PUT", 0},
		{"HTTPS://APP.example.com", "POST", 0}, // case-insensitive
		{"https://a.b.example.org", "PUT", 0},  // the '*' spans dots, as S3's does
		{"https://.example.org", "PUT", 0},
		{"https://example.org", "PUT", 1}, // not "https://*.example.org": the "*" rule
		{"https://evil.example.com", "POST", cors.NoMatch},
		{"https://app.example.com", "DELETE", cors.NoMatch},
		{"https://app.example.com", "put", 1}, // methods are case-sensitive; "*" rule has no "put" either
		{"https://app.example.com", "OPTIONS", cors.NoMatch},
		{"", "PUT", cors.NoMatch},
		{"https://x\r\nSet-Cookie: a", "PUT", cors.NoMatch},
		{"null", "PUT", 1},
	} {
		want := tc.want
		if tc.method == "put" {
			want = cors.NoMatch
		}
		if got := c.Match([]byte(tc.origin), []byte(tc.method)); got != want {
			t.Errorf("Match(%q, %q) = %d; want %d", tc.origin, tc.method, got, want)
		}
	}
	var none *cors.Config
	if got := none.Match([]byte("https://app.example.com"), []byte("PUT")); got != cors.NoMatch {
		t.Errorf("nil Config matched: %d", got)
	}
}

func TestMatchPreflight(t *testing.T) {
	c := mustNew(t, anyRule, appRule)
	for _, tc := range []struct {
		origin, method, headers string
		want                    int
	}{
		{"https://app.example.com", "PUT", "", 0},
		{"https://app.example.com", "PUT", "content-type", 0},
		{"https://app.example.com", "PUT", "content-type,x-amz-meta-a", 0},
		{"https://app.example.com", "PUT", " Content-Type , X-Amz-Date ", 0},
		{"https://app.example.com", "PUT", "authorization", 1}, // not in the "*" rule: the next rule's "*"
		{"https://app.example.com", "POST", "authorization", 1},
		{"https://other.example", "PUT", "authorization", cors.NoMatch},
		{"https://other.example", "POST", "", cors.NoMatch},
		{"https://app.example.com", "PUT", "bad header", cors.NoMatch},
		{"https://app.example.com", "PUT", "a\r\nb", cors.NoMatch},
	} {
		if got := c.MatchPreflight([]byte(tc.origin), []byte(tc.method), []byte(tc.headers)); got != tc.want {
			t.Errorf("MatchPreflight(%q, %q, %q) = %d; want %d", tc.origin, tc.method, tc.headers, got, tc.want)
		}
	}
}

func TestAppend(t *testing.T) {
	c := mustNew(t, appRule, anyRule)
	got := string(c.AppendPreflight(nil, 0, []byte("https://app.example.com"), []byte("authorization, content-type")))
	want := "Access-Control-Allow-Origin: https://app.example.com\r\n" +
		"Access-Control-Allow-Methods: PUT, POST\r\n" +
		"Access-Control-Allow-Credentials: true\r\n" +
		"Access-Control-Allow-Headers: authorization, content-type\r\n" +
		"Access-Control-Expose-Headers: ETag, x-amz-version-id\r\n" +
		"Access-Control-Max-Age: 3000\r\n" + cors.Vary
	if got != want {
		t.Errorf("AppendPreflight:\ngot  %q\nwant %q", got, want)
	}
	got = string(c.AppendActual([]byte("X: 1\r\n"), 1, []byte("https://a.test")))
	want = "X: 1\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: PUT\r\n" + cors.Vary
	if got != want {
		t.Errorf("AppendActual on a \"*\" rule:\ngot  %q\nwant %q", got, want)
	}
	got = string(c.AppendActual(nil, 0, []byte("https://x.example.org")))
	if !strings.HasPrefix(got, "Access-Control-Allow-Origin: https://x.example.org\r\n") || strings.Contains(got, "Allow-Headers") {
		t.Errorf("AppendActual on a wildcard origin: %q", got)
	}
}

func TestNewRefuses(t *testing.T) {
	ok := cors.Rule{AllowedOrigins: []string{"*"}, AllowedMethods: []string{"PUT"}}
	with := func(f func(r *cors.Rule)) cors.Rule {
		r := ok
		f(&r)
		return r
	}
	for _, tc := range []struct {
		rule cors.Rule
		want error
	}{
		{with(func(r *cors.Rule) { r.AllowedOrigins = nil }), cors.ErrNoOrigin},
		{with(func(r *cors.Rule) { r.AllowedMethods = nil }), cors.ErrNoMethod},
		{with(func(r *cors.Rule) { r.AllowedMethods = []string{"PATCH"} }), cors.ErrMethod},
		{with(func(r *cors.Rule) { r.AllowedMethods = []string{"put"} }), cors.ErrMethod},
		{with(func(r *cors.Rule) { r.AllowedOrigins = []string{"https://*.*.example.com"} }), cors.ErrWildcard},
		{with(func(r *cors.Rule) { r.AllowedHeaders = []string{"x-*-*"} }), cors.ErrWildcard},
		{with(func(r *cors.Rule) { r.AllowedOrigins = []string{"https://a.example, https://b.example"} }), cors.ErrValue},
		{with(func(r *cors.Rule) { r.AllowedOrigins = []string{""} }), cors.ErrValue},
		{with(func(r *cors.Rule) { r.ExposeHeaders = []string{"ETag\r\nX: y"} }), cors.ErrHeaderName},
		{with(func(r *cors.Rule) { r.MaxAgeSeconds = -1 }), cors.ErrMaxAge},
	} {
		if _, err := cors.New([]cors.Rule{ok, tc.rule}); !errors.Is(err, tc.want) || !strings.HasPrefix(err.Error(), "rule 2: ") {
			t.Errorf("New(%+v) = %v; want rule 2: %v", tc.rule, err, tc.want)
		}
	}
	if _, err := cors.New(make([]cors.Rule, cors.MaxRules+1)); !errors.Is(err, cors.ErrTooManyRules) {
		t.Errorf("101 rules: %v", err)
	}
	c := mustNew(t, ok, ok)
	if got := c.Rules(); len(got) != 2 || got[0].AllowedOrigins[0] != "*" {
		t.Errorf("Rules() = %+v", got)
	}
}

func TestNoAllocs(t *testing.T) {
	c := mustNew(t, anyRule, appRule)
	origin, method, hdrs := []byte("https://z.example.org"), []byte("POST"), []byte("authorization, content-type")
	buf := make([]byte, 0, 1024)
	n := testing.AllocsPerRun(100, func() {
		i := c.MatchPreflight(origin, method, hdrs)
		buf = c.AppendPreflight(buf[:0], i, origin, hdrs)
		i = c.Match(origin, method)
		buf = c.AppendActual(buf[:0], i, origin)
	})
	if n != 0 {
		t.Errorf("%v allocations per match and render; want 0", n)
	}
}

// reference is the matcher written the obvious way: each pattern a case-insensitive regexp.
func reference(rules []cors.Rule, origin, method, hdrs string, preflight bool) int {
	re := func(p string) *regexp.Regexp {
		parts := strings.SplitN(p, "*", 2)
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		return regexp.MustCompile("(?is)^" + strings.Join(parts, ".*") + "$")
	}
	for _, c := range origin {
		if c < ' ' || c >= 0x7f {
			return cors.NoMatch
		}
	}
	if origin == "" {
		return cors.NoMatch
	}
	var names []string
	if preflight {
		for _, n := range strings.Split(hdrs, ",") {
			n = strings.Trim(n, " \t")
			if !regexp.MustCompile("^[-!#$%&'*+.^_`|~0-9A-Za-z]*$").MatchString(n) {
				return cors.NoMatch
			}
			if n != "" {
				names = append(names, n)
			}
		}
	}
rules:
	for i, r := range rules {
		mOK := false
		for _, m := range r.AllowedMethods {
			mOK = mOK || m == method
		}
		oOK := false
		for _, o := range r.AllowedOrigins {
			oOK = oOK || re(o).MatchString(origin)
		}
		if !mOK || !oOK {
			continue
		}
		for _, n := range names {
			hOK := false
			for _, h := range r.AllowedHeaders {
				hOK = hOK || re(h).MatchString(n)
			}
			if !hOK {
				continue rules
			}
		}
		return i
	}
	return cors.NoMatch
}

func FuzzMatch(f *testing.F) {
	f.Add("https://app.example.com", "PUT", "content-type", "https://*.example.com", "x-amz-*")
	f.Add("https://a.example.org", "POST", "authorization, x-amz-date", "*", "*")
	f.Add("http://127.0.0.1:8080", "PUT", "", "http://127.0.0.1:*", "")
	f.Add("HTTPS://X.EXAMPLE.COM", "DELETE", " A , b ", "https://x.example.com", "a")
	f.Fuzz(func(t *testing.T, origin, method, hdrs, allowOrigin, allowHeader string) {
		rules := []cors.Rule{{
			AllowedOrigins: []string{allowOrigin},
			AllowedMethods: []string{"PUT", "POST", "DELETE"},
			AllowedHeaders: []string{allowHeader},
		}, {
			AllowedOrigins: []string{"https://fixed.example"},
			AllowedMethods: []string{"PUT"},
			AllowedHeaders: []string{"content-type"},
		}}
		if allowHeader == "" {
			rules[0].AllowedHeaders = nil
		}
		c, err := cors.New(rules)
		if err != nil {
			return // an invalid pattern: New's own tests cover the refusal
		}
		for _, preflight := range []bool{false, true} {
			var got int
			if preflight {
				got = c.MatchPreflight([]byte(origin), []byte(method), []byte(hdrs))
			} else {
				got = c.Match([]byte(origin), []byte(method))
			}
			if want := reference(rules, origin, method, hdrs, preflight); got != want {
				t.Fatalf("preflight=%v: got rule %d; the reference matcher says %d", preflight, got, want)
			}
			if got == cors.NoMatch {
				continue
			}
			out := string(c.AppendPreflight(nil, got, []byte(origin), []byte(hdrs)))
			if strings.Count(out, "\r\n") != strings.Count(out, "\n") || strings.Count(out, "\r") != strings.Count(out, "\n") {
				t.Fatalf("rendered headers break lines: %q", out)
			}
			for _, line := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
				if name, _, ok := strings.Cut(line, ": "); !ok || strings.ContainsAny(name, " \t") {
					t.Fatalf("malformed header line %q in %q", line, out)
				}
			}
		}
	})
}
