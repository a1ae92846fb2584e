//go:build !race

package engine

import "testing"

// The loop's request path behind every client limit allocates nothing once the client's and
// the principal's token buckets exist.
func TestAllocLimitedLoop(t *testing.T) {
	p := newLoopPut(t, 1024)
	p.e.lim = newLimiter(Limits{MaxConns: 100, MaxConnsPerIP: 10,
		RequestsPerSecondPerIP: 1e6, BurstPerIP: 1 << 30, RequestsPerSecondPerPrincipal: 1e6, BurstPerPrincipal: 1 << 30})
	if !p.e.admitConn(p.st) || !p.st.lim.held.Load() {
		t.Fatal("the connection was not admitted")
	}
	for range 3 {
		p.run(t)
	}
	if n := testing.AllocsPerRun(100, func() { p.run(t) }); n != 0 {
		t.Errorf("small signed PutObject behind the limits: %v allocs per request; want 0", n)
	}
	p.e.releaseConn(p.st)
	if p.e.lim.total.Load() != 0 || len(p.e.lim.perIPConns[shardOf("192.0.2.1")].m) != 0 {
		t.Errorf("release left counts: total %d", p.e.lim.total.Load())
	}
}
