package s3test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mizuchi/uploadr/internal/freeport"
)

// fakeRoot makes a repository root whose scripts/install-versitygw.sh is script.
func fakeRoot(t *testing.T, script string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "scripts", "install-versitygw.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestEnsureVersitygwRunsInstallScript(t *testing.T) {
	t.Parallel()
	real, err := VersitygwPath()
	if err != nil {
		t.Fatal(err)
	}
	// The stub "installs" by copying the real binary, so the check after it passes.
	root := fakeRoot(t, "set -e\nmkdir -p .tools/bin\ncp '"+real+"' .tools/bin/versitygw\necho ran >> ran.log\n")
	for range 2 { // the second call finds the binary and does not run the script
		got, err := versitygwTool.ensure(root)
		if err != nil {
			t.Fatalf("ensureVersitygw: %v", err)
		}
		if want := filepath.Join(root, ".tools", "bin", "versitygw"); got != want {
			t.Fatalf("ensureVersitygw: got %s; want %s", got, want)
		}
	}
	if log, _ := os.ReadFile(filepath.Join(root, "ran.log")); string(log) != "ran\n" {
		t.Errorf("install script runs: got %q; want exactly one", log)
	}
}

func TestEnsureVersitygwFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, script, errHas string
	}{
		{"script fails", "echo 'go: module lookup disabled' >&2\nexit 3\n", "go: module lookup disabled"},
		{"script installs nothing", "exit 0\n", "after"},
		{"script installs a non-binary", "mkdir -p .tools/bin && printf '#!/bin/sh\\n' > .tools/bin/versitygw && chmod +x .tools/bin/versitygw\n", "after"},
	} {
		_, err := versitygwTool.ensure(fakeRoot(t, tc.script))
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: got %v; want an error containing %q", tc.name, err, tc.errHas)
		}
	}
}

// A port taken between the pick and versitygw's bind is retried with a new one.
func TestStartRetriesTakenPort(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var calls atomic.Int32
	pick := func() (int, error) {
		if calls.Add(1) == 1 {
			return busy.Addr().(*net.TCPAddr).Port, nil
		}
		return freeport.Pick()
	}
	s, err := start(t.TempDir(), pick)
	if err != nil {
		t.Fatalf("start with a taken first port: %v", err)
	}
	defer s.stop()
	if got := calls.Load(); got != 2 {
		t.Errorf("ports picked: got %d; want 2", got)
	}
	if s.Addr == busy.Addr().String() {
		t.Errorf("server on the taken port %s", s.Addr)
	}
	s.CreateBucket(t, "retry")
}

// A server that cannot start fails with what it printed, not with a bare timeout.
func TestStartFailureReportsOutput(t *testing.T) {
	t.Parallel()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := start(notADir, freeport.Pick)
	if err == nil || !strings.Contains(err.Error(), "exited before it was healthy") {
		t.Fatalf("start on a data dir that is a file: got %v; want the exit and the server's output", err)
	}
	t.Logf("error as reported: %v", err)
}
