package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// uploadPolicy is the Rego (v1) policy of the OPA tests: a principal writes under users/<itself>/
// only, never an executable; carol may write anywhere with the ticket header T-1.
const uploadPolicy = `package mizuchi

default allow := false

writes := {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload"}

allow if {
	input.operation in writes
	startswith(input.key, concat("", ["users/", input.principal, "/"]))
	input.content_type != "application/x-msdownload"
}

allow if {
	input.principal == "carol"
	input.headers["x-amz-meta-ticket"] == "T-1"
}
`

// authzProxy is a running proxy (server.Server) for the authorization tests.
type authzProxy struct {
	srv      *Server
	endpoint string // "http://127.0.0.1:PORT"
	admin    string // "http://127.0.0.1:PORT"
}

var authzPrincipals = []Credential{{AccessKey: "alice", SecretKey: "alice-secret-0123456789"},
	{AccessKey: "bob", SecretKey: "bob-secret-0123456789"}, {AccessKey: "carol", SecretKey: "carol-secret-0123456789"}}

// startAuthzProxy runs the proxy with buckets (their s3 and auth filled in here: the upstream's
// same-named bucket, created, and authzPrincipals) until the test ends, and waits until it is ready.
func startAuthzProxy(t *testing.T, up *s3test.Server, buckets ...BucketConfig) *authzProxy {
	t.Helper()
	cfg := &Config{
		Server:  ServerConfig{Address: "127.0.0.1:" + strconv.Itoa(s3test.FreePort(t)), DrainTimeout: Duration(time.Second)},
		Metrics: MetricsConfig{Address: "127.0.0.1:" + strconv.Itoa(s3test.FreePort(t))},
		Log:     LogConfig{Access: boolPtr(false)},
	}
	for _, b := range buckets {
		up.CreateBucket(t, b.Name)
		b.S3 = S3Config{Bucket: b.Name, Endpoint: up.Endpoint, AccessKey: up.AccessKey, SecretKey: up.SecretKey}
		b.Auth = AuthConfig{SigV4: SigV4Config{Credentials: authzPrincipals}}
		cfg.Buckets = append(cfg.Buckets, b)
	}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(cfg, log, nil)
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
	p := &authzProxy{srv: srv, endpoint: "http://" + cfg.Server.Address, admin: "http://" + cfg.Metrics.Address}
	p.waitReady(t, true)
	return p
}

// waitReady polls readiness until it is want (at most 10 s: the prober runs every 2 s).
func (p *authzProxy) waitReady(t *testing.T, want bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, why := p.srv.Ready()
		if ok == want {
			return why
		}
		if time.Now().After(deadline) {
			t.Fatalf("ready = %v after 10 s (%s); want %v", ok, why, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client returns an SDK client for the proxy signing as principal.
func (p *authzProxy) client(principal string) *s3.Client {
	var secret string
	for _, c := range authzPrincipals {
		if c.AccessKey == principal {
			secret = c.SecretKey
		}
	}
	return s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(p.endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(principal, secret, ""),
		Retryer:     aws.NopRetryer{},
	})
}

// put uploads body to bucket/key as principal and returns the S3 error code ("" on success).
func (p *authzProxy) put(t *testing.T, principal, bucket, key string, body []byte, contentType string, meta map[string]string) string {
	t.Helper()
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), Metadata: meta}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := p.client(principal).PutObject(ctx, in)
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	t.Fatalf("PUT %s/%s as %s: %v", bucket, key, principal, err)
	return ""
}

// scrape returns the admin listener's /metrics text.
func (p *authzProxy) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func counter(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }

