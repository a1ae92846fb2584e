package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/exposition"
	"github.com/mizuchi/uploadr/tracing"
)

// current is the server the process-wide gauges read (one server per process in production).
var current atomic.Pointer[Server]

var (
	reloadsOK     = metrics.NewCounter(`mizuchi_config_reloads_total{result="ok"}`)
	reloadsFailed = metrics.NewCounter(`mizuchi_config_reloads_total{result="error"}`)
)

func init() {
	stat := func(f func(e *engine.Engine) float64) func() float64 {
		return func() float64 {
			if s := current.Load(); s != nil {
				return f(s.eng)
			}
			return 0
		}
	}
	metrics.NewGauge(`mizuchi_pipes_in_use`, stat(func(e *engine.Engine) float64 { return float64(e.TransferStats().PipesInUse) }))
	metrics.NewGauge(`mizuchi_pipes_idle`, stat(func(e *engine.Engine) float64 { return float64(e.TransferStats().PipesIdle) }))
	metrics.NewGauge(`mizuchi_copy_buffers_in_use`, stat(func(e *engine.Engine) float64 { return float64(e.TransferStats().CopyBuffersInUse) }))
	metrics.NewGauge(`mizuchi_copy_buffers_idle`, stat(func(e *engine.Engine) float64 { return float64(e.TransferStats().CopyBuffersIdle) }))
	metrics.NewGauge(`mizuchi_copy_buffers_waiting`, stat(func(e *engine.Engine) float64 { return float64(e.TransferStats().CopyWaiting) }))
	metrics.NewGauge(`mizuchi_ready`, func() float64 {
		if s := current.Load(); s != nil {
			if ok, _ := s.Ready(); ok {
				return 1
			}
		}
		return 0
	})
	metrics.NewGauge(`mizuchi_draining`, func() float64 {
		if s := current.Load(); s != nil && s.draining.Load() {
			return 1
		}
		return 0
	})
}

// accessLogPending bounds the access-log bytes queued in memory (see AccessWriter).
const accessLogPending = 4 << 20

// Server is a running proxy: data plane, admin listener, readiness prober and access log.
// Create it with New, serve with Run; Reload and CutDrain may be called from other goroutines.
type Server struct {
	log    *slog.Logger
	eng    *engine.Engine
	access *AccessWriter // nil without an access log
	probe  *prober
	jwks   *jwksRunner     // the JWKS refreshers of auth.jwt buckets (jwt.go)
	tracer *tracing.Tracer // nil unless tracing.enabled (tracing.go)

	mu  sync.Mutex // guards cfg (Reload), tlsL and tlsCfg
	cfg *Config

	admin    *fasthttp.Server
	tlsL     net.Listener // the https listener (server.tls), nil without one
	certs    certStore    // its certificate (SIGHUP reloads it)
	tlsCfg   TLSConfig    // server.tls at start
	adminL   net.Listener
	draining atomic.Bool
	pprof    bool // metrics.pprof at start (pprof.go)

	cutOnce sync.Once
	cut     chan struct{} // closed by CutDrain
}

// New prepares a server from a normalized, valid configuration. log receives the process's own
// lines; access, when not nil and log.access is true, receives the access log (buffered by an
// AccessWriter; Run flushes it on exit).
func New(cfg *Config, log *slog.Logger, access io.Writer) (*Server, error) {
	s := &Server{cfg: cfg, log: log, cut: make(chan struct{}), pprof: cfg.Metrics.PProf,
		probe: newProber(time.Duration(cfg.Upstream.DialTimeout), DefaultProbeInterval)}
	var al *slog.Logger
	if access != nil && (cfg.Log.Access == nil || *cfg.Log.Access) {
		s.access = NewAccessWriter(access, accessLogPending)
		al = NewAccessLogger(cfg.Log, s.access)
	}
	opts, err := cfg.EngineOptions(log, al)
	if err != nil {
		return nil, err
	}
	if s.tracer, opts.Tracer, err = newTracer(cfg.Tracing, log); err != nil { // tracing.go
		return nil, err
	}
	if s.eng, err = engine.New(opts); err != nil {
		_ = shutdownTracer(s.tracer)
		return nil, err
	}
	s.jwks = &jwksRunner{log: log, auths: jwtAuthenticators(opts)}
	s.probe.log = log
	s.probe.setEndpoints(endpoints(cfg))
	s.probe.setAuthzEndpoints(authzEndpoints(cfg))
	return s, nil
}

