package engine_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// recTracer records every span (a parent's traceparent kept as given, span ids counting up).
type recTracer struct {
	mu    sync.Mutex
	next  int
	spans []*recSpan
}

type recSpan struct {
	t                       *recTracer
	name, id, parent, trace string
	attrs                   map[string]any
	err                     string
	ended                   bool
}

func (t *recTracer) SamplesRoots() bool { return true }

func (t *recTracer) StartRequest(name string, tp, _ []byte, _ time.Time) engine.Span {
	trace, parent := "11111111111111111111111111111111", ""
	if len(tp) == 55 {
		trace, parent = string(tp[3:35]), string(tp[36:52])
	}
	return t.span(name, trace, parent)
}

func (t *recTracer) span(name, trace, parent string) *recSpan {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	s := &recSpan{t: t, name: name, id: fmt.Sprintf("%016x", t.next), parent: parent, trace: trace, attrs: map[string]any{}}
	t.spans = append(t.spans, s)
	return s
}

// ended returns the ended spans by name.
func (t *recTracer) ended() map[string][]*recSpan {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string][]*recSpan{}
	for _, s := range t.spans {
		if s.ended {
			out[s.name] = append(out[s.name], s)
		}
	}
	return out
}

func (s *recSpan) Child(name string, _ time.Time, _ bool) engine.Span {
	return s.t.span(name, s.trace, s.id)
}
func (s *recSpan) set(k string, v any)              { s.t.mu.Lock(); s.attrs[k] = v; s.t.mu.Unlock() }
func (s *recSpan) SetString(k, v string)            { s.set(k, v) }
func (s *recSpan) SetInt(k string, v int64)         { s.set(k, v) }
func (s *recSpan) SetError(d string)                { s.t.mu.Lock(); s.err = d; s.t.mu.Unlock() }
func (s *recSpan) End(time.Time)                    { s.t.mu.Lock(); s.ended = true; s.t.mu.Unlock() }
func (s *recSpan) AppendTracestate(b []byte) []byte { return append(b, "ours=1"...) }
func (s *recSpan) AppendTraceparent(b []byte) []byte {
	return append(b, "00-"+s.trace+"-"+s.id+"-01"...)
}

// headUpstream is a fake S3 upstream that answers every request 200 and keeps each request's headers.
type headUpstream struct {
	l     net.Listener
	mu    sync.Mutex
	heads []http.Header
}

func startHeadUpstream(t *testing.T) *headUpstream {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &headUpstream{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go u.serve(c)
		}
	}()
	t.Cleanup(func() { l.Close() })
	return u
}

func (u *headUpstream) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		u.mu.Lock()
		u.heads = append(u.heads, req.Header.Clone())
		u.mu.Unlock()
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nX-Amz-Request-Id: UPSTREAM1\r\nContent-Length: 0\r\n\r\n")
	}
}

func (u *headUpstream) last(t *testing.T) http.Header {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.heads) == 0 {
		t.Fatal("nothing reached the upstream")
	}
	return u.heads[len(u.heads)-1]
}

