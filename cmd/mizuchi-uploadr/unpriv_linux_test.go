package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// holdPipes opens pipes sized size until F_SETPIPE_SZ is refused and returns how many it got.
func holdPipes(size int) (int, error) {
	n := 0
	for n < 4096 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return n, err
		}
		if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, size); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// The proxy running as an unprivileged user whose pipe budget is spent falls back to the copy path,
// counts it, and still stores the object intact.
func TestUnprivilegedProxyFallsBackToCopy(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test runs the proxy as uid 65534 and must run as root (CI runs as root)")
	}
	cred := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}

	// The hog: this test binary, re-executed as uid 65534, holds 1 MiB pipes until refused.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := publicTempDir(t)
	exe := filepath.Join(dir, "hog.test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	hog := exec.Command(exe)
	hog.Env = append(os.Environ(), "MIZUCHI_PIPE_HOG=1")
	hog.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	stdin, _ := hog.StdinPipe()
	stdout, _ := hog.StdoutPipe()
	if err := hog.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = hog.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "holding ") {
		t.Fatalf("hog: %q %v", line, err)
	}
	t.Logf("hog: %s", strings.TrimSpace(line))
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	up := s3test.Start(t)
	up.CreateBucket(t, "unpriv")
	r := startBinary(t, up, "unpriv", nil, cred)
	const size = 3 << 20
	status, body := streamPut(t, r.addr, "fallback", size)
	if status != 200 {
		t.Fatalf("PUT as unprivileged user: %d %s", status, body)
	}
	if n := r.metric(t, `mizuchi_transfer_pipe_too_small_total`); n < 1 {
		t.Errorf("mizuchi_transfer_pipe_too_small_total = %v; want >= 1", n)
	}
	if spliced := r.metric(t, `mizuchi_transfer_bytes_total{mode="splice"}`); spliced != 0 {
		t.Errorf("spliced %v bytes with an exhausted pipe budget; want 0", spliced)
	}
	if copied := r.metric(t, `mizuchi_transfer_bytes_total{mode="copy"}`); copied != size {
		t.Errorf("copied %v bytes; want %d", copied, size)
	}
	got, _ := up.GetObject(t, "unpriv", "fallback")
	if int64(len(got)) != size {
		t.Fatalf("stored %d bytes; want %d", len(got), size)
	}
	want, _ := io.ReadAll(io.LimitReader(&pattern{}, size))
	if string(got) != string(want) {
		t.Fatal("stored body differs")
	}
}
