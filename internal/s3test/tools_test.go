package s3test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The versitygw, OPA and OpenFGA install scripts are quick no-ops once their binary is in place,
// and a binary of another module or version is not taken for theirs.
func TestGoToolInstallsIdempotent(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*goTool{versitygwTool, opaTool, openfgaTool} {
		bin, err := g.path()
		if err != nil {
			t.Fatal(err)
		}
		wantQuickNoop(t, root, g.script, g.name+" "+g.version+" already installed: "+bin)
		other := &goTool{name: g.name, module: g.module, version: "v0.0.1"}
		if err := other.check(bin); err == nil || !strings.Contains(err.Error(), "want "+g.module+" v0.0.1") {
			t.Errorf("%s checked as v0.0.1: %v", bin, err)
		}
	}
}

// wantQuickNoop runs scripts/<script> of root with what it installs already present: it must
// succeed within 10 s and say want.
func wantQuickNoop(t *testing.T, root, script, want string) {
	t.Helper()
	start := time.Now()
	out, err := exec.Command("bash", filepath.Join(root, "scripts", script)).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("%s with the install present: %q; want %q", script, out, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("%s with the install present took %v; want a quick no-op", script, d)
	}
}
