package server

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
)

// The authz block: defaults filled, every problem named with its key, unknown keys found.
func TestAuthzConfig(t *testing.T) {
	y := `buckets:
  - name: a
    s3: {bucket: a, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
    authz:
      opa: {url: "http://127.0.0.1:8181", cache_ttl: 5s, headers: [X-Team]}
  - name: b
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
    authz:
      openfga: {url: "http://127.0.0.1:8080", store_id: 01HSTORE, object: "folder:{bucket}/{key_prefix}"}
`
	c, err := ParseConfig([]byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	o := c.Buckets[0].Authz.OPA
	if o.Path != "mizuchi/allow" || o.Timeout != Duration(time.Second) || o.CacheTTL != Duration(5*time.Second) ||
		o.CacheSize != 10000 || o.MaxConns != 64 || o.Headers[0] != "x-team" {
		t.Errorf("opa defaults: %+v", o)
	}
	f := c.Buckets[1].Authz.OpenFGA
	if f.Relation != "writer" || f.User != "user:{principal}" || f.Object != "folder:{bucket}/{key_prefix}" || f.CacheTTL != Duration(10*time.Second) {
		t.Errorf("openfga defaults: %+v", f)
	}
	opts, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Buckets[0].Authorizer == nil || opts.Buckets[1].Authorizer == nil || opts.Buckets[0].AuthzHeaders[0] != "x-team" {
		t.Errorf("authorizers not built: %+v", opts.Buckets)
	}
	if eps := authzEndpoints(c); len(eps) != 2 || eps[0] != "http://127.0.0.1:8080" {
		t.Errorf("probed authz endpoints %v", eps)
	}

	bad := `buckets:
  - name: a
    s3: {bucket: a, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
    authz:
      opa: {url: "ftp://x", path: "a/b-c", timeout: 1m, cache_size: -2, headers: [Authorization], polcy: x}
      openfga: {url: "http://y", store_id: "a/b", user: "user:{who}", relation: "a b"}
`
	c, err = ParseConfig([]byte(bad), env(nil))
	if err == nil || !strings.Contains(err.Error(), `unknown key "polcy" in buckets[0].authz.opa`) {
		t.Errorf("unknown key not reported: %v", err)
	}
	c.Normalize()
	err = c.Validate()
	for _, want := range []string{
		`bucket "a": authz.opa and authz.openfga: choose one`,
		`bucket "a": authz.opa.timeout 1m0s: want more than 0 up to 30s`,
		`bucket "a": authz.opa.cache_size -2`,
		`bucket "a": authz.opa: url "ftp://x"`,
		`bucket "a": authz.opa.headers: "authorization" carries credentials`,
		`bucket "a": authz.openfga: store_id "a/b"`,
		`bucket "a": authz.openfga.relation "a b"`,
		`bucket "a": authz.openfga.user: template "user:{who}": unknown placeholder {who}`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate does not say %q:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "choose one"); n != 1 {
		t.Errorf("a problem reported %d times:\n%v", n, err)
	}
	if _, err := c.EngineOptions(nil, nil); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Errorf("EngineOptions with a bad authz block: %v; want an error (never a bucket left open)", err)
	}
}

// A decision cache holds at most size entries, evicts the least recently used, and forgets an
// entry after its TTL.
func TestDecisionCache(t *testing.T) {
	c := newDecisionCache(2, time.Minute)
	now := time.Unix(1000, 0)
	c.put("a", true, now)
	c.put("b", false, now)
	if v, ok := c.get("a", now); !ok || !v {
		t.Fatal("a not cached")
	}
	c.put("c", true, now) // evicts b, the least recently used
	if _, ok := c.get("b", now); ok {
		t.Error("b survived eviction")
	}
	if v, ok := c.get("c", now); !ok || !v || c.len() != 2 {
		t.Error("c not cached")
	}
	if _, ok := c.get("a", now.Add(time.Minute)); ok {
		t.Error("a outlived its TTL")
	}
	var none *decisionCache
	none.put("x", true, now)
	if _, ok := none.get("x", now); ok {
		t.Error("nil cache returned a decision")
	}
}

