package s3test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The OPA and OpenFGA install scripts are quick no-ops once their binary is in place, and a
// binary of another module or version is not taken for theirs.
func TestPolicyServerInstallsIdempotent(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*goTool{opaTool, openfgaTool} {
		bin, err := g.path()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		out, err := exec.Command("bash", filepath.Join(root, "scripts", g.script)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", g.script, err, out)
		}
		if !strings.Contains(string(out), g.name+" "+g.version+" already installed: "+bin) {
			t.Errorf("%s with the binary present: %q; want \"already installed\"", g.script, out)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s with the binary present took %v; want a quick no-op", g.script, d)
		}
		other := &goTool{name: g.name, module: g.module, version: "v0.0.1"}
		if err := other.check(bin); err == nil || !strings.Contains(err.Error(), "want "+g.module+" v0.0.1") {
			t.Errorf("%s checked as v0.0.1: %v", bin, err)
		}
	}
}
