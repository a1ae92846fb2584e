package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/mizuchi/uploadr/authz/opa"
	"github.com/mizuchi/uploadr/authz/openfga"
	"github.com/mizuchi/uploadr/engine"
)

// Per-bucket authorization by a remote policy service: `authz: {opa: …}` or `authz: {openfga: …}`.
// The leaf clients (authz/opa, authz/openfga) ask; remoteAuthz adapts them to engine.Authorizer,
// caches decisions, counts them and fails closed. README.md ("Authorization") documents the keys.

// Defaults of an authz block.
const (
	DefaultAuthzTimeout   = time.Second
	DefaultAuthzCacheTTL  = 10 * time.Second
	DefaultAuthzCacheSize = 10000
	DefaultAuthzMaxConns  = 64
	DefaultOPAPath        = "mizuchi/allow"
	DefaultFGARelation    = "writer"
	DefaultFGAUser        = "user:{principal}"
	DefaultFGAObject      = "bucket:{bucket}"
	maxAuthzTimeout       = 30 * time.Second
)

// AuthzConfig names the policy service that decides on a bucket's requests; at most one of OPA
// and OpenFGA. Empty: every authenticated request is allowed.
type AuthzConfig struct {
	OPA     *OPAConfig     `yaml:"opa"`
	OpenFGA *OpenFGAConfig `yaml:"openfga"`
}

// AuthzCommon are the keys both services take.
type AuthzCommon struct {
	URL       string   `yaml:"url"`        // the service's HTTP base URL
	Timeout   Duration `yaml:"timeout"`    // one decision; default 1s (then 503 SlowDown)
	CacheTTL  Duration `yaml:"cache_ttl"`  // how long a decision is reused; default 10s
	CacheSize int      `yaml:"cache_size"` // decisions kept (LRU); default 10000; -1 = no cache
	MaxConns  int      `yaml:"max_conns"`  // connections to the service; default 64
}

// OPAConfig asks Open Policy Agent: POST <url>/v1/data/<path> {"input": …}.
type OPAConfig struct {
	AuthzCommon `yaml:",inline"`
	Path        string   `yaml:"path"`    // decision path; default mizuchi/allow
	Headers     []string `yaml:"headers"` // request headers copied into input.headers (lower-cased)
}

// OpenFGAConfig asks OpenFGA: POST <url>/stores/<store_id>/check.
type OpenFGAConfig struct {
	AuthzCommon          `yaml:",inline"`
	StoreID              string `yaml:"store_id"`
	AuthorizationModelID string `yaml:"authorization_model_id"` // default: the store's latest
	Relation             string `yaml:"relation"`               // default writer
	User                 string `yaml:"user"`                   // template; default user:{principal}
	Object               string `yaml:"object"`                 // template; default bucket:{bucket}
}

// common returns the block's shared keys, or nil without a block.
func (a *AuthzConfig) common() *AuthzCommon {
	switch {
	case a.OPA != nil:
		return &a.OPA.AuthzCommon
	case a.OpenFGA != nil:
		return &a.OpenFGA.AuthzCommon
	}
	return nil
}

// normalize fills the defaults of a bucket's authz block.
func (a *AuthzConfig) normalize() {
	for _, c := range []*AuthzCommon{optCommon(a.OPA), optFGACommon(a.OpenFGA)} {
		if c == nil {
			continue
		}
		setDur(&c.Timeout, DefaultAuthzTimeout)
		setDur(&c.CacheTTL, DefaultAuthzCacheTTL)
		setInt(&c.CacheSize, DefaultAuthzCacheSize)
		setInt(&c.MaxConns, DefaultAuthzMaxConns)
	}
	if o := a.OPA; o != nil {
		setStr(&o.Path, DefaultOPAPath)
		for i, h := range o.Headers {
			o.Headers[i] = strings.ToLower(h)
		}
	}
	if f := a.OpenFGA; f != nil {
		setStr(&f.Relation, DefaultFGARelation)
		setStr(&f.User, DefaultFGAUser)
		setStr(&f.Object, DefaultFGAObject)
	}
}

func optCommon(o *OPAConfig) *AuthzCommon {
	if o == nil {
		return nil
	}
	return &o.AuthzCommon
}

func optFGACommon(f *OpenFGAConfig) *AuthzCommon {
	if f == nil {
		return nil
	}
	return &f.AuthzCommon
}