// A real OPA decides per principal and key: allowed uploads land upstream, denied ones answer 403
// with nothing upstream; a repeated decision comes from the cache (and shows in /metrics); while
// OPA is stopped its bucket refuses (fail closed) and the proxy is not ready, another bucket keeps
// serving; once OPA is back, uploads are allowed again.
func TestOPADecidesUploads(t *testing.T) {
	up := s3test.Start(t)
	opaSrv := s3test.StartOPA(t, uploadPolicy)
	p := startAuthzProxy(t, up,
		BucketConfig{Name: "opa-bucket", Authz: AuthzConfig{OPA: &OPAConfig{
			AuthzCommon: AuthzCommon{URL: opaSrv.URL, Timeout: Duration(2 * time.Second), CacheTTL: Duration(time.Minute)},
			Headers:     []string{"X-Amz-Meta-Ticket"},
		}}},
		BucketConfig{Name: "plain-bucket"},
	)
	const b = "opa-bucket"
	body := []byte("hello, policy")
	for _, tc := range []struct {
		principal, key, contentType string
		meta                        map[string]string
		want                        string // S3 error code; "" = allowed
	}{
		{"alice", "users/alice/a.txt", "text/plain", nil, ""},
		{"alice", "users/bob/a.txt", "text/plain", nil, "AccessDenied"},
		{"bob", "users/bob/a.txt", "text/plain", nil, ""},
		{"bob", "users/bobby/a.txt", "text/plain", nil, "AccessDenied"},
		{"alice", "users/alice/tool.exe", "application/x-msdownload", nil, "AccessDenied"},
		{"carol", "anywhere/c.txt", "text/plain", nil, "AccessDenied"},
		{"carol", "anywhere/c.txt", "text/plain", map[string]string{"ticket": "T-1"}, ""},
		{"carol", "anywhere/d.txt", "text/plain", map[string]string{"ticket": "T-2"}, "AccessDenied"},
	} {
		if got := p.put(t, tc.principal, b, tc.key, body, tc.contentType, tc.meta); got != tc.want {
			t.Errorf("%s PUT %s (%s, %v): %q; want %q", tc.principal, tc.key, tc.contentType, tc.meta, got, tc.want)
		}
		if exists := up.ObjectExists(t, b, tc.key); exists != (tc.want == "") {
			t.Errorf("%s PUT %s: exists upstream = %v", tc.principal, tc.key, exists)
		}
	}
	if up.ObjectExists(t, b, "users/alice/tool.exe") || up.ObjectExists(t, b, "anywhere/d.txt") {
		t.Error("a denied object exists upstream")
	}

	// The same decision again: from the cache, counted.
	hits, misses := counter(`mizuchi_authz_cache_hits_total{service="opa"}`), counter(`mizuchi_authz_cache_misses_total{service="opa"}`)
	if got := p.put(t, "alice", b, "users/alice/a.txt", body, "text/plain", nil); got != "" {
		t.Fatalf("repeated allowed PUT: %s", got)
	}
	if h, m := counter(`mizuchi_authz_cache_hits_total{service="opa"}`)-hits, counter(`mizuchi_authz_cache_misses_total{service="opa"}`)-misses; h != 1 || m != 0 {
		t.Errorf("repeated decision: %d cache hits, %d misses; want 1, 0", h, m)
	}
	text := p.scrape(t)
	for _, want := range []string{`mizuchi_authz_cache_hits_total{service="opa"} `, `mizuchi_authz_request_duration_seconds_bucket{service="opa",le="0.005"} `,
		`mizuchi_authz_decisions_total{decision="allow"} `, `mizuchi_authz_decisions_total{decision="deny"} `, `mizuchi_authz_up{endpoint="` + opaSrv.URL + `"} 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// OPA goes away: its bucket fails closed, the other bucket serves, readiness says why.
	opaSrv.Stop()
	errsBefore := counter(`mizuchi_authz_errors_total{service="opa",kind="unavailable"}`)
	if got := p.put(t, "alice", b, "users/alice/during-outage.txt", body, "text/plain", nil); got != "AccessDenied" {
		t.Errorf("PUT while OPA is down: %q; want AccessDenied", got)
	}
	if up.ObjectExists(t, b, "users/alice/during-outage.txt") {
		t.Error("object written while OPA was down")
	}
	if counter(`mizuchi_authz_errors_total{service="opa",kind="unavailable"}`) == errsBefore {
		t.Error("the failed decision was not counted as an error")
	}
	if got := p.put(t, "bob", "plain-bucket", "anything.txt", body, "", nil); got != "" {
		t.Errorf("PUT to the bucket without authz while OPA is down: %q", got)
	}
	if why := p.waitReady(t, false); !strings.Contains(why, "authz "+opaSrv.URL+" unreachable") {
		t.Errorf("not ready for another reason: %s", why)
	}

	// OPA is back: allowed again, ready again.
	opaSrv.Restart(t)
	if got := p.put(t, "alice", b, "users/alice/after.txt", body, "text/plain", nil); got != "" {
		t.Errorf("PUT after OPA returned: %q", got)
	}
	if !up.ObjectExists(t, b, "users/alice/after.txt") {
		t.Error("object allowed after the restart is not upstream")
	}
	p.waitReady(t, true)
}
