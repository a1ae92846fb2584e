package s3test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// StartHAProxy runs Debian's haproxy (scripts/setup.sh installs it) in the foreground with the
// configuration config returns for a frontend address on a free loopback port, waits until that
// address accepts connections, and stops it when the test ends (its output is logged if the test
// failed). It returns the frontend address.
func StartHAProxy(t testing.TB, config func(front string) string) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatalf("haproxy is not installed (scripts/setup.sh installs Debian's package): %v", err)
	}
	front := loopback(FreePort(t))
	cfgFile := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfgFile, []byte(config(front)), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := spawn("haproxy on "+front, exec.Command(bin, "-db", "-f", cfgFile), &tailBuffer{max: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("haproxy said:\n%s", p.output.Bytes())
		}
	})
	if err := waitListening(p, front, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return front
}

// waitListening polls addr until it accepts a connection, p exits or timeout passes.
func waitListening(p *process, addr string, timeout time.Duration) error {
	for deadline := time.Now().Add(timeout); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v):\n%s", p.name, p.waitErr, tail(p.output.Bytes(), 4096))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %v:\n%s", p.name, timeout, tail(p.output.Bytes(), 4096))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