// validate lists the problems of a bucket's (normalized) authz block, each naming its key.
func (a *AuthzConfig) validate(bucket string) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("bucket %q: authz."+format, append([]any{bucket}, args...)...))
	}
	if a.OPA != nil && a.OpenFGA != nil {
		bad("%s", "opa and authz.openfga: choose one")
	}
	name, c := "opa", a.common()
	if a.OPA == nil {
		name = "openfga"
	}
	if c == nil {
		return errs
	}
	if d := time.Duration(c.Timeout); d <= 0 || d > maxAuthzTimeout {
		bad("%s.timeout %v: want more than 0 up to %v", name, d, maxAuthzTimeout)
	}
	if c.CacheSize < -1 {
		bad("%s.cache_size %d: want -1 (no cache), 0 (the default, %d) or more", name, c.CacheSize, DefaultAuthzCacheSize)
	}
	if c.MaxConns < 0 {
		bad("%s.max_conns %d must be >= 0", name, c.MaxConns)
	}
	if o := a.OPA; o != nil {
		if _, err := opa.New(opaClientConfig(o)); err != nil {
			bad("opa: %v", strings.TrimPrefix(err.Error(), "opa: "))
		}
		for _, h := range o.Headers {
			if h == "" || strings.ContainsAny(h, " :\t") {
				bad("opa.headers: %q is not a header name", h)
			}
			switch strings.ToLower(h) {
			case "authorization", "proxy-authorization", "x-amz-security-token", "cookie":
				bad("opa.headers: %q carries credentials and is never sent to a policy", h)
			}
		}
	}
	if f := a.OpenFGA; f != nil {
		if _, err := openfga.New(fgaClientConfig(f)); err != nil {
			bad("openfga: %v", strings.TrimPrefix(err.Error(), "openfga: "))
		}
		if f.Relation == "" || strings.ContainsAny(f.Relation, " :#") {
			bad("openfga.relation %q: want a relation name like writer", f.Relation)
		}
		for _, t := range []struct{ key, v string }{{"user", f.User}, {"object", f.Object}} {
			if _, err := openfga.ParseTemplate(t.v); err != nil {
				bad("openfga.%s: %v", t.key, err)
			}
		}
	}
	return errs
}

func opaClientConfig(o *OPAConfig) opa.Config {
	return opa.Config{URL: o.URL, Path: o.Path, Timeout: time.Duration(o.Timeout), MaxConns: o.MaxConns}
}

func fgaClientConfig(f *OpenFGAConfig) openfga.Config {
	return openfga.Config{URL: f.URL, StoreID: f.StoreID, AuthorizationModelID: f.AuthorizationModelID,
		Timeout: time.Duration(f.Timeout), MaxConns: f.MaxConns}
}

// authorizer builds the engine.Authorizer of a bucket's (normalized, valid) authz block; nil
// without one. It does not dial.
func (a *AuthzConfig) authorizer(bucket string, log *slog.Logger) (engine.Authorizer, error) {
	c := a.common()
	if c == nil {
		return nil, nil
	}
	r := &remoteAuthz{bucket: bucket, log: log}
	if c.CacheSize > 0 && c.CacheTTL > 0 {
		r.cache = newDecisionCache(c.CacheSize, time.Duration(c.CacheTTL))
	}
	switch {
	case a.OPA != nil:
		cl, err := opa.New(opaClientConfig(a.OPA))
		if err != nil {
			return nil, fmt.Errorf("bucket %q: authz.%w", bucket, err)
		}
		r.backend, r.prepare = "opa", opaPrepare(cl)
	default:
		f := a.OpenFGA
		cl, err := openfga.New(fgaClientConfig(f))
		if err != nil {
			return nil, fmt.Errorf("bucket %q: authz.%w", bucket, err)
		}
		user, err1 := openfga.ParseTemplate(f.User)
		object, err2 := openfga.ParseTemplate(f.Object)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("bucket %q: authz.openfga: %w", bucket, err)
		}
		r.backend, r.prepare = "openfga", fgaPrepare(cl, f.Relation, user, object)
	}
	r.m = authzMetricsFor(r.backend)
	return r, nil
}

// A prepared decision: the cache key (the input without volatile fields: no request id, no
// source port) and the call that asks the service. A non-nil *engine.Error refuses the request
// without asking (the input cannot be built).
type prepareFunc func(in *engine.AuthzInput) (key string, ask func(context.Context) (bool, error), refuse *engine.Error)