// The adapter fails closed: an allow passes, anything else refuses; a slow service is 503
// SlowDown (engine.ErrAuthorizeTimeout); decisions are cached by the input without its volatile
// fields (request id, source port).
func TestRemoteAuthzFailsClosed(t *testing.T) {
	var calls atomic.Int32
	answer := atomic.Value{}
	answer.Store(`{"result": true}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		a := answer.Load().(string)
		switch a {
		case "slow":
			time.Sleep(300 * time.Millisecond)
		case "500":
			w.WriteHeader(500)
		default:
			_, _ = io.WriteString(w, a)
		}
	}))
	defer srv.Close()
	block := AuthzConfig{OPA: &OPAConfig{AuthzCommon: AuthzCommon{URL: srv.URL, Timeout: Duration(100 * time.Millisecond)}}}
	block.normalize()
	az, err := block.authorizer("b", nil)
	if err != nil {
		t.Fatal(err)
	}
	in := func(key, reqID, remote string) *engine.AuthzInput {
		return &engine.AuthzInput{RequestID: reqID, Remote: remote, Principal: engine.Principal{ID: "alice", Method: "sigv4"},
			Operation: "PutObject", Bucket: "b", Key: key, Size: 5}
	}
	ctx := context.Background()
	if e := az.Authorize(ctx, in("k1", "r1", "10.0.0.1:1111")); e != nil {
		t.Fatalf("allow: %v", e)
	}
	if e := az.Authorize(ctx, in("k1", "r2", "10.0.0.1:2222")); e != nil || calls.Load() != 1 {
		t.Errorf("same input, other request id and port: %v, %d calls; want a cache hit", e, calls.Load())
	}
	if e := az.Authorize(ctx, in("k1", "r3", "10.0.0.2:1111")); e != nil || calls.Load() != 2 {
		t.Errorf("other source ip: %v, %d calls; want a new decision", e, calls.Load())
	}
	for _, tc := range []struct {
		answer string
		want   *engine.Error
	}{
		{`{}`, errPolicyDenied}, {`{"result": false}`, errPolicyDenied}, {`{"result": {"allow": false}}`, errPolicyDenied},
		{"500", errNoDecision}, {"garbage", errNoDecision}, {"slow", engine.ErrAuthorizeTimeout},
	} {
		answer.Store(tc.answer)
		if e := az.Authorize(ctx, in("k-"+tc.answer, "r", "10.0.0.1:1")); e != tc.want {
			t.Errorf("answer %s: %v; want %v", tc.answer, e, tc.want)
		}
	}
	// Errors are not cached: the next call asks again.
	answer.Store(`{"result": {"allow": true}}`)
	if e := az.Authorize(ctx, in("k-500", "r", "10.0.0.1:1")); e != nil {
		t.Errorf("after an error, allowed: %v", e)
	}
	if e := engine.ErrAuthorizeTimeout; e.Status != 503 || e.Code != "SlowDown" {
		t.Errorf("timeout answer %+v", e)
	}
}

// -opa-url gives the config-less bucket an OPA block; with -config it is an error.
func TestOPAFlags(t *testing.T) {
	environ := env(map[string]string{EnvUpstreamAccessKey: "a", EnvUpstreamSecretKey: "b", EnvClientAccessKey: "c", EnvClientSecretKey: "d"})
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"-bucket", "up", "-upstream", "http://127.0.0.1:1", "-opa-url", "http://127.0.0.1:8181", "-opa-path", "x/allow"}); err != nil {
		t.Fatal(err)
	}
	c, err := f.Config(environ)
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Buckets[0].Authz.OPA; o == nil || o.URL != "http://127.0.0.1:8181" || o.Path != "x/allow" || o.Timeout != Duration(time.Second) {
		t.Errorf("config-less OPA block: %+v", o)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	f = RegisterFlags(fs)
	path := filepath.Join(t.TempDir(), "c.yaml")
	_ = os.WriteFile(path, []byte("buckets:\n  - {name: a, auth: none, s3: {bucket: a, endpoint: \"http://127.0.0.1:1\", access_key: k, secret_key: s}}\n"), 0o600)
	if err := fs.Parse([]string{"-config", path, "-opa-url", "http://127.0.0.1:8181"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Config(environ); err == nil || !strings.Contains(err.Error(), "-opa-url and -opa-path configure a config-less start") {
		t.Errorf("-opa-url with -config: %v", err)
	}
}

// A traced request's decision request carries the authorize span's traceparent and the trace's
// tracestate (the engine puts them in AuthzInput.Traceparent and Tracestate), to OPA and to
// OpenFGA; an untraced one carries neither.
func TestRemoteAuthzSendsTraceparent(t *testing.T) {
	const tp, ts = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=1"
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(strings.TrimSpace(strings.Join(r.Header.Values("Traceparent"), ",") + " " + strings.Join(r.Header.Values("Tracestate"), ",")))
		_, _ = io.WriteString(w, `{"result": true, "allowed": true}`)
	}))
	defer srv.Close()
	common := AuthzCommon{URL: srv.URL}
	for _, block := range []AuthzConfig{
		{OPA: &OPAConfig{AuthzCommon: common}},
		{OpenFGA: &OpenFGAConfig{AuthzCommon: common, StoreID: "01HVMMBCMGZNT3SED4Z17ECXCA"}},
	} {
		block.normalize()
		az, err := block.authorizer("b", nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{tp + " " + ts, ""} {
			in := &engine.AuthzInput{Principal: engine.Principal{ID: fmt.Sprint("user", i), Method: "sigv4"}, Operation: "PutObject",
				Bucket: "b", Key: fmt.Sprint("k", i)}
			in.Traceparent, in.Tracestate, _ = strings.Cut(want, " ")
			got.Store("unasked")
			if e := az.Authorize(context.Background(), in); e != nil {
				t.Fatalf("%s: %v", az.(*remoteAuthz).backend, e)
			}
			if g := got.Load().(string); g != want {
				t.Errorf("%s: the service saw traceparent and tracestate %q; want %q", az.(*remoteAuthz).backend, g, want)
			}
		}
	}
}
