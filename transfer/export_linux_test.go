package transfer

// Test hooks into the pipe pool (Linux only).

// WaitCounts reports how often splice transfers of m parked waiting for src
// readability (EAGAIN on fill) and dst writability (EAGAIN on drain).
func (m *Mover) WaitCounts() (src, dst int64) {
	return m.pipes.srcWaits.Load(), m.pipes.dstWaits.Load()
}

// PipesCreated reports how many pipes m has created.
func (m *Mover) PipesCreated() int64 { return m.pipes.created.Load() }
