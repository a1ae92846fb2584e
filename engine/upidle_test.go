package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// establishedTo returns the local addresses of this network namespace's ESTABLISHED TCP sockets
// whose peer is 127.0.0.1:port (the client side of connections to that port), read from
// /proc/net/tcp and /proc/net/tcp6.
func establishedTo(t *testing.T, port int) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	want := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 4 {
				continue
			}
			// fs[1] local, fs[2] remote ("0100007F:1F90"), fs[3] state (01 = ESTABLISHED).
			if fs[3] == "01" && strings.HasSuffix(fs[2], want) {
				out[fs[1]] = true
			}
		}
	}
	return out
}

// upstreamConns counts the ESTABLISHED connections to the shared versitygw that are not in
// before (the harness's own client connections, taken before the proxy made any).
func upstreamConns(t *testing.T, before map[string]bool) int {
	t.Helper()
	n := 0
	for a := range establishedTo(t, mustPort(t, upstream.Addr)) {
		if !before[a] {
			n++
		}
	}
	return n
}

// upGauges reads the two upstream connection gauges from the Prometheus text (the engine writes
// both from one reading: open first, idle capped at it).
func upGauges() (open, idle int64) {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	for _, line := range strings.Split(b.String(), "\n") {
		name, v, _ := strings.Cut(line, " ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch name {
		case "mizuchi_upstream_open_connections":
			open = n
		case "mizuchi_upstream_idle_connections":
			idle = n
		}
	}
	return open, idle
}

// engineGauges are the engine's gauges as an operator sees them: from the Prometheus text.
var engineGauges = []string{"mizuchi_upstream_open_connections", "mizuchi_upstream_idle_connections",
	"mizuchi_connections_active", "mizuchi_uploads_active", "mizuchi_multipart_abort_retries_pending"}

// scrapeGauges returns every integer series of the scrape. A series the first engine of the process
// has not registered yet is absent (and reads 0 once registered).
func scrapeGauges(t *testing.T) map[string]int64 {
	t.Helper()
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	m := map[string]int64{}
	for _, line := range strings.Split(b.String(), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			m[name] = n
		}
	}
	return m
}

