//go:build !linux

package engine

import (
	"os"

	"github.com/panjf2000/gnet/v2"
)

// loopPipe: no splice(2) here; streamed bodies are copied.
type loopPipe struct{}

func newLoopPipe() *loopPipe { return nil }

func (p *loopPipe) close() {}

func (e *Engine) spliceBody(gnet.Conn, *connState, *loopUp, *job) bool { return true }

func writeHalfClosed(fd int, b []byte) {
	f := os.NewFile(uintptr(fd), "") // an fd on unix, a handle on windows
	_, _ = f.Write(b)
	_ = f.Close()
}
