package tracing

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// exporter sends spans as OTLP/HTTP with the JSON encoding (OpenTelemetry Protocol specification,
// "OTLP/HTTP": POST <endpoint>, Content-Type application/json, an ExportTraceServiceRequest in the
// protobuf JSON mapping, trace and span ids as hex). It is hand-rolled on net/http instead of the
// upstream otlptracehttp exporter because that one links gRPC and the protobuf runtime: 13 MB more
// binary and ~6 MiB more resident memory in every proxy, tracing on or off (measured: the 4 KiB
// benchmark's peak RSS went from 13.5 to 19.5 MiB). A failed export is retried, as the
// specification asks, on 429, 502, 503, 504 and connection errors, with doubling back-off, within
// 3×Timeout.
type exporter struct {
	url     string
	headers map[string]string
	timeout time.Duration
	client  *http.Client
}

func newExporter(c *Config) *exporter {
	return &exporter{url: c.endpointURL(), headers: c.Headers, timeout: c.Timeout,
		client: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConns: 2,
			IdleConnTimeout: time.Minute, TLSHandshakeTimeout: c.Timeout}}}
}

// errExport is a failed export (the collector's status, or the connection's error).
var errExport = errors.New("tracing: OTLP export failed")

// ExportSpans sends spans in one request, retried as the type comment says.
func (x *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	body := appendRequest(make([]byte, 0, 512*len(spans)), spans)
	deadline := time.Now().Add(3 * x.timeout)
	wait := x.timeout / 10
	for {
		retry, err := x.post(ctx, body)
		if err == nil || !retry || time.Now().Add(wait).After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, x.timeout)
	}
}

// post sends one export request; retry reports whether a failure may succeed later.
func (x *exporter) post(ctx context.Context, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, x.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.url, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%w: %v", errExport, err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range x.headers {
		req.Header.Set(k, v)
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("%w: %v", errExport, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == 429 || resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504:
		return true, fmt.Errorf("%w: %s", errExport, resp.Status)
	}
	return false, fmt.Errorf("%w: %s", errExport, resp.Status)
}

// Shutdown closes the idle connections to the collector.
func (x *exporter) Shutdown(context.Context) error {
	x.client.CloseIdleConnections()
	return nil
}

// appendRequest appends the ExportTraceServiceRequest for spans in the protobuf JSON mapping (only
// what the proxy's spans use): one resource (the tracer provider's: the first span's), spans grouped
// by instrumentation scope, trace and span ids in hex, int64 as decimal strings, kinds and status
// codes as numbers. Written by hand: encoding/json's reflection was a third of the export's cost.
func appendRequest(dst []byte, spans []sdktrace.ReadOnlySpan) []byte {
	dst = append(dst, `{"resourceSpans":[{"resource":{"attributes":`...)
	dst = appendAttrs(dst, spans[0].Resource().Attributes())
	dst = append(dst, `},"scopeSpans":[`...)
	done := make([]bool, len(spans))
	first := true
	for i, s := range spans {
		if done[i] {
			continue
		}
		sc := s.InstrumentationScope()
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, `{"scope":{"name":`...)
		dst = appendString(dst, sc.Name)
		if sc.Version != "" {
			dst = append(dst, `,"version":`...)
			dst = appendString(dst, sc.Version)
		}
		dst = append(dst, `},"spans":[`...)
		n := 0
		for j := i; j < len(spans); j++ {
			if done[j] || spans[j].InstrumentationScope().Name != sc.Name {
				continue
			}
			done[j] = true
			if n > 0 {
				dst = append(dst, ',')
			}
			n++
			dst = appendSpan(dst, spans[j])
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}]}"...)
}

