// Package deploy holds what ships the proxy — the systemd unit (systemd/), the container image
// (container/) — and the test of `make release`.
package deploy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMakeRelease runs `make release` into a temporary dist directory and checks its output: one
// static, stripped, trimmed linux binary per architecture (no PT_INTERP, no DT_NEEDED, built with
// CGO_ENABLED=0 and -trimpath), the LICENSE, the licenses of every linked module, and a SHA256SUMS
// file that matches every file.
func TestMakeRelease(t *testing.T) {
	dist := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "-C", "..", "release", "DIST="+dist)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}

	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for arch, machine := range machines {
		bin := filepath.Join(dist, "mizuchi-uploadr-linux-"+arch)
		for _, p := range staticProblems(t, bin, machine) {
			t.Errorf("%s: %s", bin, p)
		}
		mod, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
		if err != nil {
			t.Fatalf("go version -m %s: %v\n%s", bin, err, mod)
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath=true", "GOOS=linux", "GOARCH=" + arch} {
			if !strings.Contains(string(mod), want) {
				t.Errorf("%s: build settings lack %s:\n%s", bin, want, mod)
			}
		}
	}
	// The inspection itself tells a dynamic binary: the system's shell is one.
	if host := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]; host != 0 {
		if p := staticProblems(t, "/bin/sh", host); len(p) == 0 {
			t.Errorf("staticProblems finds nothing wrong with /bin/sh, a dynamically linked binary")
		}
	}

	sums := readSums(t, filepath.Join(dist, "SHA256SUMS"))
	entries, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "SHA256SUMS" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dist, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(raw)
		if got, ok := sums[e.Name()]; !ok {
			t.Errorf("SHA256SUMS has no line for %s", e.Name())
		} else if got != hex.EncodeToString(sum[:]) {
			t.Errorf("SHA256SUMS: %s %s; the file's is %x", e.Name(), got, sum)
		}
		delete(sums, e.Name())
	}
	for name := range sums {
		t.Errorf("SHA256SUMS names %s, which is not in dist", name)
	}
	for _, name := range []string{"mizuchi-uploadr-linux-amd64", "mizuchi-uploadr-linux-arm64", "LICENSE", "THIRD-PARTY-LICENSES.txt"} {
		if _, err := os.Stat(filepath.Join(dist, name)); err != nil {
			t.Errorf("dist lacks %s", name)
		}
	}

	// Every module linked into the binary has its license text in THIRD-PARTY-LICENSES.txt.
	third, err := os.ReadFile(filepath.Join(dist, "THIRD-PARTY-LICENSES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	mods, err := exec.Command("go", "version", "-m", filepath.Join(dist, "mizuchi-uploadr-linux-amd64")).Output()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(mods), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "dep" {
			n++
			if !strings.Contains(string(third), "==== "+f[1]+"@"+f[2]+" ") {
				t.Errorf("THIRD-PARTY-LICENSES.txt lacks %s %s", f[1], f[2])
			}
		}
	}
	if n == 0 {
		t.Errorf("go version -m lists no dependency:\n%s", mods)
	}
}

// staticProblems lists why the ELF file at path is not a stripped static executable for machine.
func staticProblems(t *testing.T, path string, machine elf.Machine) []string {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	var out []string
	if f.Machine != machine {
		out = append(out, fmt.Sprintf("machine %v; want %v", f.Machine, machine))
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			out = append(out, "has a PT_INTERP segment: dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		out = append(out, fmt.Sprintf("needs shared libraries %v (%v)", libs, err))
	}
	if f.Section(".symtab") != nil {
		out = append(out, "has a symbol table: not stripped (-s)")
	}
	return out
}

// readSums parses a sha256sum file: file name -> hex digest.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("SHA256SUMS: malformed line %q", sc.Text())
		}
		sums[name] = sum
	}
	return sums
}