// waitUntil polls cond every 20 ms until it holds or d passes; it reports cond's last description.
func waitUntil(d time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(d)
	for {
		ok, msg := cond()
		if ok || time.Now().After(deadline) {
			return ok, msg
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// upstreamLoad sends, at once, small PUTs on keep-alive connections (inline: loop-owned upstream
// connections) and large ones (detached: the goroutine pool), and checks every answer.
func upstreamLoad(t *testing.T, p *proxy, smallConns, smallEach, large int) {
	t.Helper()
	var wg sync.WaitGroup
	small := []byte("small body")
	big := s3test.RandomBytes(2<<20, 9) // above the inline cap (1 MiB): detached
	for w := 0; w < smallConns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			br := bufio.NewReader(c)
			for i := 0; i < smallEach; i++ {
				r := rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/small/%d/%d", p.Bucket, w, i), Body: small}
				if _, err := c.Write(r.bytes(t, p.Addr)); err != nil {
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
				if resp.StatusCode != 200 {
					t.Errorf("small PUT %d/%d: %d %s", w, i, resp.StatusCode, body)
					return
				}
			}
		}()
	}
	for w := 0; w < large; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rawReq{Method: "PUT", Path: fmt.Sprintf("/%s/large/%d", p.Bucket, w), Body: big}
			c, err := net.DialTimeout("tcp", p.Addr, 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			go func() { _, _ = c.Write(r.bytes(t, p.Addr)) }()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("large PUT %d: %d %s", w, resp.StatusCode, body)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// Idle upstream connections are bounded by upstream.max_idle per endpoint in total (the loops'
// connections and the goroutine pool's together), idle ones past upstream.idle_timeout are closed
// by the sweep (not only when next checked out), the idle gauge never exceeds the open gauge, and
// both gauges return to where they were once the engine stops. The kernel's socket table is the
// judge, not only the engine's own gauges.
func TestUpstreamIdleBounded(t *testing.T) {
	const maxIdle = 4
	for _, tc := range []struct {
		name        string
		idleTimeout time.Duration
		want        int // most connections left once the load ended
	}{
		{"max_idle", time.Minute, maxIdle},
		{"idle_timeout", 1500 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open0, idle0 := upGauges()
			scraped0 := scrapeGauges(t)
			var e *engine.Engine
			p := startProxyEngine(t, &e, func(o *engine.Options) {
				o.EventLoops = 2
				o.Upstream.MaxIdle = maxIdle
				o.Upstream.IdleTimeout = tc.idleTimeout
			})
			before := establishedTo(t, mustPort(t, upstream.Addr))

			dials0 := metrics.GetOrCreateCounter(`mizuchi_upstream_dials_total`).Get()
			detached0 := metrics.GetOrCreateCounter(`mizuchi_detached_requests_total`).Get()
			upstreamLoad(t, p, 24, 8, 8)
			// The load must have needed more connections than may stay idle, on both paths.
			if d := metrics.GetOrCreateCounter(`mizuchi_upstream_dials_total`).Get() - dials0; d <= 2*maxIdle {
				t.Fatalf("the load dialled %d upstream connections; want more than %d", d, 2*maxIdle)
			}
			if d := metrics.GetOrCreateCounter(`mizuchi_detached_requests_total`).Get() - detached0; d != 8 {
				t.Fatalf("%d requests took the goroutine path; want 8", d)
			}
			// The sweep runs every 500 ms; the idle timeout adds its own wait.
			limit := tc.idleTimeout + 3*time.Second
			if tc.want > 0 {
				limit = 3 * time.Second
			}
			ok, msg := waitUntil(limit, func() (bool, string) {
				n := upstreamConns(t, before)
				open, idle := upGauges()
				return n <= tc.want && open-open0 <= int64(tc.want) && idle-idle0 <= open-open0,
					fmt.Sprintf("%d established upstream connections, gauges open %+d idle %+d; want at most %d",
						n, open-open0, idle-idle0, tc.want)
			})
			if !ok {
				t.Fatal(msg)
			}
			// It stays so for a few sweeps, and the gauges tell the kernel's truth.
			for i := 0; i < 4; i++ {
				time.Sleep(sweepWait)
				n := upstreamConns(t, before)
				open, idle := upGauges()
				if n > tc.want {
					t.Errorf("%d established upstream connections after %d sweeps; want at most %d", n, i+1, tc.want)
				}
				if idle-idle0 > open-open0 {
					t.Errorf("idle gauge %+d above open gauge %+d", idle-idle0, open-open0)
				}
				if open-open0 != int64(n) || idle-idle0 != open-open0 {
					t.Errorf("gauges open %+d idle %+d; %d established upstream connections, all idle", open-open0, idle-idle0, n)
				}
			}
			if g := scrapeGauges(t); g["mizuchi_upstream_idle_connections"] > g["mizuchi_upstream_open_connections"] {
				t.Errorf("scrape: idle %d above open %d", g["mizuchi_upstream_idle_connections"], g["mizuchi_upstream_open_connections"])
			}

			// Stopping the engine closes what is left and brings both gauges back.
			if err := shutdown(e); err != nil {
				t.Fatal(err)
			}
			ok, msg = waitUntil(5*time.Second, func() (bool, string) {
				n := upstreamConns(t, before)
				open, idle := upGauges()
				return n == 0 && open == open0 && idle == idle0,
					fmt.Sprintf("after shutdown: %d established, gauges open %+d idle %+d", n, open-open0, idle-idle0)
			})
			if !ok {
				t.Fatal(msg)
			}
			ok, msg = waitUntil(5*time.Second, func() (bool, string) {
				g := scrapeGauges(t)
				for _, name := range engineGauges {
					if _, ok := g[name]; !ok {
						return false, fmt.Sprintf("gauge %s missing from the scrape", name)
					}
					if g[name] != scraped0[name] {
						return false, fmt.Sprintf("after shutdown: %s = %d; was %d", name, g[name], scraped0[name])
					}
				}
				return true, ""
			})
			if !ok {
				t.Error(msg)
			}
		})
	}
}

// sweepWait is one sweep interval of the engine (500 ms) and a margin.
const sweepWait = 600 * time.Millisecond

// shutdown stops e, waiting up to 10 s for requests in flight.
func shutdown(e *engine.Engine) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.Shutdown(ctx)
}

func mustPort(t *testing.T, addr string) int {
	t.Helper()
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
