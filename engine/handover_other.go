//go:build !linux

package engine

// closeListenersForDrain does nothing on this platform: the listeners close when the engine
// stops (see handover_linux.go).
func (e *Engine) closeListenersForDrain() {}
