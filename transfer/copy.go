package transfer

import (
	"errors"
	"io"
)

// copyBody moves exactly n bytes from j.src to j.dst through a pooled
// buffer: each read asks for at most min(remaining, buffer size) bytes, so
// nothing past the body is consumed, and every byte read is written before
// the next read. The buffer comes from the bounded pool (waiting for one when
// all are lent out, see copyPool) and returns to it when the transfer ends;
// no reference to it survives.
func (m *Mover) copyBody(j *job, res *Result, n int64) error {
	if n == 0 {
		return nil
	}
	cb, err := m.bufs.get(j)
	if err != nil {
		return &Error{Side: SideSrc, Op: "read", Err: err}
	}
	defer m.bufs.put(cb)
	buf := cb.b
	empty := 0
	for n > 0 {
		chunk := buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		j.armSrc()
		nr, rerr := j.src.Read(chunk)
		if nr > 0 {
			empty = 0
			if j.tee != nil {
				if _, err := j.tee.Write(chunk[:nr]); err != nil {
					return j.fail(SideDst, "tee", err)
				}
			}
			j.armDst()
			nw, werr := j.dst.Write(chunk[:nr])
			res.Copied += int64(nw)
			n -= int64(nw)
			if werr == nil && nw != nr {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return j.fail(SideDst, "write", werr)
			}
		}
		if rerr != nil {
			if n == 0 && rerr == io.EOF {
				return nil
			}
			if errors.Is(rerr, io.EOF) {
				rerr = ErrShortBody
			}
			return j.fail(SideSrc, "read", rerr)
		}
		if nr == 0 {
			// A conforming Read does not return 0, nil; give up after
			// many like io.ReadAtLeast does rather than spin.
			if empty++; empty >= 100 {
				return j.fail(SideSrc, "read", io.ErrNoProgress)
			}
		}
	}
	return nil
}
