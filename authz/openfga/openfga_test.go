package openfga

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		status  int
		answer  string
		allow   bool
		wantErr error
	}{
		{200, `{"allowed": true, "resolution": ""}`, true, nil},
		{200, `{"allowed": false}`, false, nil},
		{200, `{}`, false, ErrBadAnswer},
		{200, `nope`, false, ErrBadAnswer},
		{400, `{"code": "validation_error"}`, false, ErrUnavailable},
		{500, `{}`, false, ErrUnavailable},
	} {
		var got map[string]any
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/stores/01STORE/check" {
				t.Errorf("request %s %s", r.Method, r.URL.Path)
			}
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &got)
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.answer)
		}))
		c, err := New(Config{URL: srv.URL, StoreID: "01STORE", AuthorizationModelID: "01MODEL"})
		if err != nil {
			t.Fatal(err)
		}
		allow, err := c.Check(context.Background(), Tuple{User: "user:alice", Relation: "writer", Object: "bucket:b"})
		srv.Close()
		if allow != tc.allow || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%d %s: allow %v, err %v; want %v, %v", tc.status, tc.answer, allow, err, tc.allow, tc.wantErr)
		}
		tk, _ := got["tuple_key"].(map[string]any)
		if tk["user"] != "user:alice" || tk["relation"] != "writer" || tk["object"] != "bucket:b" || got["authorization_model_id"] != "01MODEL" {
			t.Errorf("request body: %v", got)
		}
	}
}

func TestCheckTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c, err := New(Config{URL: srv.URL, StoreID: "s1", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(context.Background(), Tuple{}); !errors.Is(err, ErrTimeout) {
		t.Errorf("slow server: %v; want ErrTimeout", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "http://x"}, {URL: "x", StoreID: "s"}, {URL: "http://x", StoreID: "a/b"},
		{URL: "http://x", StoreID: "s", AuthorizationModelID: "m-1"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

func TestTemplates(t *testing.T) {
	v := &Vars{Principal: "alice", Bucket: "uploads", Key: "users/alice/2026/a.png",
		Claims: map[string]any{"org": "acme", "level": float64(3), "admin": true, "groups": []any{"x"}}}
	for _, tc := range []struct {
		tmpl, want, missing string
	}{
		{"user:{principal}", "user:alice", ""},
		{"bucket:{bucket}", "bucket:uploads", ""},
		{"folder:{bucket}/{key_prefix}", "folder:uploads/users/alice/2026", ""},
		{"object:{bucket}/{key}", "object:uploads/users/alice/2026/a.png", ""},
		{"org:{claims.org}#member", "org:acme#member", ""},
		{"level:{claims.level}-{claims.admin}", "level:3-true", ""},
		{"group:{claims.groups}", "", "claims.groups"},
		{"org:{claims.missing}", "", "claims.missing"},
		{"plain", "plain", ""},
	} {
		tm, err := ParseTemplate(tc.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tc.tmpl, err)
		}
		got, missing, ok := tm.Expand(v)
		if got != tc.want || missing != tc.missing || ok != (tc.missing == "") {
			t.Errorf("%q: %q, %q, %v; want %q, %q", tc.tmpl, got, missing, ok, tc.want, tc.missing)
		}
		if tm.String() != tc.tmpl {
			t.Errorf("String() = %q; want %q", tm.String(), tc.tmpl)
		}
	}
	if got, _, ok := mustParse(t, "folder:{key_prefix}").Expand(&Vars{Key: "top.txt"}); !ok || got != "folder:" {
		t.Errorf("key without '/': %q, %v", got, ok)
	}
	if _, missing, ok := mustParse(t, "user:{principal}").Expand(&Vars{}); ok || missing != "principal" {
		t.Errorf("anonymous principal expanded")
	}
	for _, bad := range []string{"user:{principal", "user:principal}", "user:{}", "user:{who}", "{claims.}", "{a{b}}"} {
		if _, err := ParseTemplate(bad); err == nil {
			t.Errorf("ParseTemplate(%q) accepted", bad)
		}
	}
}

func mustParse(t *testing.T, s string) Template {
	t.Helper()
	tm, err := ParseTemplate(s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
