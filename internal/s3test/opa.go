package s3test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/freeport"
)

var opaTool = &goTool{name: "opa", module: "github.com/open-policy-agent/opa", version: "v1.22.3", script: "install-opa.sh"}

// OPAPath returns the OPA v1.22.3 binary in <repo root>/.tools/bin, building it first with
// scripts/install-opa.sh when it is missing or another version (about 3.5 minutes cold). Safe for
// concurrent use.
func OPAPath() (string, error) { return opaTool.path() }

// OPA is one running Open Policy Agent server on loopback, serving the policy it was started
// with. URL and Addr are read-only; Stop and Restart must not run concurrently with each other.
type OPA struct {
	URL  string // "http://127.0.0.1:PORT"
	Addr string // "127.0.0.1:PORT"

	policy string // the policy file
	mu     sync.Mutex
	proc   *process
}

// StartOPA runs `opa run --server --addr 127.0.0.1:PORT --skip-version-check POLICY` with policy
// (Rego v1) written to a file under t.TempDir, on a free loopback port, and waits until GET
// /health answers 200 (at most 20 s). It builds the binary first if needed (OPAPath). Any failure
// fails the test; the server is stopped in t.Cleanup.
func StartOPA(t testing.TB, policy string) *OPA {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.rego")
	if err := os.WriteFile(file, []byte(policy), 0o644); err != nil {
		t.Fatalf("s3test: StartOPA: %v", err)
	}
	o := &OPA{policy: file}
	deadline := time.Now().Add(startTimeout)
	for attempt := 1; ; attempt++ {
		port, err := freeport.Pick()
		if err != nil {
			t.Fatalf("s3test: StartOPA: %v", err)
		}
		o.Addr = loopback(port)
		o.URL = "http://" + o.Addr
		err = o.launch(deadline)
		if err == nil {
			break
		}
		if !errors.Is(err, errAddrInUse) || attempt >= portAttempts {
			t.Fatalf("s3test: StartOPA: %v", err)
		}
	}
	t.Cleanup(o.Stop)
	return o
}

func (o *OPA) launch(deadline time.Time) error {
	bin, err := OPAPath()
	if err != nil {
		return err
	}
	p, err := startProcess("opa on "+o.Addr, bin, "run", "--server", "--addr", o.Addr,
		"--skip-version-check", "--log-level", "error", o.policy)
	if err != nil {
		return err
	}
	if err := p.waitOK(o.URL+"/health", deadline, plainTransport()); err != nil {
		p.stop()
		return err
	}
	o.mu.Lock()
	o.proc = p
	o.mu.Unlock()
	return nil
}

// Stop stops the server (SIGTERM, SIGKILL after 5 s): an outage of the policy service. Stopping a
// stopped server does nothing.
func (o *OPA) Stop() {
	o.mu.Lock()
	p := o.proc
	o.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Restart stops the server if it runs and starts it again on the same address with the same
// policy, retrying while the address is still taken (at most 20 s). Any failure fails the test.
func (o *OPA) Restart(t testing.TB) {
	t.Helper()
	o.Stop()
	deadline := time.Now().Add(startTimeout)
	for {
		err := o.launch(deadline)
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("s3test: OPA Restart on %s: %v", o.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
