package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// JSON logs write durations as seconds (a float); text logs keep Go's notation.
func TestJSONLogDurationsInSeconds(t *testing.T) {
	var js, txt bytes.Buffer
	jl, err := NewLogger(LogConfig{Level: "info", Format: "json"}, &js)
	if err != nil {
		t.Fatal(err)
	}
	jl.Info("draining", "timeout", 1500*time.Millisecond, "n", 3, slog.Group("g", slog.Duration("d", 250*time.Millisecond)))
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, js.String())
	}
	if rec["timeout"] != 1.5 || rec["n"] != 3.0 || rec["g"].(map[string]any)["d"] != 0.25 {
		t.Errorf("JSON durations not in seconds: %s", js.String())
	}
	tl, _ := NewLogger(LogConfig{Level: "info", Format: "text"}, &txt)
	tl.Info("draining", "timeout", 1500*time.Millisecond)
	if !strings.Contains(txt.String(), "timeout=1.5s") {
		t.Errorf("text log: %s", txt.String())
	}
}

// The readiness prober logs an upstream going down and coming back at warn, once per transition.
func TestProberLogsTransitions(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var out syncBuffer
	p := newProber(time.Second, time.Hour)
	p.log = slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p.setEndpoints([]string{"http://" + addr})
	ctx := context.Background()
	p.probeAll(ctx)
	p.probeAll(ctx)
	if s := out.String(); s != "" {
		t.Errorf("warn lines while the upstream is up: %s", s)
	}
	l.Close()
	for range 3 {
		p.probeAll(ctx)
	}
	if n := strings.Count(out.String(), "upstream down"); n != 1 || !strings.Contains(out.String(), "level=WARN") ||
		!strings.Contains(out.String(), "endpoint=http://"+addr) {
		t.Errorf("after the upstream went away, %d \"upstream down\" lines, want 1:\n%s", n, out.String())
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("cannot listen again on %s: %v", addr, err)
	}
	defer l2.Close()
	for range 3 {
		p.probeAll(ctx)
	}
	if n := strings.Count(out.String(), "upstream up again"); n != 1 {
		t.Errorf("after the upstream came back, %d \"up again\" lines, want 1:\n%s", n, out.String())
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("%d lines, want 2:\n%s", n, out.String())
	}
}

// At debug level each authorization decision is one line: principal, operation, verdict, whether
// the cache answered; never a secret.
func TestAuthzDecisionsLoggedAtDebug(t *testing.T) {
	opaSrv := s3test.StartOPA(t, uploadPolicy)
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := AuthzConfig{OPA: &OPAConfig{AuthzCommon: AuthzCommon{URL: opaSrv.URL, Timeout: Duration(2 * time.Second), CacheTTL: Duration(time.Minute)}}}
	a.normalize()
	az, err := a.authorizer("docs", log)
	if err != nil {
		t.Fatal(err)
	}
	in := func(principal, key string) *engine.AuthzInput {
		return &engine.AuthzInput{RequestID: "R1", Principal: engine.Principal{ID: principal, Method: "sigv4"},
			Operation: "PutObject", Bucket: "docs", Key: key, Size: 5, Headers: map[string]string{}}
	}
	ctx := context.Background()
	if e := az.Authorize(ctx, in("alice", "users/alice/a.txt")); e != nil {
		t.Fatalf("alice: %v", e)
	}
	if e := az.Authorize(ctx, in("alice", "users/alice/a.txt")); e != nil {
		t.Fatalf("alice again: %v", e)
	}
	if e := az.Authorize(ctx, in("bob", "users/alice/a.txt")); e == nil {
		t.Fatal("bob allowed")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		`level=DEBUG msg="authz decision" backend=opa bucket=docs principal=alice auth_method=sigv4 operation=PutObject request_id=R1 decision=allow cached=false`,
		`level=DEBUG msg="authz decision" backend=opa bucket=docs principal=alice auth_method=sigv4 operation=PutObject request_id=R1 decision=allow cached=true`,
		`level=DEBUG msg="authz decision" backend=opa bucket=docs principal=bob auth_method=sigv4 operation=PutObject request_id=R1 decision=deny cached=false`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out.String())
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d: %s\nwant ...%s", i, lines[i], w)
		}
	}
	// At info level: nothing.
	out = syncBuffer{}
	az, _ = a.authorizer("docs", slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	_ = az.Authorize(ctx, in("alice", "users/alice/b.txt"))
	if out.String() != "" {
		t.Errorf("info level logged a decision: %s", out.String())
	}
}
