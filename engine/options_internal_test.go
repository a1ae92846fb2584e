package engine

import (
	"runtime"
	"testing"
)

// The default number of event loops follows GOMAXPROCS — the CPUs the process may use: the
// GOMAXPROCS variable, or a container's CPU limit — not the machine's CPU count: in a container
// limited to 2 CPUs on a 64-CPU host, 64 loops would contend for 2 CPUs.
func TestDefaultEventLoopsFollowGOMAXPROCS(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Fatalf("this test needs 2 CPUs to tell GOMAXPROCS from the CPU count; the machine has %d", runtime.NumCPU())
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	o := &Options{}
	o.withDefaults()
	if o.EventLoops != 1 {
		t.Errorf("EventLoops defaulted to %d with GOMAXPROCS 1 (%d CPUs); want 1", o.EventLoops, runtime.NumCPU())
	}
	o = &Options{EventLoops: 3}
	o.withDefaults()
	if o.EventLoops != 3 {
		t.Errorf("EventLoops 3 became %d", o.EventLoops)
	}
}
