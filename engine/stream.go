package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/transfer"
)

// exchangeStreaming sends the head and the buffered prefix upstream, moves the rest of the body from
// the client connection, and relays the response. It watches the upstream while the body moves: an
// early response (412, 403, 400 …) stops the transfer, is relayed, and both connections close. reuse
// reports whether the client connection may serve another request.
func (e *Engine) exchangeStreaming(j *job, client net.Conn) (status int, reuse bool, res transfer.Result) {
	u, s3err := e.sendHead(j, j.out[:j.headLen])
	if s3err != nil {
		return e.answer(j, client, s3err), false, res
	}
	if j.expect100 && j.remaining > 0 && !writeAll(client, continueResponse, e.opts.BodyStallTimeout) {
		u.reset()
		return 499, false, res
	}
	w := watchResponse(e.killCtx, u, e.limits)
	pre := j.out[j.headLen:]
	if cap(j.out) > 16<<10 {
		// The prefix (up to the event loop's read buffer) is written first and not needed after:
		// let the collector take it while the rest of the body moves, instead of holding ~64 KiB
		// per upload in flight (the live heap, and the GC's headroom over it, at 1,000 uploads).
		j.out = nil
	}
	res, err := e.moveBody(w.ctx, u, client, pre, j.remaining, true, nil)
	if err != nil {
		if a, ok := e.bodyFailed(u, w, err); !ok {
			return e.answer(j, client, a), false, res
		}
		// The upstream answered early or stopped reading: relay its answer (below).
	} else {
		_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
	}
	status, reuse = e.relayAnswer(j, client, u, w, err == nil)
	return status, reuse, res
}

// relayAnswer waits for the upstream's answer to a request whose body was sent (bodyDone) or cut
// short because the upstream answered early, relays it to the client and settles the upstream
// connection. reuse reports whether the client connection may serve another request.
func (e *Engine) relayAnswer(j *job, client net.Conn, u *upConn, w *watcher, bodyDone bool) (status int, reuse bool) {
	a := <-w.done
	w.cancel()
	if a.err != nil {
		if bodyDone || !a.started {
			u.reset()
		} else {
			u.close()
		}
		e.metrics.upstreamErrors.Inc()
		if isTimeout(a.err) {
			return e.answer(j, client, errUpstreamTimeout), false
		}
		return e.answer(j, client, errBadGateway), false
	}
	closeClient := !bodyDone || !j.keepAlive
	status = e.relayResponse(j, u, &a.resp, closeClient)
	u.release(bodyDone && a.resp.keepAlive)
	if !writeAll(client, j.resp, e.opts.BodyStallTimeout) {
		return status, false
	}
	return status, !closeClient
}

// answer writes an S3 error to a moved client (the connection then closes) and returns its status.
// A client that is gone gets nothing and counts as 499.
func (e *Engine) answer(j *job, client net.Conn, s3err *s3Error) int {
	j.trace.refused(s3err)
	e.errorResponse(j, s3err, true)
	if !writeAll(client, j.resp, e.opts.BodyStallTimeout) && s3err == errIncompleteBody {
		return 499
	}
	return s3err.Status
}

// upAnswer is the upstream's answer to one request, read by a watcher while the body moves.
type upAnswer struct {
	resp    upResponse
	started bool // a response byte arrived: the request must not be retried
	err     error
}

// watcher reads the upstream's answer while a body moves; ctx ends when an answer (early or not)
// starts, which stops the body transfer.
type watcher struct {
	ctx    context.Context
	cancel context.CancelFunc
	done   chan upAnswer
}

func watchResponse(parent context.Context, u *upConn, lim httpparse.Limits) *watcher {
	ctx, cancel := context.WithCancel(parent)
	w := &watcher{ctx: ctx, cancel: cancel, done: make(chan upAnswer, 1)}
	go func() {
		var a upAnswer
		a.started, a.err = readResponse(u, lim, &a.resp)
		w.done <- a // before cancel: the mover's caller must find the answer once ctx ends
		if a.err == nil || a.started {
			cancel()
		}
	}()
	return w
}

