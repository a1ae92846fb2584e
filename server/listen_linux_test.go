package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// handOverWarning reads net.ipv4.tcp_migrate_req: 1 needs no warning; 0, a missing file (a kernel
// before 5.14) or an unreadable one each get a warning that names the sysctl.
func TestHandOverWarning(t *testing.T) {
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if w := handOverWarning(write("on", "1\n")); w != "" {
		t.Errorf("tcp_migrate_req=1: warning %q, want none", w)
	}
	for name, path := range map[string]string{
		"off":     write("off", "0\n"),
		"missing": filepath.Join(dir, "absent"),
		"garbage": write("garbage", "x"),
	} {
		w := handOverWarning(path)
		if !strings.Contains(w, "net.ipv4.tcp_migrate_req") || !strings.Contains(w, "reset") {
			t.Errorf("%s: warning %q, want one that names net.ipv4.tcp_migrate_req and the resets", name, w)
		}
	}
	if w := handOverWarning(filepath.Join(dir, "absent")); !strings.Contains(w, "5.14") {
		t.Errorf("no sysctl file: %q, want the kernel version that has it", w)
	}
}
