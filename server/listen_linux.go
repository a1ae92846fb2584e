package server

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func controlReusePort(c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
}

// bindProbe binds a socket to addr with the options gnet uses (SO_REUSEADDR, SO_REUSEPORT when
// asked, IPV6_V6ONLY for an IPv6 address, dual stack for an empty host) and closes it.
func bindProbe(addr string, reusePort bool) error {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return err
	}
	var sa unix.Sockaddr
	family, v6only := unix.AF_INET6, false
	switch {
	case ta.IP.To4() != nil:
		family = unix.AF_INET
		a := &unix.SockaddrInet4{Port: ta.Port}
		copy(a.Addr[:], ta.IP.To4())
		sa = a
	case ta.IP.To16() != nil:
		v6only = true
		a := &unix.SockaddrInet6{Port: ta.Port}
		copy(a.Addr[:], ta.IP.To16())
		sa = a
	default:
		sa = &unix.SockaddrInet6{Port: ta.Port}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if v6only {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEPORT", err)
		}
	}
	return os.NewSyscallError("bind", unix.Bind(fd, sa))
}

// tcpMigrateReq is the sysctl (Linux ≥ 5.14) that moves the connections queued on a closing
// SO_REUSEPORT listener to another listener of its group instead of resetting them.
const tcpMigrateReq = "/proc/sys/net/ipv4/tcp_migrate_req"

// handOverWarning says why an upgrade hand-over (server.reuse_port) may reset connections, read
// from the sysctl file at path, or "" when it will not: when the old process closes its listeners,
// the connections the kernel has accepted on them but the proxy has not yet are reset unless
// tcp_migrate_req is 1.
func handOverWarning(path string) string {
	const consequence = "connections queued on this process's listeners when it drains are reset instead of moving to the process taking over"
	v, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		return "this kernel has no net.ipv4.tcp_migrate_req (Linux ≥ 5.14): " + consequence
	case err != nil:
		return "cannot read net.ipv4.tcp_migrate_req (" + err.Error() + "): if it is not 1, " + consequence
	case strings.TrimSpace(string(v)) != "1":
		return "net.ipv4.tcp_migrate_req is " + strconv.Quote(strings.TrimSpace(string(v))) + ", not 1: " + consequence + "; set it with sysctl -w net.ipv4.tcp_migrate_req=1"
	}
	return ""
}
