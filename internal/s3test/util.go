package s3test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// RandomBytes returns n pseudo-random bytes that depend only on seed: the same (n, seed) gives the
// same bytes on every run and platform (ChaCha8 keyed by seed), and a shorter result is a prefix of a
// longer one. The slice is new and owned by the caller.
func RandomBytes(n int, seed int64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], uint64(seed))
	copy(key[8:], "mizuchi-uploadr s3test seed")
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // ChaCha8.Read never fails
	return b
}

// TempFile writes data to a new file in a directory removed when the test ends and returns its
// path.
func TempFile(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatalf("s3test: TempFile: %v", err)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. It is picked below the
// kernel's ephemeral range, where outgoing connections never take ports, and never twice in one
// process; so only another process binding that exact port can take it before the caller does (Start
// retries with a new port when that happens).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("s3test: FreePort: %v", err)
	}
	return p
}

// minFreePort is the lowest port FreePort returns: above the well-known and the commonly configured
// service ports.
const minFreePort = 10000

var (
	portMu     sync.Mutex
	portsGiven = map[int]bool{}
)

func freePort() (int, error) {
	lo, _ := ephemeralRange()
	if lo-minFreePort < 1000 {
		// No room below the ephemeral range: let the kernel pick one.
		return kernelPort()
	}
	portMu.Lock()
	defer portMu.Unlock()
	var lastErr error
	for range 100 {
		p := minFreePort + rand.IntN(lo-minFreePort)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			lastErr = err
			continue
		}
		l.Close()
		portsGiven[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d after 100 tries: %v", minFreePort, lo-1, lastErr)
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listen on 127.0.0.1:0: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralRange is the range the kernel takes local ports from for outgoing connections (and for
// listeners on port 0): Linux's ip_local_port_range, else IANA's 49152-65535, which macOS and Windows
// use.
func ephemeralRange() (lo, hi int) {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if lo, hi, ok := parsePortRange(string(b)); ok {
			return lo, hi
		}
	}
	return 49152, 65535
}

// parsePortRange parses ip_local_port_range: two ports separated by white space, low first.
func parsePortRange(s string) (lo, hi int, ok bool) {
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