func opaPrepare(cl *opa.Client) prepareFunc {
	return func(in *engine.AuthzInput) (string, func(context.Context) (bool, error), *engine.Error) {
		oin := &opa.Input{
			Operation: in.Operation, Bucket: in.Bucket, Key: in.Key, ContentLength: in.Size,
			ContentType: in.ContentType, UploadID: in.UploadID, PartNumber: in.PartNumber,
			Principal: in.Principal.ID, AuthMethod: in.Principal.Method, Claims: in.Principal.Claims,
			SourceIP: sourceIP(in.Remote), Headers: in.Headers,
		}
		if oin.Claims == nil {
			oin.Claims = map[string]any{}
		}
		if oin.Headers == nil {
			oin.Headers = map[string]string{}
		}
		key, err := cacheKeyJSON(oin)
		if err != nil {
			return "", nil, errAuthzInput
		}
		return key, func(ctx context.Context) (bool, error) {
			return cl.Decide(opa.WithTraceContext(ctx, in.Traceparent, in.Tracestate), oin)
		}, nil
	}
}

func fgaPrepare(cl *openfga.Client, relation string, user, object openfga.Template) prepareFunc {
	return func(in *engine.AuthzInput) (string, func(context.Context) (bool, error), *engine.Error) {
		v := &openfga.Vars{Principal: in.Principal.ID, Bucket: in.Bucket, Key: in.Key, Claims: in.Principal.Claims}
		u, missing, ok := user.Expand(v)
		if !ok {
			return "", nil, missingValue(missing)
		}
		o, missing, ok := object.Expand(v)
		if !ok {
			return "", nil, missingValue(missing)
		}
		t := openfga.Tuple{User: u, Relation: relation, Object: o}
		tp, ts := in.Traceparent, in.Tracestate
		return u + "\x00" + relation + "\x00" + o, func(ctx context.Context) (bool, error) {
			return cl.Check(openfga.WithTraceContext(ctx, tp, ts), t)
		}, nil
	}
}

// Answers of a remote authorization. Messages never carry the policy's input or the service's
// error text (the log has that).
var (
	errPolicyDenied = &engine.Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied by policy"}
	errNoDecision   = &engine.Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied: the authorization service gave no decision"}
	errAuthzInput   = &engine.Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied: the request cannot be put to the policy"}
)

func missingValue(name string) *engine.Error {
	return &engine.Error{Code: "AccessDenied", Status: http.StatusForbidden,
		Message: "Access Denied: the authorization tuple needs {" + name + "}, which this request does not have"}
}

// sourceIP is the host part of a client address ("192.0.2.1:5678" -> "192.0.2.1").
func sourceIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// remoteAuthz is an engine.Authorizer asking OPA or OpenFGA, fail closed: only an explicit
// allow lets a request through; a denial, an undefined decision or an error answers 403
// AccessDenied, a decision that does not come within the block's timeout 503 SlowDown. Safe for
// concurrent use.
type remoteAuthz struct {
	backend string // "opa" or "openfga": the metrics label
	bucket  string
	prepare prepareFunc
	cache   *decisionCache // nil: no cache
	m       *authzMetrics
	log     *slog.Logger // nil: no log

	logMu   sync.Mutex
	lastLog time.Time // rate-limits the error log to one line per 10 s
}

// Authorize implements engine.Authorizer.
func (r *remoteAuthz) Authorize(ctx context.Context, in *engine.AuthzInput) *engine.Error {
	key, ask, refuse := r.prepare(in)
	if refuse != nil {
		r.m.errors("input").Inc()
		r.debugDecision(ctx, in, "deny: "+refuse.Message, false)
		return refuse
	}
	if allowed, ok := r.cache.get(key, time.Now()); ok {
		r.m.cacheHits.Inc()
		r.debugDecision(ctx, in, allowWord(allowed), true)
		return verdict(allowed)
	}
	r.m.cacheMisses.Inc()
	start := time.Now()
	allowed, err := ask(ctx)
	r.m.latency.UpdateDuration(start)
	if err != nil {
		kind := "unavailable"
		switch {
		case errors.Is(err, opa.ErrTimeout) || errors.Is(err, openfga.ErrTimeout):
			kind = "timeout"
		case errors.Is(err, opa.ErrBadAnswer) || errors.Is(err, openfga.ErrBadAnswer):
			kind = "bad_answer"
		}
		r.m.errors(kind).Inc()
		r.logError(err)
		r.debugDecision(ctx, in, "deny: no decision ("+kind+")", false)
		if kind == "timeout" {
			return engine.ErrAuthorizeTimeout
		}
		return errNoDecision
	}
	r.cache.put(key, allowed, time.Now())
	r.debugDecision(ctx, in, allowWord(allowed), false)
	return verdict(allowed)
}

