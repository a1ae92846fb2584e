package engine

import (
	"context"
	"log/slog"
	"net"
)

// Debug-level lines (Options.Logger at slog.LevelDebug): one per upstream connection event and one
// per authentication decision. Every call site checks debugOn (or the pool's debug logger) first,
// so that below debug level nothing is formatted and nothing allocates. Lines name endpoints,
// connections (local port), principals and S3 error codes; never a credential, a signature or a
// header value.

// debugOn reports whether the engine's logger writes debug lines.
func (e *Engine) debugOn() bool { return e.opts.Logger.Enabled(context.Background(), slog.LevelDebug) }

// debugLogger is the logger given to upstream pools: nil below debug level.
func (e *Engine) debugLogger() *slog.Logger {
	if e.debugOn() {
		return e.opts.Logger
	}
	return nil
}

// logConn logs an upstream connection event ("dial", "dial failed", "reuse", "close", "reset")
// of a goroutine-path or loop-owned (path "loop") connection. Call only when p.log is not nil.
func (p *upstreamPool) logConn(event, path string, c net.Conn, err error) {
	args := []any{"event", event, "endpoint", p.ep.addr, "tls", p.ep.tls, "path", path}
	if c != nil {
		if a := c.LocalAddr(); a != nil {
			args = append(args, "local", a.String())
		}
	}
	if err != nil {
		args = append(args, "err", err.Error())
	}
	p.log.Debug("upstream connection", args...)
}

// logAuth logs the authentication decision admit made: the principal and method, or the refusal
// code. Call only when debugOn.
func (e *Engine) logAuth(d *decision, reqID []byte) {
	bucket := "-"
	if d.rt.bucket != nil {
		bucket = d.rt.bucket.name
	}
	switch {
	case d.authErr:
		e.opts.Logger.Debug("auth decision", "request_id", string(reqID), "bucket", bucket, "operation", d.rt.op.String(),
			"decision", "deny", "code", d.err.Code)
	case d.preflight:
		// a CORS preflight: no authentication (cors.go)
	case d.verdict == verdictRefuse:
		// refused before or after authentication for another reason (routing, limits, policy):
		// the access log has it.
	default:
		e.opts.Logger.Debug("auth decision", "request_id", string(reqID), "bucket", bucket, "operation", d.rt.op.String(),
			"decision", "allow", "principal", d.principal.ID, "auth_method", d.principal.Method)
	}
}
