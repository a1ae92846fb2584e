package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/internal/s3test"
)

func TestProxyProtocolConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		pp   ProxyProtocolConfig
		want string // "" = valid
	}{
		{"off", ProxyProtocolConfig{}, ""},
		{"on", ProxyProtocolConfig{Enabled: true, TrustedCIDRs: []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"}}, ""},
		{"on without trusted networks", ProxyProtocolConfig{Enabled: true}, "without server.proxy_protocol.trusted_cidrs"},
		{"bad cidr", ProxyProtocolConfig{Enabled: true, TrustedCIDRs: []string{"10.0.0.0/33"}}, `trusted_cidrs "10.0.0.0/33"`},
		{"host name", ProxyProtocolConfig{Enabled: true, TrustedCIDRs: []string{"lb.example"}}, `trusted_cidrs "lb.example"`},
		{"zone", ProxyProtocolConfig{Enabled: true, TrustedCIDRs: []string{"fe80::1%eth0"}}, `trusted_cidrs "fe80::1%eth0"`},
		{"bad cidr while off", ProxyProtocolConfig{TrustedCIDRs: []string{"x"}}, `trusted_cidrs "x"`},
	} {
		errs := tc.pp.validate()
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", tc.name, errs)
		case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, errs, tc.want)
		}
	}
	p, err := ProxyProtocolConfig{TrustedCIDRs: []string{"10.1.2.3/8", "192.0.2.7", "::ffff:172.16.0.0/108"}}.prefixes()
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("172.16.0.0/12")}; fmt.Sprint(p) != fmt.Sprint(want) {
		t.Errorf("prefixes %v; want %v", p, want)
	}

	f := parseFlags(t, "-proxy-protocol", "-proxy-protocol-trusted-cidr", "10.0.0.0/8", "-proxy-protocol-trusted-cidr", "192.0.2.7")
	var c Config
	if err := f.Apply(&c); err != nil {
		t.Fatal(err)
	}
	if pp := c.Server.ProxyProtocol; !pp.Enabled || fmt.Sprint(pp.TrustedCIDRs) != "[10.0.0.0/8 192.0.2.7]" {
		t.Errorf("flags gave %+v", pp)
	}
	// The file's key is read, and -check (Validate) refuses an enabled protocol without networks.
	cfg, err := ParseConfig([]byte(`server: {proxy_protocol: {enabled: true}}
buckets:
  - name: a
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
`), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "server.proxy_protocol.enabled without") {
		t.Errorf("Validate: %v", err)
	}
}

// ppProxy is a running proxy (server.Server) with the PROXY protocol on both listeners and a JSON
// access log.
type ppProxy struct {
	plain, https string
	pool         *x509.CertPool
	log          *syncBuffer
	bucket       string
}

func startPPProxy(t *testing.T, up *s3test.Server) *ppProxy {
	t.Helper()
	dir := t.TempDir()
	cert, key := writePair(t, dir, "c", time.Hour)
	p := &ppProxy{plain: "127.0.0.1:" + strconv.Itoa(s3test.FreePort(t)), https: "127.0.0.1:" + strconv.Itoa(s3test.FreePort(t)),
		log: &syncBuffer{}, bucket: "ppbucket"}
	up.CreateBucket(t, p.bucket)
	cfg := &Config{
		Server: ServerConfig{Address: p.plain, DrainTimeout: Duration(time.Second),
			TLS:           TLSConfig{Address: p.https, CertFile: cert, KeyFile: key, HandshakeTimeout: Duration(2 * time.Second)},
			ProxyProtocol: ProxyProtocolConfig{Enabled: true, TrustedCIDRs: []string{"127.0.0.0/8"}}},
		Metrics: MetricsConfig{Address: "127.0.0.1:" + strconv.Itoa(s3test.FreePort(t))},
		Log:     LogConfig{Format: "json", Access: boolPtr(true)},
		Buckets: []BucketConfig{{Name: p.bucket, S3: S3Config{Bucket: p.bucket, Endpoint: up.Endpoint, AccessKey: up.AccessKey, SecretKey: up.SecretKey},
			Auth: AuthConfig{SigV4: SigV4Config{Credentials: authzPrincipals}}}},
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), p.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	(&authzProxy{srv: srv}).waitReady(t, true)
	pair, _ := tls.LoadX509KeyPair(cert, key)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(pair.Leaf)
	return p
}

// client is an SDK client (as users build it) whose every connection first writes the PROXY
// header hdr returns for it.
func (p *ppProxy) client(t *testing.T, endpoint string, hdr func(c net.Conn) []byte) *s3.Client {
	t.Helper()
	t.Setenv("AWS_CA_BUNDLE", "") // the machine's bundle would replace the test's CA
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			if hdr != nil {
				if _, err := c.Write(hdr(c)); err != nil {
					c.Close()
					return nil, err
				}
			}
			return c, nil
		},
		TLSClientConfig: &tls.Config{RootCAs: p.pool},
	}
	t.Cleanup(tr.CloseIdleConnections)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(authzPrincipals[0].AccessKey, authzPrincipals[0].SecretKey, "")),
		config.WithRetryMaxAttempts(1), config.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

