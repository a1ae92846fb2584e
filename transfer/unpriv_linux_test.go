package transfer_test

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mizuchi/uploadr/transfer"
)

const unprivEnv = "TRANSFER_TEST_UNPRIVILEGED_HELPER"

// TestPipeBudgetUnprivileged re-executes this test binary as an
// unprivileged user (uid/gid 65534 when running as root, else the current
// user) to run TestHelperUnprivileged, which exhausts the per-user pipe
// budget and checks that Move then copies and reports PipeTooSmall.
func TestPipeBudgetUnprivileged(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	args := []string{"-test.run=^TestHelperUnprivileged$", "-test.v", "-test.count=1"}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), unprivEnv+"=1")
	if os.Getuid() == 0 {
		// uid 65534 must be able to read and run the binary: copy it
		// into a world-readable directory.
		dir, err := os.MkdirTemp("", "transfer-unpriv-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "transfer.test")
		if err := copyFile(bin, exe, 0o755); err != nil {
			t.Fatalf("copying the test binary: %v", err)
		}
		cmd = exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), unprivEnv+"=1")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}},
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unprivileged helper (uid %d) failed: %v\n%s", childUID(cmd), err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestHelperUnprivileged") {
		t.Fatalf("unprivileged helper did not report a pass:\n%s", out)
	}
	t.Logf("helper output:\n%s", out)
}

func childUID(cmd *exec.Cmd) int {
	if cmd.SysProcAttr != nil && cmd.SysProcAttr.Credential != nil {
		return int(cmd.SysProcAttr.Credential.Uid)
	}
	return os.Getuid()
}

func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestHelperUnprivileged is the child half of TestPipeBudgetUnprivileged;
// run on its own (without the environment flag) it has nothing to do.
func TestHelperUnprivileged(t *testing.T) {
	if os.Getenv(unprivEnv) != "1" {
		t.Log("helper process for TestPipeBudgetUnprivileged; nothing to do here")
		return
	}
	if os.Geteuid() == 0 {
		t.Fatal("helper runs as root; want an unprivileged user")
	}
	// With the budget intact an unprivileged process splices through a
	// full-size pipe.
	m := transfer.NewMover(transfer.Options{})
	moveAndCheck(t, m, newRig(t), transfer.ModeSplice, testPrefix, 2<<20+5, 0, 0, 0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	hogged := exhaustPipeBudget(t)
	t.Logf("uid %d: budget exhausted after %d enlarged pipes", os.Getuid(), hogged)

	m = transfer.NewMover(transfer.Options{})
	defer m.Close()
	r := newRig(t)
	const size = 3<<20 + 1
	b := body(size)
	sent := send(r.client, 0, 0, b, testTrailer)
	got := sink(r.up, 0)
	res, err := m.Move(context.Background(), r.dst, r.src, testPrefix, size)
	if err != nil {
		t.Fatalf("Move = %v", err)
	}
	if !res.PipeTooSmall || res.Mode != transfer.ModeCopy {
		t.Errorf("Result = %+v; want PipeTooSmall and Mode copy", res)
	}
	if res.Copied != int64(len(testPrefix)+size) || res.Spliced != 0 {
		t.Errorf("Copied, Spliced = %d, %d; want %d, 0", res.Copied, res.Spliced, len(testPrefix)+size)
	}
	if st := m.Stats(); st.PipeSize >= transfer.DefaultMinPipeSize || st.PipesIdle != 0 || st.PipesInUse != 0 {
		t.Errorf("Stats = %+v; want PipeSize < %d, no pipes kept", st, transfer.DefaultMinPipeSize)
	}
	readTrailer(t, r.src, testTrailer)
	<-sent
	r.dst.Close()
	if s := <-got; s.n != int64(len(testPrefix)+size) || s.sum != digest(testPrefix, b) {
		t.Errorf("receiver got %d bytes; want %d, intact", s.n, len(testPrefix)+size)
	}
}

// exhaustPipeBudget opens pipes enlarged to 1 MiB (then 256 KiB) until the
// kernel refuses both sizes, keeping them open until the test ends, and
// returns how many it enlarged.
func exhaustPipeBudget(t *testing.T) int {
	var fds []int
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	enlarged := 0
	for range 4096 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatalf("pipe2 after %d pipes: %v", len(fds)/2, err)
		}
		fds = append(fds, p[0], p[1])
		_, err1 := unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, 1<<20)
		if err1 == nil {
			enlarged++
			continue
		}
		if _, err2 := unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, transfer.DefaultMinPipeSize); err2 == nil {
			enlarged++
			continue
		}
		if !errors.Is(err1, unix.EPERM) {
			t.Fatalf("F_SETPIPE_SZ = %v; want EPERM once the budget is spent", err1)
		}
		return enlarged
	}
	t.Fatalf("F_SETPIPE_SZ never refused after %d pipes; is fs.pipe-user-pages-soft 0 (unlimited)?", len(fds)/2)
	return 0
}
