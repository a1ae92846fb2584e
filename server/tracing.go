package server

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/buildinfo"
	"github.com/mizuchi/uploadr/internal/exposition"
	"github.com/mizuchi/uploadr/tracing"
)

// Tracing defaults (README "Tracing").
const (
	DefaultTracingEndpoint = "http://127.0.0.1:4318/v1/traces"
	DefaultTracingService  = "mizuchi-uploadr"
	DefaultTracingTimeout  = 10 * time.Second
	DefaultTracingQueue    = 4096
	// tracingFlushTimeout bounds the export of the spans still queued when the server stops.
	tracingFlushTimeout = 5 * time.Second
)

// TracingConfig is tracing: OpenTelemetry spans exported with OTLP over HTTP (package tracing).
// Changes take effect at the next start (SIGHUP keeps the running tracer).
type TracingConfig struct {
	Enabled bool `yaml:"enabled"` // default false: no tracing work at all
	// OTLP/HTTP traces URL; one without a path gets /v1/traces. Default http://127.0.0.1:4318/v1/traces.
	Endpoint string `yaml:"endpoint"`
	// Fraction of requests without a sampled traceparent that are recorded, 0..1. Default 0: only
	// requests whose client sent a sampled W3C traceparent are recorded.
	SampleRatio float64 `yaml:"sample_ratio"`
	ServiceName string  `yaml:"service_name"` // resource service.name; default mizuchi-uploadr
	// Headers sent with each export (a hosted backend's key: use ${ENV} expansion, never the value).
	Headers   map[string]string `yaml:"headers"`
	Timeout   Duration          `yaml:"timeout"`    // one export request; default 10s
	QueueSize int               `yaml:"queue_size"` // spans waiting for export; more are dropped; default 4096
	// RecordKeys adds the decoded object key to request spans (aws.s3.key); default false.
	RecordKeys bool `yaml:"record_keys"`
}

func (t *TracingConfig) normalize() {
	if t.Endpoint == "" {
		t.Endpoint = DefaultTracingEndpoint
	}
	if t.ServiceName == "" {
		t.ServiceName = DefaultTracingService
	}
	setDur(&t.Timeout, DefaultTracingTimeout)
	setInt(&t.QueueSize, DefaultTracingQueue)
}

// leaf converts tracing for package tracing; failed exports are counted and logged on log (at most
// once a minute: a collector that is down must not flood the log), when log is not nil.
func (t *TracingConfig) leaf(log *slog.Logger) tracing.Config {
	var lastLog atomic.Int64
	return tracing.Config{Endpoint: t.Endpoint, Headers: t.Headers, Timeout: time.Duration(t.Timeout),
		SampleRatio: t.SampleRatio, ServiceName: t.ServiceName, ServiceVersion: buildinfo.Version,
		QueueSize:  t.QueueSize,
		OnExported: func(n int) { tracingExported.Add(n) }, OnDropped: func(n int) { tracingDropped.Add(n) },
		OnExportError: func(err error) {
			tracingExportErrors.Inc()
			now, last := time.Now().UnixNano(), lastLog.Load()
			if log != nil && now-last > int64(time.Minute) && lastLog.CompareAndSwap(last, now) {
				log.Warn("tracing: OTLP export failed; its spans are dropped (mizuchi_tracing_spans_dropped_total)",
					"endpoint", t.Endpoint, "err", err)
			}
		}}
}

// validate checks tracing (whether enabled or not, so -check finds a bad endpoint before it is
// switched on); each problem names its key.
func (t *TracingConfig) validate() []error {
	c := t.leaf(nil)
	var errs []error
	if c.Endpoint != "" {
		if err := (&tracing.Config{Endpoint: c.Endpoint}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("tracing.endpoint %q: want an http:// or https:// URL with a host (an OTLP/HTTP traces URL such as %s)", t.Endpoint, DefaultTracingEndpoint))
		}
	}
	if err := (&tracing.Config{Endpoint: "http://x", SampleRatio: t.SampleRatio}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("tracing.sample_ratio %v: want 0..1", t.SampleRatio))
	}
	if t.Timeout < 0 {
		errs = append(errs, fmt.Errorf("tracing.timeout %v: must be >= 0", time.Duration(t.Timeout)))
	}
	if t.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("tracing.queue_size %d: must be >= 0", t.QueueSize))
	}
	return errs
}

// The tracing metrics (README "Tracing").
var (
	tracingExported     = metrics.GetOrCreateCounter(`mizuchi_tracing_spans_exported_total`)
	tracingDropped      = metrics.GetOrCreateCounter(`mizuchi_tracing_spans_dropped_total`)
	tracingExportErrors = metrics.GetOrCreateCounter(`mizuchi_tracing_export_errors_total`)
)