// TestTraceparentReachesUpstream: through the event loops (inline in the loop, and a body too large
// for the loop, detached and spliced) and through the net.Listener driver, a recorded request's
// upstream request carries one traceparent naming the upstream span, in the client's trace (not
// the client's header passed on), and the request span ends with its path and status.
func TestTraceparentReachesUpstream(t *testing.T) {
	up := startHeadUpstream(t)
	tr := &recTracer{}
	o := engine.Options{
		Address:       fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
		EventLoops:    1,
		InlineBodyMax: 64 << 10,
		Logger:        slog.New(slog.DiscardHandler),
		Tracer:        tr,
		Buckets: []engine.Bucket{{Name: "open", AuthNone: true,
			Upstream: engine.Upstream{Endpoint: "http://" + up.l.Addr().String(), Bucket: "up", Region: "us-east-1", AccessKey: "ak", SecretKey: "sk"}}},
	}
	e := runEngine(t, o)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Serve(l) }()
	t.Cleanup(func() { l.Close(); <-done })

	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	for n, c := range []struct {
		name, addr, path string
		size             int
	}{
		{"loop-inline", o.Address, "inline", 1000},
		{"loop-detached", o.Address, "splice", 300 << 10},
		{"serve-inline", l.Addr().String(), "inline", 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", c.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			clientTP := "00-" + trace + "-00f067aa0ba902b7-01"
			fmt.Fprintf(conn, "PUT /open/%s HTTP/1.1\r\nHost: x\r\ntraceparent: %s\r\ntracestate: client=1\r\nContent-Length: %d\r\n\r\n", c.name, clientTP, c.size)
			go func() { _, _ = conn.Write(make([]byte, c.size)) }()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%v %v", resp, err)
			}
			h := up.last(t)
			tps := h.Values("Traceparent")
			deadline := time.Now().Add(5 * time.Second)
			var req, ups []*recSpan
			for {
				spans := tr.ended()
				req, ups = spans["PutObject"], spans["upstream PutObject"]
				// The answer goes out before the request is recorded: wait for this one's spans.
				if len(req) > n && len(ups) > n || time.Now().After(deadline) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if len(req) != n+1 || len(ups) != n+1 {
				t.Fatalf("spans %v", tr.ended())
			}
			r, u := req[n], ups[n]
			want := "00-" + trace + "-" + u.id + "-01"
			if len(tps) != 1 || tps[0] != want {
				t.Errorf("upstream traceparent %q; want exactly %q (the upstream span)", tps, want)
			}
			if ts := h.Values("Tracestate"); len(ts) != 1 || ts[0] != "ours=1" {
				t.Errorf("upstream tracestate %q; want the trace's, once", ts)
			}
			if auth := h.Get("Authorization"); strings.Contains(strings.ToLower(auth), "trace") {
				t.Errorf("the proxy signed a trace header: %s", auth)
			}
			if r.parent != "00f067aa0ba902b7" || u.parent != r.id || r.attrs["mizuchi.path"] != c.path ||
				r.attrs["http.response.status_code"] != int64(200) || r.attrs["mizuchi.body_bytes"] != int64(c.size) {
				t.Errorf("request span %+v, upstream span %+v", r, u)
			}
		})
	}
}

