//go:build !race

package engine

import (
	"testing"
	"time"
)

// Tracing costs nothing on the in-loop path when it is off (Options.Tracer nil, the default) and
// when a Tracer does not record the request (ratio 0, or not drawn): the hooks are nil checks, a
// header lookup and a clock read.

func TestAllocTracingOff(t *testing.T) {
	p := newLoopPut(t, 1024)
	if p.e.opts.Tracer != nil {
		t.Fatal("tracing is on by default")
	}
	for range 3 {
		p.run(t)
	}
	if n := testing.AllocsPerRun(100, func() { p.run(t) }); n != 0 {
		t.Errorf("tracing off: %v allocs per request; want 0", n)
	}
}

func TestAllocTracingNotRecorded(t *testing.T) {
	p := newLoopPut(t, 1024)
	tr := &fakeTracer{roots: true, skip: true}
	p.e.opts.Tracer = tr
	for range 3 {
		p.run(t)
	}
	if n := testing.AllocsPerRun(100, func() { p.run(t) }); n != 0 {
		t.Errorf("tracing on, request not recorded: %v allocs per request; want 0", n)
	}
	if tr.asked.Load() == 0 {
		t.Fatal("the Tracer was never asked: the test does not exercise the hooks")
	}
	if len(tr.ended()) != 0 {
		t.Fatalf("spans recorded: %v", tr.ended())
	}
	_ = time.Now
}
