package main

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// runLocal starts scripts/run-local.sh (`make run`) with the test's binary, its own state
// directory and free ports.
func runLocal(t *testing.T, proxy, admin string) *proc {
	t.Helper()
	cmd := exec.Command("bash", "../../scripts/run-local.sh")
	cmd.Env = cleanEnv("MIZUCHI_BIN="+binPath, "RUN_DIR="+t.TempDir(), "PROXY_ADDRESS="+proxy, "ADMIN_ADDRESS="+admin,
		"VERSITYGW_PORT="+strings.Split(mustFreeAddr(t), ":")[1], "READY_TIMEOUT=20")
	return startProc(t, "run-local.sh", cmd, proxy, admin, true)
}

func mustFreeAddr(t *testing.T) string { a, _ := addrs(t); return a }

// `make run` prints its banner only once the proxy answers /readyz with 200, and then uploads work.
func TestRunLocalBannerAfterReady(t *testing.T) {
	proxy, admin := addrs(t)
	p := runLocal(t, proxy, admin)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.stdout.String(), "Press Ctrl-C to stop.") {
		select {
		case <-p.exited:
			t.Fatalf("run-local.sh exited %d without its banner", p.exitCode)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no banner within 60s")
		}
		if code, _ := p.get(t, "/readyz"); code == 200 {
			// Ready: the banner follows within its next poll (100 ms); no banner before this point.
			deadline = time.Now().Add(5 * time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := p.get(t, "/readyz"); code != 200 {
		t.Fatalf("banner printed while /readyz answers %d %s", code, body)
	}
	resp, body, err := dialClient(t, proxy).putAs("uploads", "run-local/one", 1000, "mizuchi-client", "mizuchi-client-secret", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("PUT through make run's proxy: %v %v %s", err, resp, body)
	}
}

// When the proxy cannot start (its address is taken), `make run` says so and exits 1, no banner.
func TestRunLocalNoBannerWhenTheProxyFails(t *testing.T) {
	s3test.Start(t) // versitygw is built (the script would build it, ~3 min, on a fresh machine)
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, admin := addrs(t)
	p := runLocal(t, held.Addr().String(), admin)
	if code := p.wait(t, 60*time.Second); code != 1 {
		t.Errorf("run-local.sh exit %d, want 1", code)
	}
	if strings.Contains(p.stdout.String(), "Press Ctrl-C") {
		t.Errorf("banner printed although the proxy did not start:\n%s", p.stdout.String())
	}
	if e := p.stderr.String(); !strings.Contains(e, "address already in use") || !strings.Contains(e, "exited (1) before it was ready") {
		t.Errorf("run-local.sh stderr does not say why:\n%s", e)
	}
}
