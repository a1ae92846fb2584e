package engine

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"hash"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
	"github.com/mizuchi/uploadr/transfer"
)

// Signed aws-chunked bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD and …-PAYLOAD-TRAILER) are read off
// the client connection chunk by chunk (copy path, never splice): each chunk is held whole (at most
// maxChunkSize), its signature — chained from the header's seed signature — is verified, and only
// then are its bytes forwarded. What the upstream gets:
//
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD → the decoded bytes as a plain body, Content-Length =
//     x-amz-decoded-content-length, x-amz-content-sha256: UNSIGNED-PAYLOAD. The proxy verified every
//     byte (the chunk signatures cover SHA-256 of every chunk); the upstream can verify nothing more.
//     The body's last byte is held back until the final chunk's signature verified, so an upstream
//     never sees a complete body the proxy then refuses.
//   - …-PAYLOAD-TRAILER → re-framed as STREAMING-UNSIGNED-PAYLOAD-TRAILER: one chunk of the decoded
//     bytes, then the trailing checksum, which the upstream verifies too (and stores). The trailer is
//     sent only once its signature and the checksum verified at the proxy.
//
// Any failure resets the upstream connection (never a clean end of a short body) and answers the
// client: a bad chunk or trailer signature 403 SignatureDoesNotMatch, a bad checksum 400 BadDigest,
// a short body or a decoded length other than declared 400 IncompleteBody, bad framing 400.

// chunkJob is what a job carries of a signed aws-chunked request.
type chunkJob struct {
	info chunkInfo
	seed s3sig.ChunkSeed
}

// chunkState is the per-request scratch of the decoder, pooled.
type chunkState struct {
	pr    prefixReader
	sr    stallReader
	br    *bufio.Reader
	cr    chunkReader
	v     s3sig.ChunkVerifier
	buf   []byte
	tr    trailer
	lines [maxTrailerLines * maxTrailerLine]byte
	sum   hash.Hash
	algo  checksumAlgo
	want  [64]byte
	got   [64]byte
	tail  []byte   // what is written after the last verified chunk
	te    teReader // Transfer-Encoding: chunked: the HTTP framing around the aws-chunked body (tecoding.go)
	isTE  bool
}

var chunkStatePool = sync.Pool{New: func() any {
	cs := &chunkState{}
	cs.br = bufio.NewReaderSize(&cs.pr, 4096)
	cs.cr.r = cs.br
	return cs
}}

func getChunkState(j *job, client net.Conn, stall time.Duration) *chunkState {
	cs := chunkStatePool.Get().(*chunkState)
	if j.te {
		// The aws-chunked body is read out of its HTTP chunks; the buffered prefix is still framed.
		cs.isTE = true
		cs.sr = stallReader{c: client, timeout: stall, n: math.MaxInt64}
		cs.te.reset(j.out[j.headLen:], &cs.sr, maxTEFraming(j.chunked.info.decoded))
		cs.pr = prefixReader{r: &cs.te}
	} else {
		cs.sr = stallReader{c: client, timeout: stall, n: j.remaining}
		cs.pr = prefixReader{pre: j.out[j.headLen:], r: &cs.sr}
	}
	cs.br.Reset(&cs.pr)
	cs.cr.signed = true
	cs.v.Reset(&j.chunked.seed)
	if a := j.chunked.info.trailer; a != cs.algo || cs.sum == nil {
		cs.algo, cs.sum = a, a.newHash()
	}
	if cs.sum != nil {
		cs.sum.Reset()
	}
	return cs
}

func (cs *chunkState) release() {
	cs.pr, cs.sr = prefixReader{}, stallReader{}
	cs.te, cs.isTE = teReader{}, false
	cs.v = s3sig.ChunkVerifier{} // holds a signing key
	cs.br.Reset(&cs.pr)
	if cap(cs.buf) > maxChunkSize {
		cs.buf = nil
	}
	chunkStatePool.Put(cs)
}

// chunkBuf returns a buffer of n bytes for one chunk's data.
func (cs *chunkState) chunkBuf(n int64) []byte {
	if int64(cap(cs.buf)) < n {
		cs.buf = make([]byte, n, max(n, 64<<10))
	}
	return cs.buf[:n]
}

