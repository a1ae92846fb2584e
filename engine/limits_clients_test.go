package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/engine"
)

// limitedSeries reads mizuchi_limited_total for one limit (0 when absent).
func limitedSeries(t *testing.T, limit string) float64 {
	return max(metricValue(t, `mizuchi_limited_total{limit="`+limit+`"}`), 0)
}

// keptConn is a client connection that sends requests one after another.
type keptConn struct {
	c  net.Conn
	br *bufio.Reader
}

func keepConn(t *testing.T, addr string) *keptConn {
	t.Helper()
	c := dial(t, addr)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &keptConn{c: c, br: bufio.NewReader(c)}
}

// put sends a signed PUT of key and returns the status and body of the answer.
func (k *keptConn) put(t *testing.T, p *proxy, key, ak, sk string) (int, []byte) {
	t.Helper()
	r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: []byte("limits " + key), AK: ak, SK: sk}
	if _, err := k.c.Write(r.bytes(t, p.Addr)); err != nil {
		t.Fatalf("write %s: %v", key, err)
	}
	resp, body := readResponse(t, k.br)
	if resp.StatusCode == 503 {
		wantS3Error(t, resp, body, 503, "SlowDown") // with its RequestId
	}
	return resp.StatusCode, body
}

// listeners runs a test against the event loops and against Serve (the https listener's driver).
func listeners(t *testing.T, f func(t *testing.T, p *proxy)) {
	t.Run("gnet", func(t *testing.T) {
		f(t, startProxy(t, limitOpts...))
	})
	t.Run("serve", func(t *testing.T) {
		p := startProxy(t, limitOpts...)
		f(t, serveOn(t, lastEngine, p))
	})
}

// admittedConn opens a connection that the proxy serves (the connection runEngine dialled to see
// the listener up counts against the limits until its close reaches the event loop).
func admittedConn(t *testing.T, p *proxy, key string) *keptConn {
	t.Helper()
	var k *keptConn
	waitFor(t, "a connection admitted", 5*time.Second, func() bool {
		k = keepConn(t, p.Addr)
		if st, _ := k.put(t, p, key, "", ""); st == 200 {
			return true
		}
		k.c.Close()
		return false
	})
	return k
}

// limitOpts are the options of the proxy listeners runs (set by each test before it).
var limitOpts []proxyOpt

// A client over its per-address connection limit gets 503 SlowDown for its first request and is
// closed; its connections under the limit keep working.
func TestLimitConnectionsPerIP(t *testing.T) {
	limitOpts = []proxyOpt{func(o *engine.Options) { o.Limits.MaxConnsPerIP, o.HeadTimeout = 2, time.Second }}
	listeners(t, func(t *testing.T, p *proxy) {
		a, b := admittedConn(t, p, "ok-0"), admittedConn(t, p, "ok-1")
		before := limitedSeries(t, "connections_per_ip")
		c := keepConn(t, p.Addr)
		if st, _ := c.put(t, p, "third", "", ""); st != 503 {
			t.Fatalf("third connection: status %d; want 503", st)
		}
		closedWithin(t, c.c, 5*time.Second)
		if upstream.ObjectExists(t, p.UpBucket, "third") {
			t.Errorf("the refused request reached the upstream")
		}
		if g := limitedSeries(t, "connections_per_ip") - before; g != 1 {
			t.Errorf("limited{connections_per_ip} grew by %v; want 1", g)
		}
		// One over the limit that sends nothing is closed after head_timeout (not idle_timeout).
		silent := dial(t, p.Addr)
		closedWithin(t, silent, 5*time.Second)
		for i, k := range []*keptConn{a, b} {
			if st, body := k.put(t, p, fmt.Sprintf("again-%d", i), "", ""); st != 200 {
				t.Fatalf("connection %d after the refusal: %d %s", i, st, body)
			}
		}
		// Once one closes, a new connection is admitted.
		a.c.Close()
		waitFor(t, "a new connection admitted", 5*time.Second, func() bool {
			d := keepConn(t, p.Addr)
			defer d.c.Close()
			st, _ := d.put(t, p, "fourth", "", "")
			return st == 200
		})
	})
}

