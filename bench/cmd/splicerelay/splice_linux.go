package main

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// pump moves src's bytes to dst until src's EOF through one pipe with splice(2): fill the empty
// pipe from src once, then drain it fully into dst (Go's invariant, so that EAGAIN is unambiguous:
// on fill src is not readable, on drain dst is not writable). Waiting happens in the runtime
// poller through RawConn Read/Write callbacks.
func pump(dst, src *net.TCPConn, pipeSize int) error {
	p, pipeSize, err := newPipe(pipeSize)
	if err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	rsrc, err := src.SyscallConn()
	if err != nil {
		return err
	}
	rdst, err := dst.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var n int
		var serr error
		if err := rsrc.Read(func(fd uintptr) bool {
			n, serr = splice(int(fd), p[1], pipeSize)
			return !errors.Is(serr, unix.EAGAIN)
		}); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
		if n == 0 {
			return nil // EOF
		}
		for n > 0 {
			var m int
			if err := rdst.Write(func(fd uintptr) bool {
				m, serr = splice(p[0], int(fd), n)
				return !errors.Is(serr, unix.EAGAIN)
			}); err != nil {
				return err
			}
			if serr != nil {
				return serr
			}
			n -= m
		}
	}
}

// newPipe returns a non-blocking pipe and its buffer size: size when the kernel grants it, else the
// default 64 KiB.
func newPipe(size int) (p [2]int, got int, err error) {
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return p, 0, err
	}
	if got, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, size); err == nil {
		return p, got, nil
	}
	return p, 64 << 10, nil
}

// splice wraps unix.Splice once: it returns int on some architectures and int64 on others.
func splice(from, to, n int) (int, error) {
	for {
		m, err := unix.Splice(from, nil, to, nil, n, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		return int(m), err
	}
}