// endpoints lists the distinct upstream endpoints of cfg's buckets.
func endpoints(cfg *Config) []string {
	seen := map[string]bool{}
	var eps []string
	for _, b := range cfg.Buckets {
		if !seen[b.S3.Endpoint] {
			seen[b.S3.Endpoint] = true
			eps = append(eps, b.S3.Endpoint)
		}
	}
	sort.Strings(eps)
	return eps
}

// Run serves until ctx is cancelled, then drains: /readyz answers 503 at once, the engine stops
// accepting and closes idle connections, uploads in flight get server.drain_timeout (or until
// CutDrain) to finish and are cut after that (no partial object remains). Run returns nil after
// a drain, whatever was cut; an error only if serving failed.
func (s *Server) Run(ctx context.Context) error {
	current.Store(s)
	defer func() {
		if err := shutdownTracer(s.tracer); err != nil { // after the engine: every span has ended
			s.log.Warn("tracing: spans still queued were not exported", "err", err)
		}
		if s.access != nil {
			_ = s.access.Close()
		}
	}()
	cfg := s.config()
	if cfg.Server.plainListener() {
		if err := checkBind(cfg.Server.Address, cfg.Server.ReusePort); err != nil {
			return err // before gnet, which would say "setsockopt: bad file descriptor"
		}
	}
	if cfg.Metrics.Enabled == nil || *cfg.Metrics.Enabled {
		if err := s.startAdmin(cfg.Metrics.Address, cfg.Server.ReusePort); err != nil {
			return err
		}
		defer func() { _ = s.admin.Shutdown() }()
	}
	pctx, stopProbe := context.WithCancel(context.Background())
	defer stopProbe()
	go s.probe.run(pctx)
	s.jwks.start(s.jwks.auths)
	defer s.jwks.stop()

	if cfg.Server.TLS.Address != "" {
		l, err := listenTLS(cfg.Server.TLS, &s.certs, cfg.Server.ReusePort, s.eng.ProxyListener)
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.tlsL, s.tlsCfg = l, cfg.Server.TLS
		s.mu.Unlock()
		defer l.Close()
	}
	errc := make(chan error, 1)
	go func() { errc <- s.eng.Run(context.Background()) }()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	select {
	case err := <-errc:
		if berr := checkBind(cfg.Server.Address, cfg.Server.ReusePort); berr != nil {
			return berr // the real reason of a bind that failed between the check and gnet
		}
		return fmt.Errorf("listen %s: %w", cfg.Server.Address, err)
	case <-rctx.Done():
		if ctx.Err() == nil {
			return errors.New("engine did not start within 10s")
		}
	case <-s.readyCh():
		addr := cfg.Server.Address
		if !cfg.Server.plainListener() {
			addr = "off (https only)"
		}
		s.log.Info("mizuchi-uploadr listening", "address", addr,
			"admin", s.AdminAddr(), "buckets", len(cfg.Buckets))
		if cfg.Server.ReusePort {
			if w := handOverWarning(tcpMigrateReq); w != "" {
				s.log.Warn("upgrade hand-over: " + w)
			}
		}
	}
	if s.tlsL != nil {
		go func() {
			if err := s.serveTLS(s.tlsL, cfg.Server.TLS.Driver); err != nil {
				s.log.Error("https listener failed", "address", s.tlsL.Addr().String(), "err", err)
			}
		}()
		s.log.Info("https listening", "address", s.tlsL.Addr().String(), "min_version", cfg.Server.TLS.MinVersion)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	if cfg.Server.ReusePort && s.adminL != nil {
		_ = s.adminL.Close() // the admin address is the new process's now (the engine closes its own)
	}
	drain := time.Duration(s.config().Server.DrainTimeout)
	s.log.Info("draining", "timeout", drain, "uploads", s.eng.ActiveUploads())
	dctx, dcancel := context.WithTimeout(context.Background(), drain)
	defer dcancel()
	go func() {
		select {
		case <-s.cut:
			s.log.Warn("drain cut short")
			dcancel()
		case <-dctx.Done():
		}
	}()
	if err := s.eng.Shutdown(dctx); err != nil {
		s.log.Warn("shutdown", "err", err)
	}
	err := <-errc
	s.log.Info("stopped")
	return err
}

// CutDrain ends a drain in progress now (a second SIGTERM): uploads still running are cut.
func (s *Server) CutDrain() { s.cutOnce.Do(func() { close(s.cut) }) }

func (s *Server) readyCh() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		if s.eng.WaitReady(context.Background()) == nil {
			close(ch)
		}
	}()
	return ch
}

