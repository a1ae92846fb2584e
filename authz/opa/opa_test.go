package opa

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Decisions as the data API returns them: only `true` and {"allow": true} allow; undefined
// (200 {}), false, other values and an object without allow deny; errors are errors.
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		status  int
		answer  string
		allow   bool
		wantErr error
	}{
		{200, `{"result": true}`, true, nil},
		{200, `{"result": {"allow": true, "reason": "ok"}}`, true, nil},
		{200, `{"result": {"allow": false}}`, false, nil},
		{200, `{"result": {"reason": "no allow"}}`, false, nil},
		{200, `{"result": false}`, false, nil},
		{200, `{"result": "true"}`, false, nil},
		{200, `{"result": 1}`, false, nil},
		{200, `{}`, false, nil},
		{200, `{"decision_id": "x"}`, false, nil},
		{200, `not json`, false, ErrBadAnswer},
		{500, `{"code": "internal_error"}`, false, ErrUnavailable},
		{400, `{"code": "invalid_parameter"}`, false, ErrUnavailable},
	} {
		var got map[string]any
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || r.URL.Path != "/v1/data/mizuchi/allow" || r.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request %s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
			}
			b, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(b, &got)
			w.WriteHeader(tc.status)
			_, _ = io.WriteString(w, tc.answer)
		}))
		c, err := New(Config{URL: srv.URL, Path: "/mizuchi/allow/"})
		if err != nil {
			t.Fatal(err)
		}
		allow, err := c.Decide(context.Background(), &Input{Operation: "PutObject", Bucket: "b", Key: "k", Principal: "alice",
			Claims: map[string]any{"team": "x"}, Headers: map[string]string{"x-a": "1"}})
		srv.Close()
		if allow != tc.allow || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("%d %s: allow %v, err %v; want %v, %v", tc.status, tc.answer, allow, err, tc.allow, tc.wantErr)
		}
		in, _ := got["input"].(map[string]any)
		if in["operation"] != "PutObject" || in["principal"] != "alice" || in["key"] != "k" || in["upload_id"] != "" ||
			in["claims"].(map[string]any)["team"] != "x" || in["headers"].(map[string]any)["x-a"] != "1" {
			t.Errorf("input sent: %v", got)
		}
	}
}

// No answer within the timeout is ErrTimeout; an unreachable server is ErrUnavailable.
func TestDecideTimeoutAndUnreachable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c, err := New(Config{URL: srv.URL, Path: "p", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := c.Decide(context.Background(), &Input{}); !errors.Is(err, ErrTimeout) {
		t.Errorf("slow server: %v; want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout after %v", d)
	}
	// The caller's deadline counts too.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	c2, _ := New(Config{URL: srv.URL, Path: "p", Timeout: time.Minute})
	if _, err := c2.Decide(ctx, &Input{}); !errors.Is(err, ErrTimeout) {
		t.Errorf("caller's deadline: %v; want ErrTimeout", err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	c3, _ := New(Config{URL: dead.URL, Path: "p"})
	if _, err := c3.Decide(context.Background(), &Input{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("closed server: %v; want ErrUnavailable", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "", Path: "a"}, {URL: "ftp://x", Path: "a"}, {URL: "http://x?q=1", Path: "a"},
		{URL: "http://x", Path: ""}, {URL: "http://x", Path: "a//b"}, {URL: "http://x", Path: "a/b-c"},
		{URL: "http://x", Path: "1a"}, {URL: "http://x", Path: "a", Timeout: -1},
	} {
		if _, err := New(cfg); err == nil || !strings.HasPrefix(err.Error(), "opa: ") {
			t.Errorf("New(%+v) = %v; want an opa: error", cfg, err)
		}
	}
	c, err := New(Config{URL: "https://opa.internal:8181/", Path: "mizuchi/v1_x/allow"})
	if err != nil || c.Endpoint() != "https://opa.internal:8181/v1/data/mizuchi/v1_x/allow" {
		t.Errorf("endpoint %q, %v", c.Endpoint(), err)
	}
}
