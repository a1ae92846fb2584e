package engine_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/mizuchi/uploadr/engine"
)

// ppBed is an engine with the PROXY protocol on, served on its event loops and on a net.Listener
// (Serve over ProxyListener), recording the access log and the Authorizer's inputs.
type ppBed struct {
	loop, serve *proxy
	log         *syncBuf
	mu          sync.Mutex
	authz       map[string]string // key -> AuthzInput.Remote
}

func startPPBed(t *testing.T, trusted string, opts ...proxyOpt) *ppBed {
	t.Helper()
	b := &ppBed{log: &syncBuf{}, authz: map[string]string{}}
	b.loop = startProxy(t, append([]proxyOpt{func(o *engine.Options) {
		o.ProxyProtocol = engine.ProxyProtocol{Enabled: true, Trusted: []netip.Prefix{netip.MustParsePrefix(trusted)}}
		o.AccessLog = slog.New(slog.NewJSONHandler(b.log, nil))
		o.Buckets[0].Authorizer = engine.AuthorizerFunc(func(_ context.Context, in *engine.AuthzInput) *engine.Error {
			b.mu.Lock()
			b.authz[in.Key] = in.Remote
			b.mu.Unlock()
			return nil
		})
	}}, opts...)...)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := lastEngine
	done := make(chan error, 1)
	go func() { done <- e.Serve(e.ProxyListener(l, 2*time.Second)) }()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	q := *b.loop
	q.Addr, q.Endpoint = l.Addr().String(), "http://"+l.Addr().String()
	b.serve = &q
	return b
}