// errForward is a failure of fwd: the upstream stopped reading or answered early.
var errForward = errors.New("engine: forwarding a verified chunk failed")

// decode reads the whole body, verifying as it goes, and hands each verified chunk's data to fwd
// before it reads the next. It returns the client's error, or errForward (as err) when fwd failed.
// On success the body was consumed exactly: nothing of it is left unread.
func (cs *chunkState) decode(ci *chunkInfo, fwd func([]byte) error) (*s3Error, error) {
	var total int64
	var sig [64]byte
	for {
		n, err := cs.cr.header(&sig)
		if err != nil {
			return chunkReadFailure(err), nil
		}
		if n == 0 {
			if cs.v.VerifyChunk(nil, sig[:]) != nil {
				return errSignatureDoesNotMatch, nil
			}
			break
		}
		if total+n > ci.decoded {
			return errChunkLength, nil
		}
		p := cs.chunkBuf(n)
		if err := cs.cr.data(p); err != nil {
			return chunkReadFailure(err), nil
		}
		if cs.v.VerifyChunk(p, sig[:]) != nil {
			return errSignatureDoesNotMatch, nil
		}
		total += n
		if cs.sum != nil {
			_, _ = cs.sum.Write(p)
		}
		if err := fwd(p); err != nil {
			return nil, err
		}
	}
	if total != ci.decoded {
		return errChunkLength, nil
	}
	if ci.mode == chunksSigned {
		if err := cs.cr.crlf(); err != nil {
			return chunkReadFailure(err), nil
		}
	} else {
		cs.tr = trailer{lines: cs.lines[:0]}
		if err := cs.cr.trailer(ci.trailer, &cs.tr); err != nil {
			return chunkReadFailure(err), nil
		}
		if cs.v.VerifyTrailer(cs.tr.lines, cs.tr.sig[:]) != nil {
			return errSignatureDoesNotMatch, nil
		}
		if s3err := cs.checkSum(); s3err != nil {
			return s3err, nil
		}
	}
	return cs.atEnd(), nil
}

// atEnd checks that the aws-chunked body ended where the client's body does: Content-Length
// declared no more than the framing holds, or only HTTP chunked framing follows (Transfer-Encoding).
func (cs *chunkState) atEnd() *s3Error {
	switch {
	case cs.br.Buffered() > 0 || len(cs.pr.pre) > 0:
		return errChunkMalformed
	case cs.isTE:
		return cs.te.end()
	case cs.sr.n > 0:
		return errChunkMalformed
	}
	return nil
}

// checkSum compares the trailer's checksum with the one computed over the decoded bytes.
func (cs *chunkState) checkSum() *s3Error {
	v := cs.tr.checksum
	size := checksumSizes[cs.algo]
	if len(v) != cs.algo.b64Len() {
		return errInvalidDigest
	}
	n, err := base64.StdEncoding.Decode(cs.want[:], v)
	if err != nil || n != size {
		return errInvalidDigest
	}
	if !bytes.Equal(cs.sum.Sum(cs.got[:0]), cs.want[:size]) {
		return errBadDigest
	}
	return nil
}

// chunkReadFailure maps a decoder or client read error to the client's answer.
func chunkReadFailure(err error) *s3Error {
	var ce *chunkError
	switch {
	case errors.As(err, &ce):
		return ce.s3err // the HTTP chunked framing around the body (teReader)
	case errors.Is(err, errChunkFormat):
		return errChunkMalformed
	case errors.Is(err, errChunkTooBig):
		return errChunkTooLarge
	case isTimeout(err):
		return errRequestTimeout
	}
	return errIncompleteBody
}

// exchangeEmptyChunks exchanges an aws-chunked body that decodes to no bytes: nothing to stream,
// so verify (the whole, small body) runs before the upstream sees a request, which then gets the
// head and the re-framed tail at once.
func (e *Engine) exchangeEmptyChunks(j *job, client net.Conn, cs *chunkState, verify func() *s3Error) (status int, reuse bool) {
	if s3err := verify(); s3err != nil {
		return e.answer(j, client, s3err), false
	}
	ci := &j.chunked.info
	cs.appendTail(ci, false)
	head := append(j.out[:j.headLen:j.headLen], cs.tail...)
	u, s3err := e.sendHead(j, head)
	if s3err != nil {
		return e.answer(j, client, s3err), false
	}
	_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
	w := watchResponse(e.killCtx, u, e.limits)
	return e.relayAnswer(j, client, u, w, true)
}

