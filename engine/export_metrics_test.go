package engine

// UpstreamGaugeCounts returns the process-wide counts behind the upstream connection gauges,
// unclamped: open, then idle (tests read them only while no connection changes state).
func UpstreamGaugeCounts() (open, idle int64) {
	m := newEngineMetrics()
	return m.upstreamOpen.n.Load(), m.upstreamIdle.n.Load()
}

// GaugeCounts returns the process-wide requests in flight and client connections held.
func GaugeCounts() (active, conns int64) {
	m := newEngineMetrics()
	return activeTotal.Load(), int64(m.connsOpen.Get())
}
