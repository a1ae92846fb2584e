package engine

import (
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Splicing a streamed body inside the loop. gnet reads up to its read buffer (ReadBufferCap) of a
// readable connection into user space before OnTraffic runs, but nothing more: what else the
// client's socket holds is moved from there with splice(2) — client socket → the loop's pipe →
// upstream socket — until the socket is empty (EAGAIN) or the body complete. Level-triggered epoll
// wakes the loop again when more arrives. One pipe per event loop is enough: a callback always
// leaves it empty. When the upstream does not take what the pipe holds (a slow upstream, an error),
// the rest is read from the pipe into the loop's scratch and queued with Conn.Write (gnet's
// outbound buffer, bounded by the body cap; an error closes the connection there) and splicing
// stops until that queue is empty.

// loopPipeSize is the loop pipe's size; below loopPipeMin (the unprivileged pipe limit reached)
// bodies are only copied.
const (
	loopPipeSize = 1 << 20
	loopPipeMin  = 256 << 10
)

// loopPipe is an event loop's pipe.
type loopPipe struct {
	r, w    int
	size    int
	scratch []byte // what the upstream did not take, on its way to Conn.Write
}

// newLoopPipe makes a loop's pipe; nil when the pipe cannot be had at a useful size.
func newLoopPipe() *loopPipe {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil
	}
	p := &loopPipe{r: fds[0], w: fds[1]}
	_, _ = unix.FcntlInt(uintptr(p.r), unix.F_SETPIPE_SZ, loopPipeSize)
	if n, err := unix.FcntlInt(uintptr(p.r), unix.F_GETPIPE_SZ, 0); err == nil && n >= loopPipeMin {
		p.size = n
		return p
	}
	p.close()
	return nil
}

func (p *loopPipe) close() {
	_ = unix.Close(p.r)
	_ = unix.Close(p.w)
}

func spliceN(rfd, wfd, n int) (int, error) {
	m, err := unix.Splice(rfd, nil, wfd, nil, n, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	if err != nil || m < 0 {
		return 0, err
	}
	return int(m), nil
}

// spliceBody moves body bytes from the client's socket to u's while both are ready. It reports
// false when j was answered meanwhile (u failed). On the loop only; u's outbound buffer is empty.
func (e *Engine) spliceBody(c gnet.Conn, st *connState, u *loopUp, j *job) bool {
	p := st.loop.pipe
	cfd, ufd := c.Fd(), u.c.Fd()
	for j.streamLeft > 0 {
		want := int(min(j.streamLeft, int64(p.size)))
		if int64(want) == j.streamLeft {
			// The body's end: bytes beyond it already there must be checked first (a body longer
			// than declared never becomes an object): hold its last byte back for pump, which
			// sees what follows in gnet's buffer.
			if avail, err := unix.IoctlGetInt(cfd, unix.SIOCINQ); err != nil || int64(avail) > j.streamLeft {
				want--
			}
			if want == 0 {
				return true
			}
		}
		n, _ := spliceN(cfd, p.w, want)
		if n == 0 {
			// EAGAIN: nothing more for now. EOF or an error: gnet sees it on its next read and
			// OnClose aborts the stream.
			return true
		}
		j.streamed += int64(n)
		j.streamLeft -= int64(n)
		left := n
		for left > 0 {
			m, _ := spliceN(p.r, ufd, left)
			if m == 0 {
				break
			}
			left -= m
		}
		if left > 0 {
			// The upstream is not taking more (or failed): queue the rest through gnet.
			if len(p.scratch) < p.size {
				p.scratch = make([]byte, p.size)
			}
			b := p.scratch[:left]
			for got := 0; got < left; {
				m, err := unix.Read(p.r, b[got:])
				if m <= 0 || err != nil {
					break // cannot happen with bytes in the pipe
				}
				got += m
			}
			_, _ = u.c.Write(b) // an error closes u inside this call: OnClose answers j
			return st.up == u
		}
	}
	return true
}

// writeHalfClosed writes an answer to a dup of a client socket gnet has let go (the client
// half-closed after its request), as far as the socket takes it without waiting, and closes it.
func writeHalfClosed(fd int, b []byte) {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil || n <= 0 {
			break
		}
		b = b[n:]
	}
	_ = unix.Close(fd)
}
