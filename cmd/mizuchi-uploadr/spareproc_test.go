package main

import (
	"runtime"
	"testing"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// spareProc gives the process one P more than its event loops when they would hold every P, and
// leaves GOMAXPROCS alone when the environment sets it or the loops leave a P free.
func TestSpareProc(t *testing.T) {
	unset := func(string) (string, bool) { return "", false }
	set := func(k string) (string, bool) { return "2", k == "GOMAXPROCS" }
	empty := func(string) (string, bool) { return "", true } // the runtime ignores an empty GOMAXPROCS too
	for _, tc := range []struct {
		loops, procs int
		env          func(string) (string, bool)
		want         int
		change       bool
	}{
		{2, 2, unset, 3, true},  // the default: one loop per P
		{4, 2, unset, 5, true},  // more loops than Ps
		{1, 2, unset, 2, false}, // a P is free already
		{2, 2, set, 2, false},   // the operator decides
		{2, 2, empty, 3, true},
	} {
		if n, ok := spareProc(tc.loops, tc.procs, tc.env); n != tc.want || ok != tc.change {
			t.Errorf("spareProc(%d loops, GOMAXPROCS %d) = %d, %v; want %d, %v", tc.loops, tc.procs, n, ok, tc.want, tc.change)
		}
	}
}

// The running proxy has one P more than its event loops (go_gomaxprocs on /metrics), and exactly
// what the GOMAXPROCS variable says when it is set.
func TestProcessGOMAXPROCS(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "procs")
	want := runtime.NumCPU() // the config runs 2 event loops
	if want <= 2 {
		want = 3
	}
	t.Setenv("GOMAXPROCS", "") // as unset, for this process's children
	r := startBinary(t, up, "procs", nil, nil)
	if got := r.scrape(t, "go_gomaxprocs"); got != float64(want) {
		t.Errorf("go_gomaxprocs %v with 2 event loops on %d CPUs; want %d", got, runtime.NumCPU(), want)
	}
	t.Setenv("GOMAXPROCS", "1") // inherited by the next process
	r = startBinary(t, up, "procs", nil, nil)
	if got := r.scrape(t, "go_gomaxprocs"); got != 1 {
		t.Errorf("go_gomaxprocs %v with GOMAXPROCS=1; want 1", got)
	}
}

// gomaxprocsOf reads go_gomaxprocs from the /metrics of the proxy whose admin listener is admin.
func gomaxprocsOf(t *testing.T, admin string) float64 {
	t.Helper()
	r := &running{admin: admin}
	return r.scrape(t, "go_gomaxprocs")
}
