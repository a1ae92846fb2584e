package transfer

import (
	"errors"
	"io"
	"syscall"
)

// ReadReadier is a source that can tell whether a Read would return bytes at once — a TLS
// connection whose socket holds at least one more whole record. The copy path then reads it until
// the buffer is full before writing, so the upstream gets one write per buffer rather than one per
// Read (crypto/tls returns at most one 16 KiB record per Read: 16 writes, and as many wake-ups of the
// upstream, per 256 KiB). Bytes that have arrived are never held back waiting for more: a source
// that is not ready has what it read written at once.
type ReadReadier interface {
	ReadReady() bool
}

// fillReady continues a read into chunk of which the first nr bytes are filled (rerr the read's
// error) while src says more is ready, and returns the bytes filled and the error that ended it.
func fillReady(j *job, src ReadReadier, chunk []byte, nr int, rerr error) (int, error) {
	for rerr == nil && nr > 0 && nr < len(chunk) && src.ReadReady() {
		j.armSrc()
		var m int
		m, rerr = j.src.Read(chunk[nr:])
		nr += m
		if m == 0 && rerr == nil {
			break // a conforming Read does not do this; the caller's loop handles it
		}
	}
	return nr, rerr
}

// copyBody moves exactly n bytes from j.src to j.dst through a pooled
// buffer: each read asks for at most min(remaining, buffer size) bytes, so
// nothing past the body is consumed, and every byte read is written before
// the next read. The buffer comes from the bounded pool (waiting for one when
// all are lent out, see copyPool) and returns to it when the transfer ends;
// no reference to it survives.
//
// While other transfers wait for a buffer, a transfer whose src is a socket
// (on Linux) gives its buffer back after each chunk and waits for src's next
// bytes without one (waitReadable), then queues for a buffer again: a slow
// client holds no buffer while it sends nothing, and the waiting transfers
// take turns. Uncontended, a transfer keeps its buffer to the end. Any other
// src (a TLS client) cannot take turns: past the cap it copies through a
// small overflow buffer instead of waiting (see copyPool).
func (m *Mover) copyBody(j *job, res *Result, n int64) error {
	if n == 0 {
		return nil
	}
	_, yield := j.src.(syscall.Conn)
	yield = yield && canWaitReadable
	ready, _ := j.src.(ReadReadier)
	var cb *copyBuf
	defer func() {
		if cb != nil {
			m.bufs.put(cb)
		}
	}()
	empty := 0
	for n > 0 {
		if cb == nil {
			if yield && m.bufs.contended() {
				j.armSrc()
				if err := waitReadable(j.src); err != nil {
					return j.fail(SideSrc, "read", err)
				}
			}
			var err error
			if cb, err = m.bufs.get(j, yield); err != nil {
				return &Error{Side: SideSrc, Op: "read", Err: err}
			}
		}
		chunk := cb.b
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		j.armSrc()
		nr, rerr := j.src.Read(chunk)
		if ready != nil {
			nr, rerr = fillReady(j, ready, chunk, nr, rerr)
		}
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
			if yield && m.bufs.waiting.Load() > 0 {
				m.bufs.put(cb)
				cb = nil
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
