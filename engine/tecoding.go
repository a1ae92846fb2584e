package engine

import (
	"io"
	"net"
	"strconv"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/transfer"
)

// Transfer-Encoding: chunked request bodies (RFC 9112 7.1). Over https, aws cli v1, boto3 and the
// JS SDK (a stream body) send an aws-chunked body (Content-Encoding: aws-chunked,
// x-amz-decoded-content-length) in HTTP chunks, without Content-Length. The proxy takes them on the
// copy path only (stream or auto-chunk verdict, off the loop, never spliced): teReader removes the
// HTTP framing, the aws-chunked decoder (chunked.go) the inner one, and the upstream gets the object
// with a Content-Length known before it is sent, from x-amz-decoded-content-length:
//
//   - an unsigned-trailer or signed-trailer body is re-framed as one STREAMING-UNSIGNED-PAYLOAD-TRAILER
//     chunk followed by the client's checksum, so the upstream verifies it again and stores it (the
//     client asked for a stored checksum); signed chunks are verified by the proxy first;
//   - an unsigned body without trailer, or a signed one without trailer, goes plain (UNSIGNED-PAYLOAD),
//     its chunk signatures verified by the proxy.
//
// The proxy verifies the trailing checksum itself too, before the upstream request can complete: the
// body's last byte is held back until the whole chunked body — final aws-chunk, trailer, checksum,
// the HTTP last chunk and trailer section — has been read and checked. Any failure resets the
// upstream connection, so the upstream sees an error and stores nothing (TESTBED: versitygw stores a
// truncated object on a clean close); the client gets 400 BadDigest, IncompleteBody (a decoded
// length other than declared, either way: S3 answers IncompleteBody to a body longer than
// x-amz-decoded-content-length too, versitygw issue 1684), BadRequest (bad HTTP framing) and so on.
//
// A chunked body whose length cannot be known before it is forwarded — not aws-chunked, so nothing
// declares its size — is refused by admit with 411 MissingContentLength, as S3 answers it. A hex
// x-amz-content-sha256 makes a body plain whatever Content-Encoding says, so it is 411 too: the
// proxy never forwards bytes under a payload hash it did not verify.
//
// teReader reads at most the fewest bytes the chunked body can still have (MinRemaining), so it
// never consumes what follows the body: a pipelined next request stays in the socket (gnet gets it
// back with the connection) or in the TLS connection's buffer.

// maxTEFraming bounds the HTTP chunked bytes read for an aws-chunked body of decoded bytes: the
// aws-chunked framing (maxChunkFraming) once, then HTTP framing no heavier than the data itself (a
// flood of tiny HTTP chunks is cut short), plus 64 KiB.
func maxTEFraming(decoded int64) int64 {
	inner := decoded + maxChunkFraming(decoded)
	return 2*inner + 64<<10
}

// teReader de-chunks a chunked request body read from pre (the bytes read with the head), then from
// src. Its errors are *chunkError (the client's answer) or src's read errors.
type teReader struct {
	sc     httpparse.ChunkScanner
	pre    []byte
	src    io.Reader
	raw    int64 // framed bytes consumed
	maxRaw int64
	done   bool
	err    error
}

func (t *teReader) reset(pre []byte, src io.Reader, maxRaw int64) {
	t.sc.ResetRequest()
	t.pre, t.src, t.raw, t.maxRaw, t.done, t.err = pre, src, 0, maxRaw, false, nil
}

// Read returns de-chunked bytes; io.EOF once the chunked body (trailer section and final CRLF
// included) has been read. A framed body that ends early gives io.ErrUnexpectedEOF.
func (t *teReader) Read(p []byte) (int, error) {
	for {
		switch {
		case t.err != nil:
			return 0, t.err
		case t.done:
			return 0, io.EOF
		case len(p) == 0:
			return 0, nil
		}
		k := int(min(int64(len(p)), t.sc.MinRemaining()))
		var n int
		var err error
		if len(t.pre) > 0 {
			n = copy(p[:k], t.pre)
			t.pre = t.pre[n:]
		} else {
			n, err = t.src.Read(p[:k])
		}
		if t.raw += int64(n); t.raw > t.maxRaw {
			t.err = &chunkError{errChunkFraming}
			return 0, t.err
		}
		_, d, done, derr := t.sc.Decode(p[:n])
		switch {
		case derr != nil:
			t.err = &chunkError{errChunkedBody}
			return 0, t.err
		case done:
			t.done = true
		case err != nil:
			t.err = eofIsUnexpected(err)
			if d == 0 {
				return 0, t.err
			}
		}
		if d > 0 {
			return d, nil
		}
	}
}

