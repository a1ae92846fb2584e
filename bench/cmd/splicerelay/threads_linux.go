package main

import (
	"errors"
	"net"
	"runtime"

	"golang.org/x/sys/unix"
)

// pumpThreads is pump with filling and draining overlapped and no Go poller in the data path, the
// design issue 11 (item 4) suggested for one fast stream: a reader thread splices src into the pipe
// while a writer thread splices the pipe into dst, each locked to its OS thread and waiting in
// poll(2), so that a wake-up goes from the kernel straight to the thread that waits. Both sockets
// stay non-blocking: a blocking socket would hold the pipe's lock inside splice while it waits for
// data, and the writer would see nothing of what the reader has already moved.
func pumpThreads(dst, src *net.TCPConn, pipeSize int) error {
	p, pipeSize, err := newPipe(pipeSize)
	if err != nil {
		return err
	}
	defer func() {
		if p[0] >= 0 {
			unix.Close(p[0])
		}
	}()
	sfd, err := rawFD(src)
	if err != nil {
		unix.Close(p[1])
		return err
	}
	dfd, err := rawFD(dst)
	if err != nil {
		unix.Close(p[1])
		return err
	}
	rerr := make(chan error, 1)
	go func() { // reader: src -> pipe; closing the pipe's write end is the writer's EOF
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer unix.Close(p[1])
		rerr <- spliceLoop(sfd, p[1], pipeSize, sfd, p[1])
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	werr := spliceLoop(p[0], dfd, pipeSize, p[0], dfd)
	if werr != nil {
		// Wake the reader wherever it waits: shutting src's reading side down ends its wait for
		// the client, and closing the pipe's read end its wait for room in the pipe (EPIPE).
		unix.Shutdown(sfd, unix.SHUT_RD)
		unix.Close(p[0])
		p[0] = -1
	}
	if err := <-rerr; err != nil && werr == nil {
		return err
	}
	return werr
}

// spliceLoop splices from into to until from's EOF. On EAGAIN it waits in poll(2) for whichever
// side blocked it: inFD readable when it holds nothing (FIONREAD 0), otherwise outFD writable. While
// it waits for input it also watches outFD for an error or a hang-up: a destination that resets
// after it took everything so far would otherwise go unseen while the source stays quiet.
func spliceLoop(from, to, size, inFD, outFD int) error {
	for {
		n, err := splice(from, to, size)
		switch {
		case errors.Is(err, unix.EAGAIN):
			if q, _ := unix.IoctlGetInt(inFD, unix.SIOCINQ); q > 0 {
				err = waitFD(outFD, unix.POLLOUT, -1)
			} else {
				err = waitFD(inFD, unix.POLLIN|unix.POLLRDHUP, outFD)
			}
			if err != nil {
				return err
			}
		case err != nil:
			return err
		case n == 0:
			return nil
		}
	}
}

// waitFD waits in poll(2), without a timeout, for events on fd. With watch ≥ 0 it also returns
// when watch reports an error or a hang-up (poll reports those without asking): the socket's
// pending error (SO_ERROR), or EPIPE when there is none (a pipe whose other end is closed).
func waitFD(fd int, events int16, watch int) error {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}, {Fd: int32(watch)}}
	if watch < 0 {
		fds = fds[:1]
	}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if len(fds) > 1 && fds[1].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			if e, gerr := unix.GetsockoptInt(watch, unix.SOL_SOCKET, unix.SO_ERROR); gerr == nil && e != 0 {
				return unix.Errno(e)
			}
			return unix.EPIPE
		}
		return nil
	}
}

// rawFD returns c's descriptor. It stays valid while c is open, which outlives pumpThreads.
func rawFD(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, err
	}
	return fd, nil
}
