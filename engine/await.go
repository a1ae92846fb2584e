package engine

import (
	"context"

	"github.com/panjf2000/gnet/v2"
)

// The await phase: the bucket's Authorizer decides off the loop while the connection waits. An
// inline request stays in gnet (its head and body are bounded, and stay buffered: nothing is
// discarded until the decision comes back through EventLoop.Execute); a larger one is detached
// first, so its body stays in the kernel's socket buffer (backpressure) while its goroutine waits.

// await parks an inline request in phaseAwait and asks the Authorizer in a goroutine.
func (e *Engine) await(c gnet.Conn, st *connState, buf []byte, d *decision) {
	h := Head{req: st.req, buf: buf}
	in := newAuthzInput(&h, d, st.reqID[:], st.remote)
	authz := d.rt.bucket.authz
	st.toAwait(e.now(), d)
	gen := st.gen.Load()
	go func() {
		s3err := e.authorize(authz, in)
		e.onLoop(st, c, gen, func(c gnet.Conn) {
			if st.phase.Load() == phaseAwait {
				e.resume(c, st, s3err)
			}
		})
	}()
}

// resume continues a parked request where admit stopped, on its loop.
func (e *Engine) resume(c gnet.Conn, st *connState, s3err *s3Error) {
	buf, _ := c.Peek(-1)
	d := st.pending
	st.pending = decision{}
	if s3err != nil {
		d = refusal(d, s3err)
	} else {
		d.verdict = d.next
	}
	action, done := e.act(c, st, buf, &d)
	if !done {
		action = e.process(c, st)
	}
	if action == gnet.Close {
		_ = c.Close()
	}
}

// ErrAuthorizeTimeout is the answer to a decision that did not come in time (503 SlowDown). An
// Authorizer with its own, shorter deadline returns it too, and the engine counts it as a timeout.
var ErrAuthorizeTimeout = errAuthorizeTimeout

// authorizeOnce asks a for a decision within Options.AuthorizeTimeout (authorize, trace.go, wraps
// it in a span). A decision that does not
// come in time is not waited for (the Authorizer's goroutine is left to finish on its own): the
// client gets 503 SlowDown.
func (e *Engine) authorizeOnce(a Authorizer, in *AuthzInput) *s3Error {
	ctx, cancel := context.WithTimeout(e.killCtx, e.opts.AuthorizeTimeout)
	defer cancel()
	ch := make(chan *s3Error, 1)
	go func() { ch <- a.Authorize(ctx, in) }()
	select {
	case s3err := <-ch:
		if s3err == errAuthorizeTimeout {
			break
		}
		if s3err != nil {
			e.metrics.authzDecision("deny")
			return s3err
		}
		if ctx.Err() == nil {
			e.metrics.authzDecision("allow")
			return nil
		}
	case <-ctx.Done():
	}
	e.metrics.authzDecision("timeout")
	return errAuthorizeTimeout
}
