package httpclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	errTimeout     = errors.New("t: timeout")
	errUnavailable = errors.New("t: unavailable")
	errBadAnswer   = errors.New("t: bad answer")
	errs           = Errors{Timeout: errTimeout, Unavailable: errUnavailable, BadAnswer: errBadAnswer}
)

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://127.0.0.1:8181", ""},
		{"https://opa.example:443/base/", ""},
		{"ftp://h", "want http://host:port"},
		{"http://", "want http://host:port"},
		{"127.0.0.1:8181", "want http://host:port"},
		{"http://h?x=1", "no query or fragment"},
		{"http://h#f", "no query or fragment"},
	} {
		err := CheckURL("t", tc.url)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), "t: url ") || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckURL(%q) = %v; want %q", tc.url, err, tc.want)
		}
	}
	if _, err := New("t", -time.Second, 0, errs); err == nil || err.Error() != "t: negative timeout or max conns" {
		t.Errorf("negative timeout: %v", err)
	}
	if _, err := New("t", 0, -1, errs); err == nil {
		t.Error("negative max conns accepted")
	}
}

// Each way a POST fails wraps the caller's sentinel; a 200 returns the answer as sent.
func TestPostJSON(t *testing.T) {
	long := strings.Repeat("x", MaxAnswer+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s %q", r.Method, r.Header.Get("Content-Type"))
		}
		switch r.URL.Path {
		case "/ok":
			_, _ = w.Write(b)
		case "/status":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"code":"internal"}`)
		case "/long":
			_, _ = io.WriteString(w, long)
		case "/slow":
			time.Sleep(300 * time.Millisecond)
		}
	}))
	defer srv.Close()
	// A timeout the 1 MiB answer always fits in, even under -race on a loaded machine; /slow gets a
	// client of its own with a short one.
	c, err := New("t", 10*time.Second, 0, errs)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdle()
	short, err := New("t", 100*time.Millisecond, 0, errs)
	if err != nil {
		t.Fatal(err)
	}
	defer short.CloseIdle()
	raw, err := c.PostJSON(context.Background(), srv.URL+"/ok", map[string]int{"a": 1})
	if err != nil || string(raw) != `{"a":1}` {
		t.Errorf("ok: %q, %v", raw, err)
	}
	for _, tc := range []struct {
		path string
		v    any
		want error
		text string
	}{
		{"/status", 1, errUnavailable, `500 Internal Server Error: "{\"code\":\"internal\"}"`},
		{"/long", 1, errBadAnswer, "answer larger than 1048576 bytes"},
		{"/slow", 1, errTimeout, ""},
		{"/ok", func() {}, errBadAnswer, "unsupported type"},
	} {
		cl := c
		if tc.path == "/slow" {
			cl = short
		}
		_, err := cl.PostJSON(context.Background(), srv.URL+tc.path, tc.v)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v; want %v with %q", tc.path, err, tc.want, tc.text)
		}
	}
	srv.Close()
	if _, err := c.PostJSON(context.Background(), srv.URL+"/ok", 1); !errors.Is(err, errUnavailable) {
		t.Errorf("closed server: %v; want unavailable", err)
	}
}

func TestQuote(t *testing.T) {
	if got := Quote([]byte("a\"b")); got != `"a\"b"` {
		t.Errorf("Quote: %s", got)
	}
	if got := Quote([]byte(strings.Repeat("y", 300))); got != `"`+strings.Repeat("y", 200)+`"…` {
		t.Errorf("Quote of 300 bytes: %s", got)
	}
}

// A context from WithTraceContext sends its traceparent and tracestate, once each; without them
// (or with "") none; a tracestate without a traceparent is not sent (W3C Trace Context).
func TestPostJSONTraceContext(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	type seenHeaders struct{ tp, ts []string }
	seen := make(chan seenHeaders, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- seenHeaders{r.Header.Values("Traceparent"), r.Header.Values("Tracestate")}
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		if WithTraceContext(ctx, "", "") != ctx {
			t.Fatal("an untraced context was wrapped")
		}
	}); n != 0 {
		t.Errorf("WithTraceContext(ctx, \"\", \"\") allocates %v times; want 0 (tracing off)", n)
	}
	c, err := New("t", 0, 0, errs)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ tp, ts string }{{tp, "vendor=1,other=x"}, {tp, ""}, {"", "vendor=1"}, {"", ""}} {
		if _, err := c.PostJSON(WithTraceContext(context.Background(), tc.tp, tc.ts), srv.URL, 1); err != nil {
			t.Fatal(err)
		}
		got := <-seen
		want := func(v string) []string {
			if v == "" || tc.tp == "" {
				return nil
			}
			return []string{v}
		}
		if !slices.Equal(got.tp, want(tc.tp)) || !slices.Equal(got.ts, want(tc.ts)) {
			t.Errorf("traceparent %q, tracestate %q: the server saw %q and %q", tc.tp, tc.ts, got.tp, got.ts)
		}
	}
}
