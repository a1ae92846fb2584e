package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/internal/testca"
)

// startLoopEngine runs an engine with loops event loops on a free loopback port (its bucket's
// upstream is never dialled: these tests only open connections) and stops it when the test ends.
func startLoopEngine(t *testing.T, loops int, reusePort bool) *Engine {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e, err := New(Options{
		Address: addr, EventLoops: loops, ReusePort: reusePort,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Buckets: []Bucket{{Name: "b", Upstream: Upstream{Endpoint: "http://127.0.0.1:1", Bucket: "b",
			AccessKey: "AK", SecretKey: "SK"}, Credentials: map[string]string{"CAK": "CSK"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("engine did not stop")
		}
	})
	return e
}

// serveTLSOn runs e.ServeTLS on a new loopback listener and returns its address and the client's
// TLS configuration.
func serveTLSOn(t *testing.T, e *Engine) (string, *tls.Config) {
	t.Helper()
	ca, err := testca.New(testca.Spec{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate()}}
	done := make(chan error, 1)
	go func() { done <- e.ServeTLS(l, cfg, 5*time.Second) }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	return l.Addr().String(), &tls.Config{RootCAs: ca.Pool()}
}

// perLoop counts the client connections of e (plain or TLS) on each event loop, once there are
// want of them (within 5 s).
func perLoop(t *testing.T, e *Engine, want int) []int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		counts := map[gnet.EventLoop]int{}
		n := 0
		e.conns.mu.Lock()
		for st := range e.conns.m {
			if st.conn != nil {
				counts[st.conn.EventLoop()]++
				n++
			}
		}
		e.conns.mu.Unlock()
		if n == want {
			out := make([]int, 0, len(counts))
			for _, c := range counts {
				out = append(out, c)
			}
			sort.Ints(out)
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client connections on the loops; want %d", n, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkSpread fails unless n connections are on every one of loops loops, none holding more than
// twice or less than a third of its share. (gnet hashes the client's address: for 128 connections
// over 4 loops a loop gets 32 ± 4.9; the bounds are more than 4 standard deviations away.)
func checkSpread(t *testing.T, what string, counts []int, loops, n int) {
	t.Helper()
	t.Logf("%s: %d connections per loop: %v", what, n, counts)
	share := n / loops
	if len(counts) != loops || counts[0] < share/3 || counts[len(counts)-1] > 2*share {
		t.Errorf("%s: %d connections from one client spread %v over %d loops; want each loop within [%d, %d]",
			what, n, counts, loops, share/3, 2*share)
	}
}

// Connections from one client, plain and TLS, dialled one after the other or all at once, are
// spread over every event loop.
func TestLoopSpreadOneClient(t *testing.T) {
	const loops, n = 4, 128
	e := startLoopEngine(t, loops, false)
	tlsAddr, ccfg := serveTLSOn(t, e)
	var conns []net.Conn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		perLoop(t, e, 0)
	}
	dial := func(tlsToo bool) net.Conn {
		var c net.Conn
		var err error
		if tlsToo {
			c, err = tls.Dial("tcp", tlsAddr, ccfg)
		} else {
			c, err = net.Dial("tcp", e.opts.Address)
		}
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		tls, all bool
	}{{"plain one by one", false, false}, {"plain at once", false, true}, {"tls one by one", true, false}, {"tls at once", true, true}} {
		if tc.all {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					c := dial(tc.tls)
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				})
			}
			wg.Wait()
		} else {
			for range n {
				conns = append(conns, dial(tc.tls))
				perLoop(t, e, len(conns))
			}
		}
		checkSpread(t, tc.name, perLoop(t, e, n), loops, n)
		closeAll()
	}
}

// reusePortListener listens on addr beside the engine's own SO_REUSEPORT sockets, as the process
// taking over in an upgrade does.
func reusePortListener(t *testing.T, addr string) net.Listener {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
		})
		return errors.Join(err, serr)
	}}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Serving TLS clients opens no connection of the proxy's own to its plain listener: with
// server.reuse_port, while another process shares the address (an upgrade hand-over), that process
// gets only real clients' connections, and TLS clients are still served by the event loops.
func TestServeTLSOpensNoConnections(t *testing.T) {
	e := startLoopEngine(t, 2, true)
	var stolen atomic.Int64
	for range 6 { // the other process's sockets: most connections to the address land there
		l := reusePortListener(t, e.opts.Address)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				stolen.Add(1)
				c.Close()
			}
		}()
	}
	tlsAddr, ccfg := serveTLSOn(t, e)
	for range 4 {
		c, err := tls.Dial("tcp", tlsAddr, ccfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	perLoop(t, e, 4) // on the loops, not the goroutine driver
	time.Sleep(100 * time.Millisecond)
	if n := stolen.Load(); n > 0 {
		t.Fatalf("the other process on the address accepted %d connections; the proxy's TLS clients opened them", n)
	}
}
