package engine

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/mizuchi/uploadr/transfer"
)

// An aws-chunked PutObject above the auto-chunk threshold (STREAMING-UNSIGNED-PAYLOAD-TRAILER or
// signed) is cut into parts like a plain body, from its decoded bytes (copy path): chunkSource
// decodes the framing — verifying each signed chunk before any of its bytes is handed out — and
// sendParts copies part after part out of it. Once the last part is sent, finish reads the final
// chunk and the trailer and verifies the trailer's signature and checksum; autoChunk completes the
// upload only then, and aborts it on any failure (400 BadDigest for a checksum mismatch).

// partSource is a body that parts are cut from through a buffer rather than off the socket: the
// decoded bytes of an aws-chunked body (chunkSource), or a form's file (postSource). Read fails
// with *chunkError for the client's body; finish checks what follows the last byte, before
// Complete.
type partSource interface {
	io.Reader
	finish() *s3Error
}

// chunkSource is the decoded body of an auto-chunked aws-chunked PutObject.
type chunkSource struct {
	cs    *chunkState
	ci    *chunkInfo
	left  []byte // verified bytes of the current signed chunk not handed out yet
	inRaw int64  // unsigned: data bytes of the current chunk still to read
	total int64  // decoded bytes handed out or being handed out
}

// chunkError carries the client's answer for a body that failed to decode or verify.
type chunkError struct{ s3err *s3Error }

func (e *chunkError) Error() string { return "engine: aws-chunked body: " + e.s3err.Code }

// Read hands out decoded bytes; it returns io.EOF once x-amz-decoded-content-length bytes were
// handed out (the final chunk and the trailer are left to finish).
func (s *chunkSource) Read(p []byte) (int, error) {
	cs := s.cs
	if s.cs.cr.signed {
		if len(s.left) == 0 {
			n, err := s.nextSigned(p)
			if err != nil || n > 0 {
				return n, err // verified straight into p
			}
		}
		n := copy(p, s.left)
		s.left = s.left[n:]
		return n, nil
	}
	if s.inRaw == 0 {
		if err := s.nextRaw(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > s.inRaw {
		p = p[:s.inRaw]
	}
	n, err := cs.br.Read(p)
	s.inRaw -= int64(n)
	if n > 0 && s.cs.sum != nil {
		_, _ = s.cs.sum.Write(p[:n])
	}
	if err != nil {
		return n, &chunkError{chunkReadFailure(eofIsUnexpected(err))}
	}
	if s.inRaw == 0 {
		if err := cs.cr.crlf(); err != nil {
			return n, &chunkError{chunkReadFailure(err)}
		}
	}
	return n, nil
}

// nextSigned reads and verifies the next signed chunk. A chunk that fits in dst is read and
// verified there (it returns its length): no byte of dst may be used unless it returns without
// error. A larger one goes to the chunk buffer, s.left (it returns 0).
func (s *chunkSource) nextSigned(dst []byte) (int, error) {
	cs := s.cs
	if s.total == s.ci.decoded {
		return 0, io.EOF
	}
	var sig [64]byte
	n, err := cs.cr.header(&sig)
	switch {
	case err != nil:
		return 0, &chunkError{chunkReadFailure(err)}
	case n == 0 || s.total+n > s.ci.decoded:
		return 0, &chunkError{errChunkLength}
	}
	direct := int64(len(dst)) >= n
	p := dst[:min(n, int64(len(dst)))]
	if !direct {
		p = cs.chunkBuf(n)
	}
	if err := cs.cr.data(p); err != nil {
		return 0, &chunkError{chunkReadFailure(err)}
	}
	if cs.v.VerifyChunk(p, sig[:]) != nil {
		return 0, &chunkError{errSignatureDoesNotMatch}
	}
	if cs.sum != nil {
		_, _ = cs.sum.Write(p)
	}
	s.total += n
	if direct {
		return int(n), nil
	}
	s.left = p
	return 0, nil
}

// nextRaw reads the next unsigned chunk's header.
func (s *chunkSource) nextRaw() error {
	if s.total == s.ci.decoded {
		return io.EOF
	}
	var sig [64]byte
	n, err := s.cs.cr.header(&sig)
	switch {
	case err != nil:
		return &chunkError{chunkReadFailure(err)}
	case n == 0 || s.total+n > s.ci.decoded:
		return &chunkError{errChunkLength}
	}
	s.total += n
	s.inRaw = n
	return nil
}

// finish reads what follows the decoded bytes — the final chunk, the trailer, the blank line — and
// verifies the final chunk's and the trailer's signatures and the trailing checksum. It returns the
// client's answer on failure.
func (s *chunkSource) finish() *s3Error {
	cs, ci := s.cs, s.ci
	if len(s.left) != 0 || s.inRaw != 0 || s.total != ci.decoded {
		return errChunkLength
	}
	var sig [64]byte
	n, err := cs.cr.header(&sig)
	switch {
	case err != nil:
		return chunkReadFailure(err)
	case n != 0:
		return errChunkLength
	case cs.cr.signed && cs.v.VerifyChunk(nil, sig[:]) != nil:
		return errSignatureDoesNotMatch
	}
	if ci.mode == chunksSigned {
		if err := cs.cr.crlf(); err != nil {
			return chunkReadFailure(err)
		}
	} else {
		cs.tr = trailer{lines: cs.lines[:0]}
		if err := cs.cr.trailer(ci.trailer, &cs.tr); err != nil {
			return chunkReadFailure(err)
		}
		if cs.cr.signed && cs.v.VerifyTrailer(cs.tr.lines, cs.tr.sig[:]) != nil {
			return errSignatureDoesNotMatch
		}
		if ci.trailer != checksumNone {
			if s3err := cs.checkSum(); s3err != nil {
				return s3err
			}
		}
	}
	return cs.atEnd()
}

// movePart copies n decoded bytes of src to the part's upstream connection, feeding tee. It
// stops when ctx ends (the upstream answered early, or another part failed). Errors: *chunkError
// for the client's body, *transfer.Error{Side: SideDst} for the upstream.
func (e *Engine) movePart(ctx context.Context, u *upConn, src partSource, n int64, tee io.Writer) (transfer.Result, error) {
	res := transfer.Result{Mode: transfer.ModeCopy}
	lent := e.mover.Borrow() // within copy_memory_max (past it, a 16 KiB overflow buffer)
	defer e.mover.Return(lent)
	buf := lent.Bytes()
	defer u.c.SetWriteDeadline(time.Time{})
	for n > 0 {
		if ctx.Err() != nil {
			return res, &transfer.Error{Side: transfer.SideDst, Op: "write", Err: ctx.Err()}
		}
		p := buf[:min(int64(len(buf)), n)]
		m, err := io.ReadFull(src, p)
		if err != nil {
			var ce *chunkError
			if !errors.As(err, &ce) {
				err = &chunkError{errChunkLength} // the decoded bytes ended before the part did
			}
			return res, err
		}
		if tee != nil {
			_, _ = tee.Write(p[:m])
		}
		_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
		w, err := u.c.Write(p[:m])
		res.Copied += int64(w)
		if err != nil {
			return res, &transfer.Error{Side: transfer.SideDst, Op: "write", Err: err}
		}
		n -= int64(m)
	}
	return res, nil
}
