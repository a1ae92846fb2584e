// Package tracing records OpenTelemetry spans and exports them with OTLP over HTTP (JSON encoding,
// otlpjson.go): the SDK setup (tracer provider, resource), the exporter, the sampling decision, and
// a bounded export queue whose losses are counted. It imports no project package; engine reaches it through an adapter in
// server.
//
// Sampling is ParentBased(TraceIDRatio(SampleRatio)), decided before the SDK is asked so that a
// request that is not recorded costs no allocation: a request whose W3C traceparent is valid
// follows its sampled flag (a sampled parent is recorded even at ratio 0, an unsampled one never);
// one without a (valid) traceparent is recorded with probability SampleRatio.
//
// Spans that end go into a queue of QueueSize spans, exported in batches by one goroutine; when
// the queue is full a span is dropped and counted (OnDropped), so a slow or absent collector never
// blocks a request. Shutdown exports what is queued.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a Tracer. Zero values take the defaults named on each field.
type Config struct {
	// Endpoint is the OTLP/HTTP traces URL (http or https). A URL without a path gets the
	// standard /v1/traces.
	Endpoint string
	// Headers are sent with every export request (an API key of a hosted backend).
	Headers map[string]string
	// Timeout bounds one export request (default 10s); a failed export is retried until 3×Timeout.
	Timeout time.Duration
	// SampleRatio is the fraction of requests without a sampled parent that are recorded, 0..1.
	SampleRatio float64
	// ServiceName is the resource's service.name (default "mizuchi-uploadr").
	ServiceName string
	// ServiceVersion is the resource's service.version; empty leaves it out.
	ServiceVersion string
	// QueueSize bounds the spans waiting for export (default 4096), besides the batch (BatchSize) being
	// exported; more are dropped.
	QueueSize int
	// BatchSize is the most spans one export request carries (default 512).
	BatchSize int
	// BatchInterval is how long a span may wait for its batch to fill (default 1s).
	BatchInterval time.Duration

	// OnExported, OnDropped and OnExportError, when set, count spans exported, spans lost (queue
	// full, or their export failed) and failed export requests. Called from any goroutine.
	OnExported    func(spans int)
	OnDropped     func(spans int)
	OnExportError func(err error)
}

// Errors of Validate.
var (
	ErrEndpoint    = errors.New("tracing: endpoint must be an http:// or https:// URL with a host")
	ErrSampleRatio = errors.New("tracing: sample_ratio must be between 0 and 1")
	ErrNegative    = errors.New("tracing: timeout, queue_size, batch_size and batch_interval must not be negative")
)

// Validate checks c without connecting anywhere.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w (got %q)", ErrEndpoint, c.Endpoint)
	}
	if math.IsNaN(c.SampleRatio) || c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("%w (got %v)", ErrSampleRatio, c.SampleRatio)
	}
	if c.Timeout < 0 || c.QueueSize < 0 || c.BatchSize < 0 || c.BatchInterval < 0 {
		return ErrNegative
	}
	return nil
}

// endpointURL is the export URL: c.Endpoint, with /v1/traces when it has no path.
func (c *Config) endpointURL() string {
	u, _ := url.Parse(c.Endpoint)
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String()
}

// Tracer starts request spans. Safe for concurrent use.
type Tracer struct {
	tp    *sdktrace.TracerProvider
	tr    trace.Tracer
	q     *queue
	bound uint64 // a root is recorded when a random 63-bit number is below bound
	all   bool   // SampleRatio 1
}

// New sets up the SDK and the exporter; nothing connects until the first export.
func New(c Config) (*Tracer, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.ServiceName == "" {
		c.ServiceName = "mizuchi-uploadr"
	}
	exp := newExporter(&c) // otlpjson.go
	attrs := []attribute.KeyValue{attribute.String("service.name", c.ServiceName)}
	if c.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", c.ServiceVersion))
	}
	q := newQueue(exp, &c)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
		// The decision is made in Start (see the package comment); what reaches the SDK is recorded.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithSpanProcessor(q))
	t := &Tracer{tp: tp, tr: tp.Tracer("github.com/mizuchi/uploadr"), q: q}
	switch {
	case c.SampleRatio >= 1:
		t.all = true
	case c.SampleRatio > 0:
		// As sdktrace.TraceIDRatioBased: a 63-bit random number below ratio × 2^63.
		t.bound = uint64(c.SampleRatio * (1 << 63))
	}
	return t, nil
}

// Shutdown exports the queued spans (within ctx) and stops the exporter. Spans ended later are
// dropped.
func (t *Tracer) Shutdown(ctx context.Context) error { return t.tp.Shutdown(ctx) }

// ForceFlush exports the queued spans now (within ctx).
func (t *Tracer) ForceFlush(ctx context.Context) error { return t.tp.ForceFlush(ctx) }