func (s *Server) config() *Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Ready reports whether the proxy should receive traffic: the engine listens, no drain started and
// every upstream endpoint and authorization service answered its last connect probe, and every
// auth.jwt JWKS has current keys. If not, the reason.
func (s *Server) Ready() (bool, string) {
	if s.draining.Load() {
		return false, "draining"
	}
	if !s.eng.Ready() {
		return false, "not listening"
	}
	ok, why := s.probe.ready()
	if bad := s.jwks.ready(); len(bad) > 0 {
		ok, why = false, strings.TrimPrefix(why+"\n"+strings.Join(bad, "\n"), "\n")
	}
	return ok, why
}

// Reload replaces the bucket configuration with what load returns (SIGHUP). A load or validation
// error is logged and returned, and the running configuration stays. Bucket changes apply to
// requests routed after it; connections and requests in flight are untouched. Other settings are
// fixed at start: a change to them is logged as needing a restart.
func (s *Server) Reload(load func() (*Config, error)) error {
	next, err := load()
	if err == nil {
		var opts engine.Options
		if opts, err = next.EngineOptions(nil, nil); err == nil {
			s.jwks.prime(jwtAuthenticators(opts)) // the new buckets' keys before they take requests
			if err = s.eng.UpdateBuckets(opts.Buckets); err == nil {
				s.jwks.start(jwtAuthenticators(opts))
			}
		}
	}
	if err != nil {
		reloadsFailed.Inc()
		s.log.Error("configuration reload failed; the running configuration stays", "err", err)
		return err
	}
	s.mu.Lock()
	prev := s.cfg
	s.cfg = next
	s.mu.Unlock()
	s.probe.setEndpoints(endpoints(next))
	s.probe.setAuthzEndpoints(authzEndpoints(next))
	reloadsOK.Inc()
	names := make([]string, len(next.Buckets))
	for i, b := range next.Buckets {
		names[i] = b.Name
	}
	s.log.Info("configuration reloaded", "buckets", names)
	// The https listener's address and settings are fixed; its certificate and key are read again.
	_ = s.ReloadCertificate()
	if restart := fixedChanges(prev, next); len(restart) > 0 {
		s.log.Warn("configuration changes that need a restart were not applied", "sections", restart)
	}
	return nil
}

// fixedChanges names the sections outside buckets that differ between a and b.
func fixedChanges(a, b *Config) []string {
	var out []string
	for _, sec := range []struct {
		name string
		a, b any
	}{{"server", a.Server, b.Server}, {"upstream", a.Upstream, b.Upstream}, {"metrics", a.Metrics, b.Metrics}, {"log", a.Log, b.Log},
		{"tracing", a.Tracing, b.Tracing}} {
		if !reflect.DeepEqual(sec.a, sec.b) {
			out = append(out, sec.name)
		}
	}
	return out
}

// EventLoops returns the number of event loops the data plane runs.
func (s *Server) EventLoops() int { return s.eng.EventLoops() }

// AdminAddr returns the admin listener's address once Run started it.
func (s *Server) AdminAddr() string {
	if s.adminL == nil {
		return ""
	}
	return s.adminL.Addr().String()
}

func (s *Server) startAdmin(addr string, reusePort bool) error {
	l, err := listenTCP(addr, reusePort)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", addr, err)
	}
	s.adminL = l
	s.admin = &fasthttp.Server{
		Handler:               s.handleAdmin,
		Name:                  "mizuchi-uploadr-admin",
		NoDefaultServerHeader: true,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
	}
	go func() { _ = s.admin.Serve(l) }()
	return nil
}

// handleAdmin serves /metrics (Prometheus text with HELP and TYPE for every family, Go runtime
// and process metrics included), /healthz
// (200 while the process runs) and /readyz (200, or 503 with the reasons).
func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		exposition.WritePrometheus(ctx)
	case "/healthz":
		ctx.SetBodyString("ok\n")
	case "/readyz":
		ctx.SetContentType("text/plain; charset=utf-8")
		if ok, why := s.Ready(); ok {
			ctx.SetBodyString("ready\n")
		} else {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready: " + why + "\n")
		}
	default:
		if !s.servePprof(ctx) { // pprof.go: /debug/pprof/ with metrics.pprof
			ctx.SetStatusCode(fasthttp.StatusNotFound)
		}
	}
}
