package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/mizuchi/uploadr/engine"
)

// current is the engine the process-wide gauges read (one engine per process in production).
var current atomic.Pointer[engine.Engine]

func init() {
	metrics.NewGauge(`mizuchi_pipes_in_use`, func() float64 {
		if e := current.Load(); e != nil {
			return float64(e.TransferStats().PipesInUse)
		}
		return 0
	})
	metrics.NewGauge(`mizuchi_pipes_idle`, func() float64 {
		if e := current.Load(); e != nil {
			return float64(e.TransferStats().PipesIdle)
		}
		return 0
	})
	metrics.NewGauge(`mizuchi_ready`, func() float64 {
		if e := current.Load(); e != nil && e.Ready() {
			return 1
		}
		return 0
	})
}

// NewLogger builds the process logger from LogConfig.
func NewLogger(c LogConfig, w io.Writer) (*slog.Logger, error) {
	lvl, err := parseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	ho := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return slog.New(slog.NewTextHandler(w, ho)), nil
}

// Server is a running proxy: data plane plus admin listener.
type Server struct {
	cfg    *Config
	log    *slog.Logger
	eng    *engine.Engine
	admin  *fasthttp.Server
	adminL net.Listener
}

// New prepares a server from a normalized, valid configuration.
func New(cfg *Config, log *slog.Logger) (*Server, error) {
	opts, err := cfg.EngineOptions(log)
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(opts)
	if err != nil {
		return nil, err
	}
	return &Server{cfg: cfg, log: log, eng: eng}, nil
}

// Run serves until ctx is cancelled, then drains for the configured drain timeout and returns.
func (s *Server) Run(ctx context.Context) error {
	current.Store(s.eng)
	if s.cfg.Metrics.Enabled == nil || *s.cfg.Metrics.Enabled {
		if err := s.startAdmin(); err != nil {
			return err
		}
		defer func() { _ = s.admin.Shutdown() }()
	}
	errc := make(chan error, 1)
	go func() { errc <- s.eng.Run(context.Background()) }()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	select {
	case err := <-errc:
		return fmt.Errorf("listen %s: %w", s.cfg.Server.Address, err)
	case <-rctx.Done():
		if ctx.Err() == nil {
			return errors.New("engine did not start within 10s")
		}
	case <-s.readyCh():
		s.log.Info("mizuchi-uploadr listening", "address", s.cfg.Server.Address,
			"admin", s.adminAddr(), "buckets", len(s.cfg.Buckets))
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("draining", "timeout", time.Duration(s.cfg.Server.DrainTimeout))
	dctx, dcancel := context.WithTimeout(context.Background(), time.Duration(s.cfg.Server.DrainTimeout))
	defer dcancel()
	if err := s.eng.Shutdown(dctx); err != nil {
		s.log.Warn("shutdown", "err", err)
	}
	err := <-errc
	s.log.Info("stopped")
	return err
}

func (s *Server) readyCh() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		if s.eng.WaitReady(context.Background()) == nil {
			close(ch)
		}
	}()
	return ch
}

func (s *Server) adminAddr() string {
	if s.adminL == nil {
		return ""
	}
	return s.adminL.Addr().String()
}

// AdminAddr returns the admin listener's address once Run started it.
func (s *Server) AdminAddr() string { return s.adminAddr() }

func (s *Server) startAdmin() error {
	l, err := net.Listen("tcp", s.cfg.Metrics.Address)
	if err != nil {
		return fmt.Errorf("admin listener %s: %w", s.cfg.Metrics.Address, err)
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

func (s *Server) handleAdmin(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4")
		metrics.WritePrometheus(ctx, true)
	case "/healthz":
		ctx.SetBodyString("ok\n")
	case "/readyz":
		if s.eng.Ready() {
			ctx.SetBodyString("ready\n")
		} else {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready\n")
		}
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}
