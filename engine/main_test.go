package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
	"github.com/mizuchi/uploadr/transfer"
)

// upstream is the real S3 server (versitygw) shared by the package's tests.
var upstream *s3test.Server

const (
	clientAK = "AKIDMIZUCHITESTCLIENT"
	clientSK = "client/secret+key=for-tests-only"
)

func TestMain(m *testing.M) {
	s, stop, err := s3test.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "engine tests: cannot start versitygw:", err)
		os.Exit(1)
	}
	upstream = s
	code := m.Run()
	if code == 0 {
		if err := gaugesAtRest(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "engine tests: the process-wide gauges did not come back after the tests:", err)
			code = 1
		}
	}
	stop()
	os.Exit(code)
}

// gaugesAtRest waits until every request, client connection and upstream connection the tests
// started is counted gone (they are process-wide: a test that leaves one skews every later test
// that reads them, and hides a leak), or d passes.
func gaugesAtRest(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		active, conns := engine.GaugeCounts()
		open, idle := engine.UpstreamGaugeCounts()
		if active == 0 && conns == 0 && open == 0 && idle == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("requests %d, client connections %d, upstream connections open %d, idle %d; want 0", active, conns, open, idle)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var bucketSeq atomic.Int64

// proxy is one engine under test.
type proxy struct {
	Addr     string
	Endpoint string
	Bucket   string // client-facing bucket name
	UpBucket string // upstream bucket
}

type proxyOpt func(*engine.Options)

// withCopy selects the user-space copy path for bodies, and the goroutine path (instead of
// loop-owned upstream connections) for small requests: the "copy" half of modes covers both.
func withCopy() proxyOpt {
	return func(o *engine.Options) {
		o.Transfer.ForceCopy = true
		o.NoLoopUpstream = true
	}
}

// startProxy runs an engine in front of the shared versitygw with a fresh upstream bucket whose
// client-facing name differs from the upstream's.
func startProxy(t *testing.T, opts ...proxyOpt) *proxy {
	t.Helper()
	n := bucketSeq.Add(1)
	p := &proxy{Bucket: fmt.Sprintf("client-%d", n), UpBucket: fmt.Sprintf("upstream-%d", n)}
	upstream.CreateBucket(t, p.UpBucket)
	o := engine.Options{
		Address:    fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
		EventLoops: 2,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Transfer:   transfer.Options{},
		Buckets: []engine.Bucket{{
			Name: p.Bucket,
			Upstream: engine.Upstream{Endpoint: upstream.Endpoint, Bucket: p.UpBucket, Region: upstream.Region,
				AccessKey: upstream.AccessKey, SecretKey: upstream.SecretKey},
			Credentials: map[string]string{clientAK: clientSK},
		}},
	}
	for _, f := range opts {
		f(&o)
	}
	runEngine(t, o)
	p.Addr = o.Address
	p.Endpoint = "http://" + o.Address
	return p
}

// lastEngine is the engine runEngine started last (tests run sequentially).
var lastEngine *engine.Engine

func dialOnce(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }

// runEngine starts an engine and stops it when the test ends.
func runEngine(t *testing.T, o engine.Options) *engine.Engine {
	t.Helper()
	e, err := engine.New(o)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	lastEngine = e
	done := make(chan error, 1)
	go func() { done <- e.Run(context.Background()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case err := <-done:
		t.Fatalf("engine exited at start: %v", err)
	case <-waitReady(ctx, e):
	}
	// gnet reports boot before the listener may accept on every loop: wait for a dial to succeed.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", o.Address, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("proxy not accepting: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
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

func waitReady(ctx context.Context, e *engine.Engine) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		if e.WaitReady(ctx) == nil {
			close(ch)
		}
	}()
	return ch
}

// tripwire is an upstream that must never be contacted: it counts connections.
type tripwire struct {
	Endpoint string
	conns    atomic.Int64
}

func startTripwire(t *testing.T) *tripwire {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tw := &tripwire{Endpoint: "http://" + l.Addr().String()}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tw.conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return tw
}