func appendSpan(dst []byte, s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	dst = append(dst, `{"traceId":"`...)
	dst = hex.AppendEncode(dst, tid[:])
	dst = append(dst, `","spanId":"`...)
	dst = hex.AppendEncode(dst, sid[:])
	dst = append(dst, '"')
	if p := s.Parent(); p.SpanID().IsValid() {
		psid := p.SpanID()
		dst = append(dst, `,"parentSpanId":"`...)
		dst = hex.AppendEncode(dst, psid[:])
		dst = append(dst, '"')
	}
	if ts := sc.TraceState().String(); ts != "" {
		dst = append(dst, `,"traceState":`...)
		dst = appendString(dst, ts)
	}
	dst = append(dst, `,"name":`...)
	dst = appendString(dst, s.Name())
	dst = append(dst, `,"kind":`...)
	dst = strconv.AppendInt(dst, int64(s.SpanKind()), 10)
	dst = append(dst, `,"startTimeUnixNano":"`...)
	dst = strconv.AppendInt(dst, s.StartTime().UnixNano(), 10)
	dst = append(dst, `","endTimeUnixNano":"`...)
	dst = strconv.AppendInt(dst, s.EndTime().UnixNano(), 10)
	dst = append(dst, `","attributes":`...)
	dst = appendAttrs(dst, s.Attributes())
	dst = append(dst, `,"status":{`...)
	switch st := s.Status(); st.Code {
	case codes.Error: // OTLP: 0 unset, 1 ok, 2 error
		dst = append(dst, `"code":2,"message":`...)
		dst = appendString(dst, st.Description)
	case codes.Ok:
		dst = append(dst, `"code":1`...)
	}
	return append(dst, "}}"...)
}

func appendAttrs(dst []byte, kvs []attribute.KeyValue) []byte {
	dst = append(dst, '[')
	for i, kv := range kvs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = appendString(dst, string(kv.Key))
		dst = append(dst, `,"value":{`...)
		switch kv.Value.Type() {
		case attribute.BOOL:
			dst = append(dst, `"boolValue":`...)
			dst = strconv.AppendBool(dst, kv.Value.AsBool())
		case attribute.INT64:
			dst = append(dst, `"intValue":"`...)
			dst = strconv.AppendInt(dst, kv.Value.AsInt64(), 10)
			dst = append(dst, '"')
		case attribute.FLOAT64:
			if f := kv.Value.AsFloat64(); !math.IsNaN(f) && !math.IsInf(f, 0) {
				dst = append(dst, `"doubleValue":`...)
				dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
				break
			}
			fallthrough
		default:
			dst = append(dst, `"stringValue":`...)
			dst = appendString(dst, kv.Value.String()) // strings; slices as their text form
		}
		dst = append(dst, "}}"...)
	}
	return append(dst, ']')
}

// appendString appends s as a JSON string. Printable ASCII is copied as is (but " and \); anything
// else goes through encoding/json, which escapes control characters and replaces invalid UTF-8.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// The ExportTraceServiceRequest in the protobuf JSON mapping, as types: what the tests decode the
// export with.
type (
	otlpRequest struct {
		ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
	}
	otlpResourceSpans struct {
		Resource   otlpResource     `json:"resource"`
		ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
	}
	otlpResource struct {
		Attributes []otlpKeyValue `json:"attributes"`
	}
	otlpScopeSpans struct {
		Scope otlpScope  `json:"scope"`
		Spans []otlpSpan `json:"spans"`
	}
	otlpScope struct {
		Name    string `json:"name"`
		Version string `json:"version,omitempty"`
	}
	otlpSpan struct {
		TraceID      string         `json:"traceId"`
		SpanID       string         `json:"spanId"`
		ParentSpanID string         `json:"parentSpanId,omitempty"`
		TraceState   string         `json:"traceState,omitempty"`
		Name         string         `json:"name"`
		Kind         int            `json:"kind"`
		Start        string         `json:"startTimeUnixNano"`
		End          string         `json:"endTimeUnixNano"`
		Attributes   []otlpKeyValue `json:"attributes,omitempty"`
		Status       otlpStatus     `json:"status"`
	}
	otlpStatus struct {
		Code    int    `json:"code,omitempty"` // 0 unset, 1 ok, 2 error
		Message string `json:"message,omitempty"`
	}
	otlpKeyValue struct {
		Key   string       `json:"key"`
		Value otlpAnyValue `json:"value"`
	}
	otlpAnyValue struct {
		String *string  `json:"stringValue,omitempty"`
		Int    *string  `json:"intValue,omitempty"` // int64 as a decimal string (protobuf JSON mapping)
		Bool   *bool    `json:"boolValue,omitempty"`
		Double *float64 `json:"doubleValue,omitempty"`
	}
)
