//go:build linux

package procstat

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestReadSelf(t *testing.T) {
	before, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	buf := make([]byte, 32<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	after, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Sub(before).CPUSeconds; d <= 0 || d > 5 {
		t.Errorf("CPU seconds of 50 ms of spinning: got %v; want (0, 5]", d)
	}
	if after.RSS < 32<<20 || after.PeakRSS < after.RSS {
		t.Errorf("RSS %d, peak %d after touching 32 MiB: want RSS >= 32 MiB and peak >= RSS", after.RSS, after.PeakRSS)
	}
	buf = nil
	_ = buf
}

func TestChildrenAndReset(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	kids, err := Children(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range kids {
		found = found || k == cmd.Process.Pid
	}
	if !found {
		t.Errorf("Children(self) = %v; want it to include %d", kids, cmd.Process.Pid)
	}
	if err := ResetPeak(cmd.Process.Pid); err != nil {
		t.Errorf("ResetPeak: %v", err)
	}
	if _, err := Read(cmd.Process.Pid, os.Getpid()); err != nil {
		t.Errorf("Read(child, self): %v", err)
	}
}

func TestStatFieldsOddComm(t *testing.T) {
	f, err := statFields([]byte("42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 7 9 0 0 20 0 1 0 1 1 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(f[14-3]) + "," + string(f[15-3]); got != "7,9" {
		t.Errorf("utime,stime = %s; want 7,9", got)
	}
}
