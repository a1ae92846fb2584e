package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// loadGauges are the engine's gauges whose idle value is their value before the engine started.
var loadGauges = []string{"mizuchi_connections_active", "mizuchi_uploads_active",
	"mizuchi_multipart_abort_retries_pending", "mizuchi_upstream_open_connections", "mizuchi_upstream_idle_connections"}

// exchange writes wire on a new connection (in pieces of chunk bytes with a pause between them
// when chunk > 0) and returns the answer's status (0 when the connection ended without one).
func exchange(t *testing.T, addr string, wire []byte, chunk int) int {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	go func() {
		for len(wire) > 0 {
			n := len(wire)
			if chunk > 0 && n > chunk {
				n = chunk
			}
			if _, err := c.Write(wire[:n]); err != nil {
				return
			}
			wire = wire[n:]
			if chunk > 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// vanish sends a head declaring size bytes and sent of them, then closes the connection.
func vanish(t *testing.T, addr string, r rawReq, size, sent int) {
	r.Header = http.Header{"Content-Length": {fmt.Sprint(size)}}
	r.Payload = "UNSIGNED-PAYLOAD"
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Error(err)
		return
	}
	_, _ = c.Write(r.bytes(t, addr))
	_, _ = c.Write(s3test.RandomBytes(sent, 7))
	time.Sleep(200 * time.Millisecond)
	c.Close()
}

// Under mixed load — inline keep-alive PUTs, bodies streamed in pieces, detached large bodies,
// auto-chunked PUTs, refusals, clients vanishing mid-body and an upstream that refuses
// connections — every scrape shows non-negative gauges and idle upstream connections at or below
// open ones; once the load ends every gauge returns to its value before the engine started (after
// the upstream connections left idle are closed by the engine's stop), the open gauge matches the
// kernel's count of established upstream connections, and all of them are idle.
func TestGaugesConsistentUnderMixedLoad(t *testing.T) {
	base := scrapeGauges(t)
	open0, idle0 := engine.UpstreamGaugeCounts()
	dead := fmt.Sprintf("http://127.0.0.1:%d", s3test.FreePort(t)) // nothing listens there
	var e *engine.Engine
	p := startProxyEngine(t, &e, withAutoChunk("", 6<<20, 5<<20, 2), func(o *engine.Options) {
		o.Upstream.MaxIdle = 4
		o.Buckets = append(o.Buckets, engine.Bucket{Name: "dead-upstream",
			Upstream:    engine.Upstream{Endpoint: dead, Bucket: "nowhere", Region: upstream.Region, AccessKey: "x", SecretKey: "y"},
			Credentials: map[string]string{clientAK: clientSK}})
	})
	before := establishedTo(t, mustPort(t, upstream.Addr))

	sampler := startGaugeSampler(t) // scrapes all along
	mixedLoad(t, p)
	sampler.finish(t)

	checkGaugesAtRest(t, e, base, open0, idle0, before)
}

// gaugeSampler scrapes the gauges every few milliseconds until finish, noting every scrape where
// one of them is negative or more upstream connections are idle than open.
type gaugeSampler struct {
	stop       chan struct{}
	wg         sync.WaitGroup
	violations []string
	scrapes    int
}

func startGaugeSampler(t *testing.T) *gaugeSampler {
	s := &gaugeSampler{stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			g := scrapeGauges(t)
			s.scrapes++
			for _, name := range loadGauges {
				if g[name] < 0 {
					s.violations = append(s.violations, fmt.Sprintf("%s = %d", name, g[name]))
				}
			}
			if g["mizuchi_upstream_idle_connections"] > g["mizuchi_upstream_open_connections"] {
				s.violations = append(s.violations, fmt.Sprintf("idle %d > open %d", g["mizuchi_upstream_idle_connections"], g["mizuchi_upstream_open_connections"]))
			}
		}
	}()
	return s
}

// finish stops the sampler and fails t if any scrape was inconsistent.
func (s *gaugeSampler) finish(t *testing.T) {
	t.Helper()
	close(s.stop)
	s.wg.Wait()
	if len(s.violations) > 0 {
		t.Errorf("%d of %d scrapes under load were inconsistent; first: %v", len(s.violations), s.scrapes, s.violations[:min(5, len(s.violations))])
	}
	t.Logf("%d scrapes under load", s.scrapes)
}

// mixedLoad runs two rounds of every kind of request at once through p: inline on keep-alive
// connections, streamed, detached, auto-chunked, refused, clients vanishing mid-body, and a
// bucket whose upstream refuses connections.
func mixedLoad(t *testing.T, p *proxy) {
	put := func(bucket, key string, body []byte, payload string) []byte {
		r := rawReq{Method: "PUT", Path: "/" + bucket + "/" + key, Body: body, Payload: payload}
		return r.bytes(t, p.Addr)
	}
	want := func(what string, got int, ok ...int) {
		for _, s := range ok {
			if got == s {
				return
			}
		}
		t.Errorf("%s: status %d; want one of %v", what, got, ok)
	}
	var wg sync.WaitGroup
	run := func(n int, f func(i int)) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); f(i) }()
		}
	}
	small, medium, large := []byte("small body"), s3test.RandomBytes(256<<10, 1), s3test.RandomBytes(2<<20, 2)
	huge := s3test.RandomBytes(13<<20, 3)
	for round := 0; round < 2; round++ {
		run(6, func(i int) { // inline, keep-alive
			c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(c)
			for j := 0; j < 10; j++ {
				if _, err := c.Write(put(p.Bucket, fmt.Sprintf("ka/%d/%d/%d", round, i, j), small, "")); err != nil {
					t.Error(err)
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want(fmt.Sprintf("inline %s", body), resp.StatusCode, 200)
			}
		})
		run(3, func(i int) { // streamed in pieces
			want("streamed", exchange(t, p.Addr, put(p.Bucket, fmt.Sprintf("st/%d/%d", round, i), medium, "UNSIGNED-PAYLOAD"), 32<<10), 200)
		})
		run(3, func(i int) { // detached
			want("large", exchange(t, p.Addr, put(p.Bucket, fmt.Sprintf("lg/%d/%d", round, i), large, "UNSIGNED-PAYLOAD"), 0), 200)
		})
		run(1, func(i int) { // auto-chunked
			want("auto-chunked", exchange(t, p.Addr, put(p.Bucket, fmt.Sprintf("ac/%d", round), huge, "UNSIGNED-PAYLOAD"), 0), 200)
		})
		run(2, func(i int) { // refusals: a wrong secret, and an unknown payload mode with a large body
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/refused", Body: small, SK: "wrong", AK: clientAK}
			want("wrong secret", exchange(t, p.Addr, r.bytes(t, p.Addr), 0), 403)
			want("bad payload", exchange(t, p.Addr, put(p.Bucket, "refused2", large, "UNSIGNED-PAYLOAD-X"), 0), 400)
		})
		run(2, func(i int) { // clients vanishing mid-body: detached, and auto-chunked
			vanish(t, p.Addr, rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/gone/%d/%d", p.Bucket, round, i)}, 10<<20, 1<<20)
			vanish(t, p.Addr, rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/gone-ac/%d/%d", p.Bucket, round, i)}, 30<<20, 7<<20)
		})
		run(2, func(i int) { // an upstream that refuses connections: inline and detached
			want("dead small", exchange(t, p.Addr, put("dead-upstream", "k", small, ""), 0), 502, 503)
			want("dead large", exchange(t, p.Addr, put("dead-upstream", "k", large, "UNSIGNED-PAYLOAD"), 0), 502, 503)
		})
		wg.Wait()
	}
}

// checkGaugesAtRest waits for the gauges to come back to rest after the load (base, open0 and
// idle0: their values before the engine started; before: the established upstream connections
// then), stops e and checks them again.
func checkGaugesAtRest(t *testing.T, e *engine.Engine, base map[string]int64, open0, idle0 int64, before map[string]bool) {
	t.Helper()
	// Quiet: requests and connections are back to their idle values, the upstream connections left
	// are all idle and are the kernel's established ones.
	ok, msg := waitUntil(10*time.Second, func() (bool, string) {
		g := scrapeGauges(t)
		for _, name := range []string{"mizuchi_connections_active", "mizuchi_uploads_active", "mizuchi_multipart_abort_retries_pending"} {
			if g[name] != base[name] {
				return false, fmt.Sprintf("%s = %d; was %d before the engine started", name, g[name], base[name])
			}
		}
		if st := e.TransferStats(); st.PipesInUse != 0 {
			return false, fmt.Sprintf("%d pipes in use", st.PipesInUse)
		}
		open, idle := engine.UpstreamGaugeCounts()
		n := upstreamConns(t, before)
		if open-open0 != int64(n) || idle-idle0 != open-open0 {
			return false, fmt.Sprintf("upstream gauges open %+d idle %+d; %d established upstream connections, all idle", open-open0, idle-idle0, n)
		}
		return true, ""
	})
	if !ok {
		t.Error(msg)
	}
	if err := shutdown(e); err != nil {
		t.Fatal(err)
	}
	ok, msg = waitUntil(5*time.Second, func() (bool, string) {
		open, idle := engine.UpstreamGaugeCounts()
		if open != open0 || idle != idle0 {
			return false, fmt.Sprintf("after stop: raw upstream counts open %d idle %d; were %d %d", open, idle, open0, idle0)
		}
		g := scrapeGauges(t)
		var bad []string
		for _, name := range loadGauges {
			if g[name] != base[name] {
				bad = append(bad, fmt.Sprintf("%s = %d (was %d)", name, g[name], base[name]))
			}
		}
		return len(bad) == 0, "after stop: " + strings.Join(bad, ", ")
	})
	if !ok {
		t.Error(msg)
	}
}
