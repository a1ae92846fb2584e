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
// side blocked it: inFD readable when it holds nothing (FIONREAD 0), otherwise outFD writable.
func spliceLoop(from, to, size, inFD, outFD int) error {
	for {
		n, err := splice(from, to, size)
		switch {
		case errors.Is(err, unix.EAGAIN):
			if q, _ := unix.IoctlGetInt(inFD, unix.SIOCINQ); q > 0 {
				err = waitFD(outFD, unix.POLLOUT)
			} else {
				err = waitFD(inFD, unix.POLLIN|unix.POLLRDHUP)
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

// waitFD waits in poll(2), without a timeout, for events on fd.
func waitFD(fd int, events int16) error {
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: events}}, -1)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
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