// moveBody moves pre and then n bytes from client to the upstream. When last is set (the body's
// final bytes) it holds back the last byte: a peek then shows whether bytes beyond the declared
// length follow that cannot start a next request (a body longer than declared), and errBodyTooLong
// comes back before the upstream saw a complete body, so no object is stored. tee, when set, sees
// every byte (whole-body digests).
func (e *Engine) moveBody(ctx context.Context, u *upConn, client net.Conn, pre []byte, n int64, last bool, tee io.Writer) (transfer.Result, error) {
	hold := last && peekable(client) && n > 0
	if hold {
		n--
	}
	var res transfer.Result
	var err error
	if tee != nil {
		res, err = e.mover.MoveTee(ctx, u.c, client, pre, n, tee)
	} else {
		res, err = e.mover.Move(ctx, u.c, client, pre, n)
	}
	if err == nil && hold {
		var lb int64
		lb, err = e.moveLastByte(client, u.c, tee)
		res.Copied += lb
	}
	return res, err
}

// bodyFailed settles a body transfer that failed. ok=true means the upstream answered early or
// stopped reading: its answer is to be relayed (the read deadline is set). Otherwise the upstream
// connection is reset — it must see an error, never a clean end of a truncated body — and the
// S3 error for the client is returned.
func (e *Engine) bodyFailed(u *upConn, w *watcher, err error) (*s3Error, bool) {
	var te *transfer.Error
	switch {
	case errors.Is(err, errBodyTooLong):
	case e.killCtx.Err() != nil:
	case w.ctx.Err() != nil || errors.As(err, &te) && te.Side == transfer.SideDst:
		_ = u.c.SetReadDeadline(time.Now().Add(lingerTime))
		return nil, true
	}
	u.reset()
	<-w.done
	w.cancel()
	return clientFailure(err, e.killCtx.Err() != nil), false
}

// clientFailure maps a failed body transfer on the client's side to the client's answer.
func clientFailure(err error, draining bool) *s3Error {
	var ce *chunkError
	switch {
	case errors.As(err, &ce):
		return ce.s3err // an aws-chunked body that failed to decode or verify
	case draining:
		return errShuttingDown // the drain deadline cut the transfer
	case errors.Is(err, errBodyTooLong):
		return errIncompleteBody
	case errors.Is(err, transfer.ErrStalled):
		return errRequestTimeout
	}
	return errIncompleteBody // short body: gone, or half-closed and still reading
}

var errBodyTooLong = errors.New("engine: body longer than Content-Length")

// peekable reports whether peek works on c: a socket on a platform with MSG_PEEK. A TLS
// connection is not (its bytes are records, not the body): its body moves whole, and bytes beyond
// the declared length are read as the next request's head (refused with 400 there).
func peekable(c net.Conn) bool {
	if !canPeek {
		return false
	}
	_, ok := c.(syscall.Conn)
	return ok
}

// moveLastByte peeks at what follows the body's last byte and moves that byte upstream unless bytes
// follow that cannot begin a pipelined request. A client that stalls on it fails with
// transfer.ErrStalled like any other stall.
func (e *Engine) moveLastByte(client, up net.Conn, tee io.Writer) (int64, error) {
	var b [24]byte
	_ = client.SetReadDeadline(time.Now().Add(e.opts.BodyStallTimeout))
	defer client.SetReadDeadline(time.Time{})
	n, err := peek(client, b[:])
	if err != nil {
		if isTimeout(err) {
			err = transfer.ErrStalled
		}
		return 0, &transfer.Error{Side: transfer.SideSrc, Op: "peek", Err: err}
	}
	if n > 1 && !plausibleRequestStart(b[1:n]) {
		return 0, errBodyTooLong
	}
	if _, err := io.ReadFull(client, b[:1]); err != nil {
		return 0, &transfer.Error{Side: transfer.SideSrc, Op: "read", Err: err}
	}
	if tee != nil {
		_, _ = tee.Write(b[:1])
	}
	_ = up.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
	defer up.SetWriteDeadline(time.Time{})
	if _, err := up.Write(b[:1]); err != nil {
		return 0, &transfer.Error{Side: transfer.SideDst, Op: "write", Err: err}
	}
	return 1, nil
}

func writeAll(c net.Conn, b []byte, timeout time.Duration) bool {
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.Write(b)
	_ = c.SetWriteDeadline(time.Time{})
	return err == nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