// authzEngine runs an engine (tracer tr; nil: tracing off) whose bucket "open" denies the key
// "deny" and "deny/big" and keeps the Traceparent and Tracestate each decision got (space-separated),
// by key; it sends PUT
// /open/allow, /open/deny (inline, decided in the loop's await phase) and /open/deny/big (a body
// above InlineBodyMax: decided once detached).
func authzEngine(t *testing.T, tr engine.Tracer) map[string]string {
	up := startHeadUpstream(t)
	deny := &engine.Error{Status: 403, Code: "AccessDenied", Message: "policy says no"}
	var mu sync.Mutex
	tps := map[string]string{}
	o := engine.Options{
		Address:       fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
		EventLoops:    1,
		InlineBodyMax: 1024,
		Logger:        slog.New(slog.DiscardHandler),
		Tracer:        tr,
		Buckets: []engine.Bucket{{Name: "open", AuthNone: true,
			Authorizer: engine.AuthorizerFunc(func(_ context.Context, in *engine.AuthzInput) *engine.Error {
				mu.Lock()
				tps[in.Key] = strings.TrimSpace(in.Traceparent + " " + in.Tracestate)
				mu.Unlock()
				if strings.HasPrefix(in.Key, "deny") {
					return deny
				}
				return nil
			}),
			Upstream: engine.Upstream{Endpoint: "http://" + up.l.Addr().String(), Bucket: "up", Region: "us-east-1", AccessKey: "ak", SecretKey: "sk"}}},
	}
	runEngine(t, o)
	for _, key := range []string{"allow", "deny", "deny/big"} {
		conn, err := net.Dial("tcp", o.Address)
		if err != nil {
			t.Fatal(err)
		}
		body := "abc"
		if key == "deny/big" {
			body = strings.Repeat("x", 4096)
		}
		fmt.Fprintf(conn, "PUT /open/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", key, len(body))
		go func() { _, _ = io.WriteString(conn, body) }()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		conn.Close()
		if err != nil || (key == "allow") != (resp.StatusCode == 200) {
			t.Fatalf("%s: %v %v", key, resp, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(tps)
}

// TestTraceAuthorize: a bucket's Authorizer runs inside an authorize span, a child of the request
// span, with its decision, and gets that span's traceparent and the trace's tracestate (to send to
// OPA or OpenFGA); a denial
// ends the request span refused, with the S3 code, and sends nothing upstream. Untraced, the
// Authorizer gets no traceparent.
func TestTraceAuthorize(t *testing.T) {
	if tps := authzEngine(t, nil); tps["allow"] != "" || tps["deny"] != "" || tps["deny/big"] != "" || len(tps) != 3 {
		t.Errorf("tracing off: the Authorizer got traceparents %q; want none", tps)
	}
	tr := &recTracer{}
	tps := authzEngine(t, tr)
	var spans map[string][]*recSpan
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if spans = tr.ended(); len(spans["PutObject"]) == 3 && len(spans["authorize"]) == 3 {
			break
		}
	}
	if len(spans["PutObject"]) != 3 || len(spans["authorize"]) != 3 || len(spans["upstream PutObject"]) != 1 {
		t.Fatalf("spans %v", spans)
	}
	for i, r := range spans["PutObject"] {
		a := spans["authorize"][i]
		if a.parent != r.id {
			t.Errorf("authorize span's parent %s; want the request span %s", a.parent, r.id)
		}
		if key, want := []string{"allow", "deny", "deny/big"}[i], "00-"+a.trace+"-"+a.id+"-01 ours=1"; tps[key] != want {
			t.Errorf("%s: the Authorizer got traceparent and tracestate %q; want %q (the authorize span's)", key, tps[key], want)
		}
		switch i {
		case 0:
			if a.attrs["mizuchi.authz.decision"] != "allow" || a.err != "" || r.attrs["mizuchi.path"] != "inline" {
				t.Errorf("allowed: authorize %+v, request %+v", a, r)
			}
		case 1:
			if a.attrs["mizuchi.authz.decision"] != "deny" || a.err != "AccessDenied" ||
				r.attrs["mizuchi.path"] != "refused" || r.err != "AccessDenied" || r.attrs["http.response.status_code"] != int64(403) {
				t.Errorf("denied: authorize %+v, request %+v", a, r)
			}
		case 2:
			if a.attrs["mizuchi.authz.decision"] != "deny" || r.err != "AccessDenied" || r.attrs["http.response.status_code"] != int64(403) {
				t.Errorf("denied once detached: authorize %+v, request %+v", a, r)
			}
		}
	}
}

// TestTraceProxyProtocolClient: behind a balancer the request span's client is the one the PROXY
// header names, not the balancer.
func TestTraceProxyProtocolClient(t *testing.T) {
	up := startHeadUpstream(t)
	tr := &recTracer{}
	o := engine.Options{
		Address:       fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
		EventLoops:    1,
		Logger:        slog.New(slog.DiscardHandler),
		Tracer:        tr,
		ProxyProtocol: engine.ProxyProtocol{Enabled: true, Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		Buckets: []engine.Bucket{{Name: "open", AuthNone: true,
			Upstream: engine.Upstream{Endpoint: "http://" + up.l.Addr().String(), Bucket: "up", Region: "us-east-1", AccessKey: "ak", SecretKey: "sk"}}},
	}
	runEngine(t, o)
	conn, err := net.Dial("tcp", o.Address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PROXY TCP4 203.0.113.7 127.0.0.1 40001 80\r\nPUT /open/pp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	var req []*recSpan
	for deadline := time.Now().Add(5 * time.Second); len(req) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		req = tr.ended()["PutObject"]
	}
	if len(req) != 1 || req[0].attrs["client.address"] != "203.0.113.7" || req[0].attrs["client.port"] != int64(40001) {
		t.Fatalf("request spans %+v", req)
	}
}