// At the total limit a new connection closes the oldest idle keep-alive connection; with no idle
// connection to close it gets 503 SlowDown.
func TestLimitConnectionsTotalEvictsOldestIdle(t *testing.T) {
	limitOpts = []proxyOpt{func(o *engine.Options) { o.Limits.MaxConns = 2 }}
	listeners(t, func(t *testing.T, p *proxy) {
		a := keepConn(t, p.Addr)
		if st, body := a.put(t, p, "a", "", ""); st != 200 {
			t.Fatalf("a: %d %s", st, body)
		}
		time.Sleep(20 * time.Millisecond)
		b := keepConn(t, p.Addr)
		if st, body := b.put(t, p, "b", "", ""); st != 200 {
			t.Fatalf("b: %d %s", st, body)
		}
		evBefore := max(metricValue(t, "mizuchi_connections_evicted_total"), 0)
		c := keepConn(t, p.Addr)
		if st, body := c.put(t, p, "c", "", ""); st != 200 {
			t.Fatalf("c: %d %s", st, body)
		}
		closedWithin(t, a.c, 5*time.Second) // the oldest idle one
		if st, body := b.put(t, p, "b2", "", ""); st != 200 {
			t.Fatalf("b after the eviction: %d %s", st, body)
		}
		if g := max(metricValue(t, "mizuchi_connections_evicted_total"), 0) - evBefore; g != 1 {
			t.Errorf("evicted grew by %v; want 1", g)
		}
		// b and c are busy (a head begun): nothing to evict, the next connection is refused.
		for _, k := range []*keptConn{b, c} {
			fmt.Fprintf(k.c, "PUT /%s/partial HTTP/1.1\r\nHost: x\r\n", p.Bucket)
		}
		time.Sleep(100 * time.Millisecond)
		before := limitedSeries(t, "connections")
		d := keepConn(t, p.Addr)
		if st, _ := d.put(t, p, "d", "", ""); st != 503 {
			t.Fatalf("d: status %d; want 503", st)
		}
		if g := limitedSeries(t, "connections") - before; g != 1 {
			t.Errorf("limited{connections} grew by %v; want 1", g)
		}
		if upstream.ObjectExists(t, p.UpBucket, "d") {
			t.Errorf("the refused request reached the upstream")
		}
	})
}

// fakeClock is an injectable engine clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// Per address: the burst passes, the next request gets 503 SlowDown (nothing reaches the
// upstream), and the bucket refills with time.
func TestLimitRatePerIP(t *testing.T) {
	var clock *fakeClock
	limitOpts = []proxyOpt{func(o *engine.Options) {
		clock = newFakeClock()
		o.Now = clock.Now
		o.Limits.RequestsPerSecondPerIP = 2
		o.Limits.BurstPerIP = 3
	}}
	listeners(t, func(t *testing.T, p *proxy) {
		k := keepConn(t, p.Addr)
		for i := range 3 {
			if st, body := k.put(t, p, fmt.Sprintf("burst-%d", i), "", ""); st != 200 {
				t.Fatalf("burst %d: %d %s", i, st, body)
			}
		}
		before := limitedSeries(t, "requests_per_ip")
		if st, _ := k.put(t, p, "over", "", ""); st != 503 {
			t.Fatalf("over the burst: status %d; want 503", st)
		}
		if upstream.ObjectExists(t, p.UpBucket, "over") {
			t.Errorf("the refused request reached the upstream")
		}
		if g := limitedSeries(t, "requests_per_ip") - before; g != 1 {
			t.Errorf("limited{requests_per_ip} grew by %v; want 1", g)
		}
		// Another connection from the same address shares the bucket.
		k2 := keepConn(t, p.Addr)
		if st, _ := k2.put(t, p, "over2", "", ""); st != 503 {
			t.Fatalf("second connection: status %d; want 503", st)
		}
		clock.advance(500 * time.Millisecond) // one token at 2/s
		if st, body := k2.put(t, p, "refilled", "", ""); st != 200 {
			t.Fatalf("after refill: %d %s", st, body)
		}
		if st, _ := k2.put(t, p, "over3", "", ""); st != 503 {
			t.Fatalf("after the refilled token: status %d; want 503", st)
		}
	})
}