// Start starts a server span named name at start for a request that carried the W3C headers
// traceparent and tracestate (nil when absent), or returns nil when the request is not recorded:
// then it has allocated nothing. A malformed traceparent is ignored (the request is a root).
func (t *Tracer) Start(name string, traceparent, tracestate []byte, start time.Time) *Span {
	sc, ok := parseTraceparent(traceparent)
	switch {
	case ok && !sc.IsSampled():
		return nil
	case !ok && !t.all && (t.bound == 0 || rand.Uint64()>>1 >= t.bound):
		return nil
	}
	ctx := context.Background()
	if ok {
		if len(tracestate) > 0 {
			if ts, err := trace.ParseTraceState(string(tracestate)); err == nil {
				sc = sc.WithTraceState(ts)
			}
		}
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	ctx, s := t.tr.Start(ctx, name, trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer))
	return &Span{ctx: ctx, s: s, tr: t.tr}
}

// Span is a recorded span. Its methods are safe for concurrent use (the SDK's span is).
type Span struct {
	ctx context.Context
	s   trace.Span
	tr  trace.Tracer
}

// Child starts a child span named name at start (zero: now). client marks a request the proxy
// sends (an upstream round trip) rather than work inside it.
func (s *Span) Child(name string, start time.Time, client bool) *Span {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	if client {
		opts[0] = trace.WithSpanKind(trace.SpanKindClient)
	}
	if !start.IsZero() {
		opts = append(opts, trace.WithTimestamp(start))
	}
	ctx, c := s.tr.Start(s.ctx, name, opts...)
	return &Span{ctx: ctx, s: c, tr: s.tr}
}

// SetString sets a string attribute.
func (s *Span) SetString(key, value string) { s.s.SetAttributes(attribute.String(key, value)) }

// SetInt sets an integer attribute.
func (s *Span) SetInt(key string, value int64) { s.s.SetAttributes(attribute.Int64(key, value)) }

// SetError marks the span failed, with a description (an S3 error code, "502 from upstream").
func (s *Span) SetError(description string) { s.s.SetStatus(codes.Error, description) }

// End ends the span at t (zero: now).
func (s *Span) End(t time.Time) {
	if t.IsZero() {
		s.s.End()
		return
	}
	s.s.End(trace.WithTimestamp(t))
}

// TraceID is the span's trace id in hex.
func (s *Span) TraceID() string { return s.s.SpanContext().TraceID().String() }

// AppendTraceparent appends the W3C traceparent value naming this span as the parent:
// 00-<trace id>-<span id>-<flags>, 55 bytes.
func (s *Span) AppendTraceparent(dst []byte) []byte {
	sc := s.s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	dst = append(dst, "00-"...)
	dst = appendHex(dst, tid[:])
	dst = append(dst, '-')
	dst = appendHex(dst, sid[:])
	dst = append(dst, '-')
	return appendHex(dst, []byte{byte(sc.TraceFlags())})
}

// AppendTracestate appends the W3C tracestate the span carries (its parent's); nothing when empty.
func (s *Span) AppendTracestate(dst []byte) []byte {
	return append(dst, s.s.SpanContext().TraceState().String()...)
}

const hexDigits = "0123456789abcdef"

func appendHex(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

// parseTraceparent parses a W3C traceparent (Trace Context Level 1, section 3.2):
//
//	version "-" trace-id "-" parent-id "-" trace-flags
//	version = 2HEXDIGLC (not ff); trace-id = 32HEXDIGLC (not all zero);
//	parent-id = 16HEXDIGLC (not all zero); trace-flags = 2HEXDIGLC
//
// A future version may append "-" and more fields; version 00 must be exactly 55 bytes. It does
// not allocate.
func parseTraceparent(v []byte) (trace.SpanContext, bool) {
	if len(v) < 55 || len(v) > 55 && (v[55] != '-' || v[0] == '0' && v[1] == '0') {
		return trace.SpanContext{}, false
	}
	var ver [1]byte
	var tid trace.TraceID
	var sid trace.SpanID
	var flags [1]byte
	if !hexInto(ver[:], v[0:2]) || ver[0] == 0xff || v[2] != '-' || !hexInto(tid[:], v[3:35]) ||
		v[35] != '-' || !hexInto(sid[:], v[36:52]) || v[52] != '-' || !hexInto(flags[:], v[53:55]) ||
		!tid.IsValid() || !sid.IsValid() {
		return trace.SpanContext{}, false
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid,
		TraceFlags: trace.TraceFlags(flags[0]) & trace.FlagsSampled, Remote: true}), true
}

// hexInto decodes lower-case hex src into dst (len(src) == 2*len(dst)).
func hexInto(dst, src []byte) bool {
	for i := range dst {
		hi, ok1 := unhex(src[2*i])
		lo, ok2 := unhex(src[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
