//go:build !race

package server

import (
	"testing"
	"time"
)

// The adapter the engine calls: a request that is not recorded (ratio 0 without a traceparent, or
// an unsampled one) costs no allocation, as with tracing off.
func TestTracerAdapterNotRecordedAllocs(t *testing.T) {
	tr, et, err := newTracer(TracingConfig{Enabled: true, Endpoint: "http://127.0.0.1:9/v1/traces", Timeout: Duration(time.Second)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdownTracer(tr)
	if et.SamplesRoots() {
		t.Fatal("ratio 0 samples roots")
	}
	unsampled := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		if et.StartRequest("PutObject", unsampled, nil, now) != nil || et.StartRequest("PutObject", nil, nil, now) != nil {
			t.Fatal("recorded")
		}
	}); n != 0 {
		t.Errorf("%v allocs per request; want 0", n)
	}
	if s := et.StartRequest("PutObject", []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), nil, now); s == nil {
		t.Error("a sampled parent is not recorded at ratio 0")
	}
}

// Disabled tracing builds no tracer at all: the engine's Options.Tracer stays nil.
func TestTracingOffNoTracer(t *testing.T) {
	tr, et, err := newTracer(TracingConfig{Endpoint: DefaultTracingEndpoint}, nil)
	if tr != nil || et != nil || err != nil {
		t.Fatalf("%v %v %v", tr, et, err)
	}
}