// Per principal: two access keys from one address have a bucket each.
func TestLimitRatePerPrincipal(t *testing.T) {
	const ak2, sk2 = "AKIDMIZUCHISECONDKEY", "second/secret+key=for-tests"
	var clock *fakeClock
	limitOpts = []proxyOpt{func(o *engine.Options) {
		clock = newFakeClock()
		o.Now = clock.Now
		o.Limits.RequestsPerSecondPerPrincipal = 1
		o.Limits.BurstPerPrincipal = 2
		o.Buckets[0].Credentials[ak2] = sk2
	}}
	listeners(t, func(t *testing.T, p *proxy) {
		k := keepConn(t, p.Addr)
		for i := range 2 {
			if st, body := k.put(t, p, fmt.Sprintf("one-%d", i), "", ""); st != 200 {
				t.Fatalf("key one %d: %d %s", i, st, body)
			}
		}
		before := limitedSeries(t, "requests_per_principal")
		if st, _ := k.put(t, p, "one-over", "", ""); st != 503 {
			t.Fatalf("key one over its burst: status %d; want 503", st)
		}
		for i := range 2 {
			if st, body := k.put(t, p, fmt.Sprintf("two-%d", i), ak2, sk2); st != 200 {
				t.Fatalf("key two %d: %d %s", i, st, body)
			}
		}
		if st, _ := k.put(t, p, "two-over", ak2, sk2); st != 503 {
			t.Fatalf("key two over its burst: status %d; want 503", st)
		}
		if g := limitedSeries(t, "requests_per_principal") - before; g != 2 {
			t.Errorf("limited{requests_per_principal} grew by %v; want 2", g)
		}
		for _, key := range []string{"one-over", "two-over"} {
			if upstream.ObjectExists(t, p.UpBucket, key) {
				t.Errorf("%s reached the upstream", key)
			}
		}
		clock.advance(time.Second)
		if st, body := k.put(t, p, "one-refilled", "", ""); st != 200 {
			t.Fatalf("after refill: %d %s", st, body)
		}
	})
}

// An aws-sdk-go-v2 client with its default retries succeeds against a tight rate: the answer is
// the retryable one.
func TestLimitRateSDKRetries(t *testing.T) {
	p := startProxy(t, func(o *engine.Options) {
		o.Limits.RequestsPerSecondPerIP = 50
		o.Limits.BurstPerIP = 1
	})
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(clientAK, clientSK, "")),
	)
	if err != nil {
		t.Fatal(err)
	}
	cl := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(p.Endpoint)
		o.UsePathStyle = true
	})
	before := limitedSeries(t, "requests_per_ip")
	for i := range 12 {
		key := fmt.Sprintf("sdk-%d", i)
		_, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.Bucket), Key: aws.String(key),
			Body: bytes.NewReader([]byte("retried " + key))})
		if err != nil {
			t.Fatalf("PutObject %s: %v", key, err)
		}
		if !upstream.ObjectExists(t, p.UpBucket, key) {
			t.Fatalf("%s missing upstream", key)
		}
	}
	if g := limitedSeries(t, "requests_per_ip") - before; g == 0 {
		t.Errorf("no request was limited: the test proves nothing")
	} else {
		t.Logf("%v requests answered 503 SlowDown and retried", g)
	}
}