// remoteOf waits for key's access-log line and returns its remote and the Authorizer's.
func (b *ppBed) remoteOf(t *testing.T, key string) (logged, authorized string) {
	t.Helper()
	waitFor(t, "the access-log line of "+key, 5*time.Second, func() bool { return strings.Contains(b.log.String(), `"key":"`+key+`"`) })
	for _, l := range strings.Split(b.log.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["key"] == key {
			logged, _ = m["remote"].(string)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return logged, b.authz[key]
}

func ppCount(reason string) uint64 {
	return metrics.GetOrCreateCounter(`mizuchi_proxy_protocol_rejected_total{reason="` + reason + `"}`).Get()
}

// ppV2Header is a v2 PROXY header for a TCP connection from src (IPv4 or IPv6), with a TLV.
func ppV2Header(src string) []byte {
	a := netip.MustParseAddrPort(src)
	b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x00")
	if a.Addr().Is4() {
		s := a.Addr().As4()
		b = append(append(b, s[:]...), 10, 0, 0, 1)
	} else {
		b[13] = 0x21
		s, d := a.Addr().As16(), netip.MustParseAddr("2001:db8::1").As16()
		b = append(append(b, s[:]...), d[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, a.Port())
	b = append(b, 0, 80)
	b = append(b, 0x05, 0x00, 0x04, 'u', 'i', 'd', '1') // PP2_TYPE_UNIQUE_ID
	binary.BigEndian.PutUint16(b[14:], uint16(len(b)-16))
	return b
}

// sendWith dials addr, writes the chunks one by one (a pause between them: separate reads on
// the proxy) and returns the answer, or nil if the connection closed without one.
func sendWith(t *testing.T, addr string, chunks ...[]byte) (net.Conn, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, ch := range chunks {
		if _, err := c.Write(ch); err != nil {
			break // closed by the proxy
		}
		time.Sleep(2 * time.Millisecond)
	}
	br := bufio.NewReader(c)
	line, _ := br.ReadString('\n')
	if line == "" {
		return c, nil
	}
	rest := make([]byte, 4096)
	n, _ := br.Read(rest)
	return c, append([]byte(line), rest[:n]...)
}

// A trusted peer's v1 or v2 header names the client for the access log and the Authorizer, on
// the event loops and on Serve; the bytes after the header are the request; LOCAL keeps the peer.
func TestProxyProtocolHeaders(t *testing.T) {
	b := startPPBed(t, "127.0.0.0/8")
	for _, p := range []struct {
		name string
		px   *proxy
	}{{"loop", b.loop}, {"serve", b.serve}} {
		put := func(key string) []byte {
			r := rawReq{Method: "PUT", Path: "/" + p.px.Bucket + "/" + key, Body: []byte("body of " + key)}
			return r.bytes(t, p.px.Addr)
		}
		key := p.name + "-v1"
		_, ans := sendWith(t, p.px.Addr, append([]byte("PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\n"), put(key)...))
		if !strings.HasPrefix(string(ans), "HTTP/1.1 200 ") {
			t.Fatalf("%s: answer %q", key, ans)
		}
		if lg, az := b.remoteOf(t, key); lg != "203.0.113.7:51234" || az != lg {
			t.Errorf("%s: access log remote %q, authorizer remote %q; want 203.0.113.7:51234", key, lg, az)
		}

		// A body too large for the loop: detached (spliced) on the loop, copied on Serve.
		key = p.name + "-big"
		big := rawReq{Method: "PUT", Path: "/" + p.px.Bucket + "/" + key, Body: make([]byte, 3<<20)}
		_, ans = sendWith(t, p.px.Addr, append([]byte("PROXY TCP4 203.0.113.8 10.0.0.1 1 80\r\n"), big.bytes(t, p.px.Addr)...))
		if !strings.HasPrefix(string(ans), "HTTP/1.1 200 ") {
			t.Fatalf("%s: answer %q", key, ans)
		}
		if lg, az := b.remoteOf(t, key); lg != "203.0.113.8:1" || az != lg {
			t.Errorf("%s: access log remote %q, authorizer remote %q; want 203.0.113.8:1", key, lg, az)
		}
		if body, _ := upstream.GetObject(t, p.px.UpBucket, key); len(body) != 3<<20 {
			t.Errorf("%s: upstream holds %d bytes", key, len(body))
		}

		// v2 over IPv6, one byte per write, then the request in a separate write.
		key = p.name + "-v2"
		var chunks [][]byte
		for _, c := range ppV2Header("[2001:db8::42]:4242") {
			chunks = append(chunks, []byte{c})
		}
		_, ans = sendWith(t, p.px.Addr, append(chunks, put(key))...)
		if !strings.HasPrefix(string(ans), "HTTP/1.1 200 ") {
			t.Fatalf("%s: answer %q", key, ans)
		}
		if lg, az := b.remoteOf(t, key); lg != "[2001:db8::42]:4242" || az != lg {
			t.Errorf("%s: access log remote %q, authorizer remote %q; want [2001:db8::42]:4242", key, lg, az)
		}

		// v2 LOCAL (a balancer's health check) and v1 UNKNOWN keep the peer's own address.
		for i, hdr := range [][]byte{[]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"), []byte("PROXY UNKNOWN\r\n")} {
			key = p.name + "-local-" + string(rune('a'+i))
			c, ans := sendWith(t, p.px.Addr, append(hdr, put(key)...))
			if !strings.HasPrefix(string(ans), "HTTP/1.1 200 ") {
				t.Fatalf("%s: answer %q", key, ans)
			}
			if lg, az := b.remoteOf(t, key); lg != c.LocalAddr().String() || az != lg {
				t.Errorf("%s: access log remote %q, authorizer remote %q; want the peer %s", key, lg, az, c.LocalAddr())
			}
		}

		// Refusals: closed without a byte of answer, counted, nothing upstream.
		for _, tc := range []struct {
			reason string
			first  []byte
		}{
			{"malformed", []byte("PROXY TCP4 1.2.3.256 10.0.0.1 1 80\r\n")},
			{"malformed", []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x12\x00\x0c\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02")},
			{"missing", nil},
		} {
			key = p.name + "-refused-" + tc.reason
			before := ppCount(tc.reason)
			_, ans := sendWith(t, p.px.Addr, append(tc.first, put(key)...))
			if ans != nil {
				t.Errorf("%s: answered %q; want the connection closed", key, ans)
			}
			waitFor(t, key+" counted", 5*time.Second, func() bool { return ppCount(tc.reason) > before })
			if upstream.ObjectExists(t, p.px.UpBucket, key) {
				t.Errorf("%s: stored upstream", key)
			}
		}
	}
}

// A peer outside the trusted networks is closed at once, even with a well-formed header.
func TestProxyProtocolUntrusted(t *testing.T) {
	b := startPPBed(t, "10.0.0.0/8")
	for _, px := range []*proxy{b.loop, b.serve} {
		r := rawReq{Method: "PUT", Path: "/" + px.Bucket + "/untrusted", Body: []byte("x")}
		before := ppCount("untrusted")
		_, ans := sendWith(t, px.Addr, append([]byte("PROXY TCP4 10.1.1.1 10.0.0.1 1 80\r\n"), r.bytes(t, px.Addr)...))
		if ans != nil {
			t.Errorf("%s: answered %q; want the connection closed", px.Addr, ans)
		}
		waitFor(t, "untrusted counted", 5*time.Second, func() bool { return ppCount("untrusted") > before })
	}
	if upstream.ObjectExists(t, b.loop.UpBucket, "untrusted") {
		t.Error("stored upstream")
	}
}

// Behind a balancer the per-address connection limit counts the clients the PROXY headers name,
// not the balancer: two clients through one peer each get their connection, a second connection
// of the same client gets 503 SlowDown — on the event loops and on Serve.
func TestProxyProtocolConnectionLimitPerClient(t *testing.T) {
	b := startPPBed(t, "127.0.0.0/8", func(o *engine.Options) { o.Limits.MaxConnsPerIP = 1 })
	for i, p := range []*proxy{b.loop, b.serve} {
		// One engine behind both listeners: one limiter, so each listener gets its own clients.
		client := func(n, port int) string { return fmt.Sprintf("192.0.2.%d:%d", 2*i+n, port) }
		put := func(src, key string) string {
			r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/" + key, Body: []byte("pp " + key)}
			_, answer := sendWith(t, p.Addr, ppV2Header(src), r.bytes(t, p.Addr))
			line, _, _ := strings.Cut(string(answer), "\r\n")
			return line
		}
		if got := put(client(1, 1000), fmt.Sprint("pplim-a", i)); !strings.Contains(got, " 200 ") {
			t.Fatalf("%s: first client: %q", p.Addr, got)
		}
		if got := put(client(2, 1000), fmt.Sprint("pplim-b", i)); !strings.Contains(got, " 200 ") {
			t.Fatalf("%s: second client through the same balancer: %q; want 200", p.Addr, got)
		}
		if got := put(client(1, 2000), fmt.Sprint("pplim-c", i)); !strings.Contains(got, " 503 ") {
			t.Fatalf("%s: the first client's second connection: %q; want 503 SlowDown", p.Addr, got)
		}
		if upstream.ObjectExists(t, p.UpBucket, fmt.Sprint("pplim-c", i)) {
			t.Errorf("%s: the refused request reached the upstream", p.Addr)
		}
	}
}