func (p *ppProxy) put(cl *s3.Client, key string) error {
	_, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(p.bucket), Key: aws.String(key),
		Body: bytes.NewReader([]byte("hello " + key))})
	return err
}

// remoteOf waits for key's access-log line and returns its remote.
func (p *ppProxy) remoteOf(t *testing.T, key string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range strings.Split(p.log.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["key"] == key {
				r, _ := m["remote"].(string)
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log line for %s:\n%s", key, p.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ppV1(src string) func(net.Conn) []byte {
	return func(c net.Conn) []byte {
		a := netip.MustParseAddrPort(src)
		return []byte(fmt.Sprintf("PROXY TCP4 %s %s %d 443\r\n", a.Addr(), c.RemoteAddr().(*net.TCPAddr).IP, a.Port()))
	}
}

func ppV2(src string) func(net.Conn) []byte {
	return func(net.Conn) []byte {
		a := netip.MustParseAddrPort(src)
		b := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x21\x00\x00")
		s, d := a.Addr().As16(), netip.MustParseAddr("2001:db8::1").As16()
		b = append(append(append(b, s[:]...), d[:]...), byte(a.Port()>>8), byte(a.Port()), 1, 187)
		b = append(b, 0x04, 0x00, 0x02, 0, 0) // a NOOP TLV
		binary.BigEndian.PutUint16(b[14:], uint16(len(b)-16))
		return b
	}
}

// Both listeners take the client's address from a v1 or v2 header (before TLS on the https one);
// a missing header closes the connection without an answer.
func TestProxyProtocolListeners(t *testing.T) {
	up := s3test.Start(t)
	p := startPPProxy(t, up)
	for _, tc := range []struct {
		name, endpoint string
		hdr            func(net.Conn) []byte
		want           string
	}{
		{"plain v1", "http://" + p.plain, ppV1("203.0.113.7:51234"), "203.0.113.7:51234"},
		{"plain v2", "http://" + p.plain, ppV2("[2001:db8::42]:4242"), "[2001:db8::42]:4242"},
		{"https v1", "https://" + p.https, ppV1("198.51.100.9:60000"), "198.51.100.9:60000"},
		{"https v2", "https://" + p.https, ppV2("[2001:db8::43]:1"), "[2001:db8::43]:1"},
	} {
		key := strings.ReplaceAll(tc.name, " ", "-")
		if err := p.put(p.client(t, tc.endpoint, tc.hdr), key); err != nil {
			t.Fatalf("%s: PutObject: %v", tc.name, err)
		}
		if got := p.remoteOf(t, key); got != tc.want {
			t.Errorf("%s: access log remote %q; want %q", tc.name, got, tc.want)
		}
		if body, _ := up.GetObject(t, p.bucket, key); string(body) != "hello "+key {
			t.Errorf("%s: upstream holds %q", tc.name, body)
		}
	}
	before := counter(`mizuchi_proxy_protocol_rejected_total{reason="missing"}`)
	for _, ep := range []string{"http://" + p.plain, "https://" + p.https} {
		if err := p.put(p.client(t, ep, nil), "no-header"); err == nil {
			t.Errorf("%s: a PutObject without a PROXY header succeeded", ep)
		}
		// Raw: nothing at all comes back.
		c, err := net.Dial("tcp", strings.TrimPrefix(strings.TrimPrefix(ep, "http://"), "https://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("PUT /ppbucket/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 100)); n != 0 || err == nil {
			t.Errorf("%s: without a header: read %d bytes, %v; want EOF", ep, n, err)
		}
		c.Close()
	}
	if up.ObjectExists(t, p.bucket, "no-header") {
		t.Error("an object was stored without a PROXY header")
	}
	if got := counter(`mizuchi_proxy_protocol_rejected_total{reason="missing"}`) - before; got < 4 {
		t.Errorf("missing headers counted %d times; want >= 4", got)
	}
}

// HAProxy (mode tcp, send-proxy-v2) in front of the proxy: an SDK PutObject through it lands on
// versitygw, and the access log shows the client's own address (its source port: all addresses
// are loopback).
func TestHAProxySendProxyV2(t *testing.T) {
	up := s3test.Start(t)
	p := startPPProxy(t, up)
	front := s3test.StartHAProxy(t, func(front string) string {
		return fmt.Sprintf(`global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend s3
    bind %s
    default_backend proxies
backend proxies
    server node1 %s send-proxy-v2
`, front, p.plain)
	})
	var mu sync.Mutex
	ports := map[string]bool{}
	cl := p.client(t, "http://"+front, func(c net.Conn) []byte {
		mu.Lock()
		ports[c.LocalAddr().String()] = true
		mu.Unlock()
		return nil
	})
	for i := range 3 {
		key := fmt.Sprintf("via-haproxy-%d", i)
		if err := p.put(cl, key); err != nil {
			t.Fatalf("PutObject through HAProxy: %v", err)
		}
		if body, _ := up.GetObject(t, p.bucket, key); string(body) != "hello "+key {
			t.Fatalf("upstream holds %q", body)
		}
		remote := p.remoteOf(t, key)
		mu.Lock()
		ok := ports[remote]
		mu.Unlock()
		if !ok {
			t.Errorf("access log remote %q is not one of the client's own addresses %v", remote, ports)
		}
	}
}
