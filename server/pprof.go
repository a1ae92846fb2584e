package server

import (
	"bytes"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

var pprofPrefix = []byte("/debug/pprof/")

// servePprof serves Go's profiler (net/http/pprof through fasthttp's adaptor) under /debug/pprof/
// on the admin listener when metrics.pprof (-pprof) is on, and reports whether it answered. Off by
// default (fixed at start, like the rest of metrics): a CPU profile or a trace costs the data plane while it runs, and the heap profile shows
// what the process holds; keep the admin listener on loopback or a private network.
func (s *Server) servePprof(ctx *fasthttp.RequestCtx) bool {
	if !s.pprof || !bytes.HasPrefix(ctx.Path(), pprofPrefix) {
		return false
	}
	pprofhandler.PprofHandler(ctx)
	return true
}