// end reads what is left of the chunked body after the aws-chunked body inside it ended: only
// framing may follow (the HTTP last chunk, its trailer section and final CRLF).
func (t *teReader) end() *s3Error {
	var b [64]byte
	for {
		n, err := t.Read(b[:])
		switch {
		case n > 0:
			return errChunkMalformed // bytes after the aws-chunked body
		case err == io.EOF:
			return nil
		case err != nil:
			return chunkReadFailure(err)
		}
	}
}

// reframed reports whether a decoded aws-chunked body goes upstream as one
// STREAMING-UNSIGNED-PAYLOAD-TRAILER chunk with its checksum (else plain).
func (ci *chunkInfo) reframed() bool {
	return ci.mode == chunksSignedTrailer || ci.mode == chunksUnsignedTrailer && ci.trailer != checksumNone
}

// teBodyPrefix returns how much of prefix (the bytes read with a chunked request's head) belongs to
// its body, and whether the body ended within it. A malformed prefix is left whole: the de-chunker
// finds the error again.
func teBodyPrefix(prefix []byte) (int, bool) {
	var sc httpparse.ChunkScanner
	sc.ResetRequest()
	n, done, err := sc.Scan(prefix)
	if err != nil {
		return len(prefix), false
	}
	return n, done
}

// exchangeDechunked is exchangeStreaming for an aws-chunked body in HTTP chunks (see the top of
// this file). The upstream head (buildUpstreamHead) declares ci.upstreamLength().
func (e *Engine) exchangeDechunked(j *job, client net.Conn) (status int, reuse bool, res transfer.Result) {
	res.Mode = transfer.ModeCopy
	ci := &j.chunked.info
	if j.expect100 && j.remaining != 0 && !writeAll(client, continueResponse, e.opts.BodyStallTimeout) {
		return 499, false, res
	}
	cs := getChunkState(j, client, e.opts.BodyStallTimeout)
	cs.cr.signed = ci.mode != chunksUnsignedTrailer
	defer cs.release()
	defer client.SetReadDeadline(time.Time{})
	defer func() { j.chunked = chunkJob{} }() // the seed holds a signing key
	src := &chunkSource{cs: cs, ci: ci}

	if ci.decoded == 0 {
		status, reuse = e.exchangeEmptyChunks(j, client, cs, src.finish)
		return status, reuse, res
	}

	u, s3err := e.sendHead(j, j.out[:j.headLen])
	if s3err != nil {
		return e.answer(j, client, s3err), false, res
	}
	w := watchResponse(e.killCtx, u, e.limits)
	var err error
	if ci.reframed() {
		j.num = strconv.AppendInt(j.num[:0], ci.decoded, 16)
		j.num = append(j.num, "\r\n"...)
		err = e.writeUp(u, j.num, &res)
	}
	if err == nil {
		// All but the last byte, which waits until the body verified.
		var moved transfer.Result
		moved, err = e.movePart(w.ctx, u, src, ci.decoded-1, nil)
		res.Copied += moved.Copied
	}
	var last [1]byte
	if err == nil {
		if _, rerr := io.ReadFull(src, last[:]); rerr != nil {
			err = rerr
		} else if s3err = src.finish(); s3err != nil {
			err = &chunkError{s3err}
		}
	}
	if err == nil {
		cs.appendTail(ci, true)
		cs.tail = append(cs.tail, 0)
		copy(cs.tail[1:], cs.tail)
		cs.tail[0] = last[0]
		err = e.writeUp(u, cs.tail, &res)
	}
	if err != nil {
		if e.killCtx.Err() != nil {
			err = errShuttingDownCut
		}
		if ce, ok := err.(*chunkError); ok || err == errShuttingDownCut || !isUpstreamSide(err) {
			u.reset() // the upstream must see an error, never a clean end of the body
			<-w.done
			w.cancel()
			switch {
			case ok:
				s3err = ce.s3err
			case err == errShuttingDownCut:
				s3err = errShuttingDown
			default:
				s3err = chunkReadFailure(err)
			}
			return e.answer(j, client, s3err), false, res
		}
		// The upstream answered early or stopped reading: relay its answer.
		_ = u.c.SetReadDeadline(time.Now().Add(lingerTime))
		status, _ = e.relayAnswer(j, client, u, w, false)
		return status, false, res
	}
	_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
	status, reuse = e.relayAnswer(j, client, u, w, true)
	return status, reuse, res
}

// writeUp writes p to the upstream within the stall timeout, counting it in res.
func (e *Engine) writeUp(u *upConn, p []byte, res *transfer.Result) error {
	_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
	n, err := u.c.Write(p)
	_ = u.c.SetWriteDeadline(time.Time{})
	res.Copied += int64(n)
	if err != nil {
		return &transfer.Error{Side: transfer.SideDst, Op: "write", Err: err}
	}
	return nil
}

// isUpstreamSide reports whether a body transfer failed on the upstream's side (it answered early
// or stopped reading).
func isUpstreamSide(err error) bool {
	te, ok := err.(*transfer.Error)
	return ok && te.Side == transfer.SideDst
}
