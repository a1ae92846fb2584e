// Package freeport picks TCP ports on 127.0.0.1 for the servers that tests and benchmarks start
// (versitygw, OPA, the proxy itself) when a port must be named before the server binds it.
//
// Listening on port 0 and closing again would take a port from the kernel's ephemeral range — the
// range every outgoing connection on the machine takes its local port from, so another process's
// connection can take it before the server binds it (CI failed so once). Pick chooses below that
// range instead, where only a server binding that exact port can collide, and never returns the
// same port twice in a process.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Min is the lowest port Pick returns: above the well-known and the commonly configured service
// ports.
const Min = 10000

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Pick returns a port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range
// (or, when that range leaves no room below it, one the kernel picks).
func Pick() (int, error) {
	lo, _ := EphemeralRange()
	if lo-Min < 1000 {
		return kernelPick()
	}
	mu.Lock()
	defer mu.Unlock()
	var lastErr error
	for range 100 {
		p := Min + rand.IntN(lo-Min)
		if given[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			lastErr = err
			continue
		}
		l.Close()
		given[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("freeport: no free port in %d-%d after 100 tries: %v", Min, lo-1, lastErr)
}

func kernelPick() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("freeport: listen on 127.0.0.1:0: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// EphemeralRange is the range the kernel takes local ports from for outgoing connections (and for
// listeners on port 0): Linux's ip_local_port_range, else IANA's 49152-65535, which macOS and Windows
// use.
func EphemeralRange() (lo, hi int) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if lo, hi, ok := parseRange(string(b)); ok {
			return lo, hi
		}
	}
	return 49152, 65535
}

// parseRange parses ip_local_port_range: two ports separated by white space, low first.
func parseRange(s string) (lo, hi int, ok bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}