// exchangeSignedChunks is exchangeStreaming for a signed aws-chunked body (see the top of this file).
func (e *Engine) exchangeSignedChunks(j *job, client net.Conn) (status int, reuse bool, res transfer.Result) {
	res.Mode = transfer.ModeCopy
	ci := &j.chunked.info
	if j.expect100 && j.remaining > 0 && !writeAll(client, continueResponse, e.opts.BodyStallTimeout) {
		return 499, false, res
	}
	cs := getChunkState(j, client, e.opts.BodyStallTimeout)
	defer cs.release()
	defer client.SetReadDeadline(time.Time{})
	defer func() { j.chunked = chunkJob{} }() // the seed holds a signing key

	if ci.decoded == 0 {
		status, reuse = e.exchangeEmptyChunks(j, client, cs, func() *s3Error {
			s3err, _ := cs.decode(ci, func([]byte) error { return nil })
			return s3err
		})
		return status, reuse, res
	}

	u, s3err := e.sendHead(j, j.out[:j.headLen])
	if s3err != nil {
		return e.answer(j, client, s3err), false, res
	}
	w := watchResponse(e.killCtx, u, e.limits)
	write := func(p []byte) error {
		if w.ctx.Err() != nil {
			return errForward // the upstream answered early
		}
		_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
		n, err := u.c.Write(p)
		res.Copied += int64(n)
		if err != nil {
			return errForward
		}
		return nil
	}
	var fwdErr error
	if ci.mode == chunksSignedTrailer {
		j.num = strconv.AppendInt(j.num[:0], ci.decoded, 16)
		j.num = append(j.num, "\r\n"...)
		fwdErr = write(j.num)
	}
	var sent int64
	var last byte
	if fwdErr == nil {
		s3err, fwdErr = cs.decode(ci, func(p []byte) error {
			if e.killCtx.Err() != nil {
				return errShuttingDownCut
			}
			sent += int64(len(p))
			if ci.mode == chunksSigned && sent == ci.decoded {
				last, p = p[len(p)-1], p[:len(p)-1] // the last byte waits for the final chunk's signature
			}
			return write(p)
		})
	}
	if fwdErr == nil && s3err == nil {
		cs.appendTail(ci, true)
		if ci.mode == chunksSigned {
			cs.tail = append(cs.tail, last)
		}
		fwdErr = write(cs.tail)
	}
	_ = u.c.SetWriteDeadline(time.Time{})
	switch {
	case fwdErr == errShuttingDownCut:
		s3err = errShuttingDown
	case fwdErr != nil:
		// The upstream answered early or stopped reading: relay its answer.
		_ = u.c.SetReadDeadline(time.Now().Add(lingerTime))
		status, _ = e.relayAnswer(j, client, u, w, false)
		return status, false, res
	}
	if s3err != nil {
		u.reset() // the upstream must see an error, never a clean end of the body
		<-w.done
		w.cancel()
		return e.answer(j, client, s3err), false, res
	}
	_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
	status, reuse = e.relayAnswer(j, client, u, w, true)
	return status, reuse, res
}

var errShuttingDownCut = errors.New("engine: drain deadline cut a signed aws-chunked body")

// appendTail sets cs.tail to what ends the re-framed body (…-TRAILER): after the data chunk
// (afterData) "\r\n0\r\n", else "0\r\n", then "<checksum name>:<value>\r\n\r\n". For a body without
// trailer it is empty.
func (cs *chunkState) appendTail(ci *chunkInfo, afterData bool) {
	cs.tail = cs.tail[:0]
	if !ci.reframed() {
		return
	}
	if afterData {
		cs.tail = append(cs.tail, "\r\n"...)
	}
	cs.tail = append(cs.tail, "0\r\n"...)
	cs.tail = append(cs.tail, ci.trailer.name()...)
	cs.tail = append(cs.tail, ':')
	cs.tail = append(cs.tail, cs.tr.checksum...)
	cs.tail = append(cs.tail, "\r\n\r\n"...)
}
