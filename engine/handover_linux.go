package engine

import (
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// closeListenersForDrain closes the plain listener when the engine starts draining: new
// connections are refused at once (a load balancer retries them on another node; with
// Options.ReusePort the kernel hands them to the process that took over) instead of being
// accepted and closed unanswered. gnet offers no way to close its listeners without stopping the event loops (and with them
// the uploads in flight), and with ReusePort each loop owns a listener of its own that gnet does
// not expose. So the listening sockets are found among the process's descriptors (listening,
// SO_REUSEPORT, bound to Options.Address) and each descriptor is atomically replaced (dup3) by a
// listening Unix socket with an autobound abstract name that nobody connects to: the TCP socket is
// released at once (it leaves the reuseport group; connections still in its accept queue are
// reset, unless net.ipv4.tcp_migrate_req moves them to the other process), while gnet keeps a
// valid descriptor whose accept(2) returns EAGAIN — a closed or shut-down socket would make it
// fail, and gnet stops the event loop on that — and closes it when the engine stops.
func (e *Engine) closeListenersForDrain() {
	want, err := net.ResolveTCPAddr("tcp", e.opts.Address)
	if err != nil {
		return
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		e.opts.Logger.Warn("draining: cannot list the listening sockets; they stay open until the engine stops", "err", err)
		return
	}
	closed := 0
	for _, ent := range ents {
		fd, err := strconv.Atoi(ent.Name())
		if err != nil || !isListener(fd, want, e.opts.ReusePort) {
			continue
		}
		if err := retireListener(fd); err != nil {
			e.opts.Logger.Warn("draining: cannot close a listening socket", "fd", fd, "err", err)
			continue
		}
		closed++
	}
	e.opts.Logger.Info("draining: listeners closed, new connections are refused", "address", e.opts.Address, "listeners", closed)
}

// isListener reports whether fd is a listening TCP socket bound to want (with SO_REUSEPORT when
// reusePort).
func isListener(fd int, want *net.TCPAddr, reusePort bool) bool {
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 1 {
		return false
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT); reusePort && (err != nil || v != 1) {
		return false
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	var ip net.IP
	var port int
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ip, port = net.IP(a.Addr[:]), a.Port
	case *unix.SockaddrInet6:
		ip, port = net.IP(a.Addr[:]), a.Port
	default:
		return false
	}
	if port != want.Port {
		return false
	}
	if want.IP == nil || want.IP.IsUnspecified() {
		return ip.IsUnspecified()
	}
	return ip.Equal(want.IP)
}

// retireListener replaces the socket behind fd by a listening, non-blocking Unix socket with an
// autobound abstract name (see closeListenersForDrain).
func retireListener(fd int) error {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(s)
	if err := unix.Bind(s, &unix.SockaddrUnix{}); err != nil { // empty name: autobind
		return os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(s, 1); err != nil {
		return os.NewSyscallError("listen", err)
	}
	return os.NewSyscallError("dup3", unix.Dup3(s, fd, unix.O_CLOEXEC))
}