func allowWord(allowed bool) string {
	if allowed {
		return "allow"
	}
	return "deny"
}

// debugDecision logs one decision at debug level: who, what, the verdict and whether the cache
// answered. Never a credential, a token or a claim value.
func (r *remoteAuthz) debugDecision(ctx context.Context, in *engine.AuthzInput, decision string, cached bool) {
	if r.log == nil || !r.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	r.log.Debug("authz decision", "backend", r.backend, "bucket", r.bucket, "principal", in.Principal.ID,
		"auth_method", in.Principal.Method, "operation", in.Operation, "request_id", in.RequestID,
		"decision", decision, "cached", cached)
}

func verdict(allowed bool) *engine.Error {
	if allowed {
		return nil
	}
	return errPolicyDenied
}

// logError logs a failed decision, at most once per 10 s per bucket (the metrics count them all).
func (r *remoteAuthz) logError(err error) {
	if r.log == nil {
		return
	}
	r.logMu.Lock()
	now := time.Now()
	quiet := now.Sub(r.lastLog) < 10*time.Second
	if !quiet {
		r.lastLog = now
	}
	r.logMu.Unlock()
	if !quiet {
		r.log.Warn("authorization failed closed", "bucket", r.bucket, "service", r.backend, "err", err)
	}
}

// authzMetrics are one backend's series (bounded labels: backend and error kind only).
type authzMetrics struct {
	backend     string
	latency     *metrics.PrometheusHistogram
	cacheHits   *metrics.Counter
	cacheMisses *metrics.Counter
}

// authzLatencyBounds are the latency histogram's buckets, in seconds (a local OPA answers in
// about 0.2 ms, a remote one in milliseconds; the default timeout is 1 s).
var authzLatencyBounds = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

func authzMetricsFor(backend string) *authzMetrics {
	l := `{service="` + backend + `"}`
	return &authzMetrics{
		backend:     backend,
		latency:     metrics.GetOrCreatePrometheusHistogramExt(`mizuchi_authz_request_duration_seconds`+l, authzLatencyBounds),
		cacheHits:   metrics.GetOrCreateCounter(`mizuchi_authz_cache_hits_total` + l),
		cacheMisses: metrics.GetOrCreateCounter(`mizuchi_authz_cache_misses_total` + l),
	}
}

// errors is the counter of failed decisions of one kind: timeout, unavailable, bad_answer, input.
func (m *authzMetrics) errors(kind string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`mizuchi_authz_errors_total{service="` + m.backend + `",kind="` + kind + `"}`)
}

// authzEndpoints lists the distinct authorization service URLs of cfg's buckets (probed for
// readiness).
func authzEndpoints(cfg *Config) []string {
	seen := map[string]bool{}
	var eps []string
	for _, b := range cfg.Buckets {
		if c := b.Authz.common(); c != nil && !seen[c.URL] {
			seen[c.URL] = true
			eps = append(eps, c.URL)
		}
	}
	sort.Strings(eps)
	return eps
}

// AuthzWarnings connects to every authorization service cfg names (a TCP connect within
// upstream.dial_timeout, all at once) and describes each one that cannot be reached. `-check`
// prints them as warnings: the service may come up after the proxy, which is not ready until then.
func (c *Config) AuthzWarnings(ctx context.Context) []string {
	eps := authzEndpoints(c)
	out := make([]string, len(eps))
	timeout := time.Duration(c.Upstream.DialTimeout)
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addr, err := dialAddr(ep)
			if err == nil {
				var d net.Dialer
				dctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				var conn net.Conn
				if conn, err = d.DialContext(dctx, "tcp", addr); err == nil {
					_ = conn.Close()
				}
			}
			if err != nil {
				out[i] = fmt.Sprintf("authorization service %s unreachable (requests it decides on are refused until it answers): %v", ep, err)
			}
		}()
	}
	wg.Wait()
	var warns []string
	for _, w := range out {
		if w != "" {
			warns = append(warns, w)
		}
	}
	return warns
}