func init() {
	exposition.Help(`mizuchi_tracing_spans_exported_total`, "Spans exported to the OTLP endpoint (tracing).")
	exposition.Help(`mizuchi_tracing_spans_dropped_total`, "Spans lost: the export queue was full, or their export failed after retries.")
	exposition.Help(`mizuchi_tracing_export_errors_total`, "OTLP export requests that failed after retries (their spans are counted as dropped).")
}

// newTracer builds the engine's Tracer from tracing; nil when tracing is off. log receives failed
// exports (at most once a minute); nil: none.
func newTracer(t TracingConfig, log *slog.Logger) (*tracing.Tracer, engine.Tracer, error) {
	if !t.Enabled {
		return nil, nil, nil
	}
	tr, err := tracing.New(t.leaf(log))
	if err != nil {
		return nil, nil, err
	}
	return tr, tracerAdapter{t: tr, roots: t.SampleRatio > 0}, nil
}

// shutdownTracer exports the queued spans (bounded by tracingFlushTimeout) and stops the exporter.
func shutdownTracer(tr *tracing.Tracer) error {
	if tr == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
	defer cancel()
	return tr.Shutdown(ctx)
}

// tracerAdapter is engine.Tracer over package tracing.
type tracerAdapter struct {
	t     *tracing.Tracer
	roots bool
}

func (a tracerAdapter) SamplesRoots() bool { return a.roots }

func (a tracerAdapter) StartRequest(name string, traceparent, tracestate []byte, start time.Time) engine.Span {
	s := a.t.Start(name, traceparent, tracestate, start)
	if s == nil {
		return nil // a nil interface, not a nil *Span in one
	}
	return spanAdapter{s}
}

// spanAdapter is engine.Span over *tracing.Span (one pointer: converting it allocates nothing).
type spanAdapter struct{ s *tracing.Span }

func (a spanAdapter) Child(name string, start time.Time, client bool) engine.Span {
	return spanAdapter{a.s.Child(name, start, client)}
}
func (a spanAdapter) SetString(k, v string)               { a.s.SetString(k, v) }
func (a spanAdapter) SetInt(k string, v int64)            { a.s.SetInt(k, v) }
func (a spanAdapter) SetError(d string)                   { a.s.SetError(d) }
func (a spanAdapter) End(t time.Time)                     { a.s.End(t) }
func (a spanAdapter) AppendTraceparent(dst []byte) []byte { return a.s.AppendTraceparent(dst) }
func (a spanAdapter) AppendTracestate(dst []byte) []byte  { return a.s.AppendTracestate(dst) }

// tracingFlags are the tracing flags (each overrides its tracing key when given).
type tracingFlags struct {
	TracingConfig
	enabled bool
}

// registerTracingFlags defines the tracing flags into f.
func registerTracingFlags(fs *flag.FlagSet, f *tracingFlags) {
	fs.BoolVar(&f.enabled, "tracing", false, "record OpenTelemetry spans and export them with OTLP/HTTP to -tracing-endpoint (tracing.enabled)")
	fs.StringVar(&f.Endpoint, "tracing-endpoint", DefaultTracingEndpoint, "OTLP/HTTP traces `URL`; one without a path gets /v1/traces (tracing.endpoint)")
	fs.Float64Var(&f.SampleRatio, "tracing-sample-ratio", 0, "`fraction` 0..1 of requests without a sampled traceparent that are recorded; 0 = only those whose client asks (tracing.sample_ratio)")
	fs.StringVar(&f.ServiceName, "tracing-service-name", DefaultTracingService, "service.`name` of the spans (tracing.service_name)")
	fs.DurationVar((*time.Duration)(&f.Timeout), "tracing-timeout", DefaultTracingTimeout, "`duration` one OTLP export request may take (tracing.timeout)")
	fs.IntVar(&f.QueueSize, "tracing-queue-size", DefaultTracingQueue, "`spans` waiting for export; more are dropped and counted (tracing.queue_size)")
	fs.BoolVar(&f.RecordKeys, "tracing-record-keys", false, "add the decoded object key to request spans (tracing.record_keys)")
}

// applyTracingFlag copies the explicitly given tracing flag name from f into c.
func applyTracingFlag(name string, f *tracingFlags, c *TracingConfig) {
	switch name {
	case "tracing":
		c.Enabled = f.enabled
	case "tracing-endpoint":
		c.Endpoint = f.Endpoint
	case "tracing-sample-ratio":
		c.SampleRatio = f.SampleRatio
	case "tracing-service-name":
		c.ServiceName = f.ServiceName
	case "tracing-timeout":
		c.Timeout = f.Timeout
	case "tracing-queue-size":
		c.QueueSize = f.QueueSize
	case "tracing-record-keys":
		c.RecordKeys = f.RecordKeys
	}
}
