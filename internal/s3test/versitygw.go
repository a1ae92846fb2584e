package s3test

import (
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

const (
	versitygwModule  = "github.com/versity/versitygw"
	versitygwVersion = "v1.8.0"
)

var (
	installMu  sync.Mutex
	binaryPath string // set once VersitygwPath succeeded
)

// VersitygwPath returns the absolute path of the versitygw v1.8.0 binary in <repo root>/.tools/bin,
// building it first with scripts/install-versitygw.sh when it is missing or another version (about
// 3 minutes cold; the script holds a file lock, so parallel test binaries build it once). The repo
// root is the nearest directory at or above the working directory that holds go.mod. The result is
// cached for the life of the process. Safe for concurrent use.
func VersitygwPath() (string, error) {
	installMu.Lock()
	defer installMu.Unlock()
	if binaryPath != "" {
		return binaryPath, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin, err := ensureVersitygw(root)
	if err != nil {
		return "", err
	}
	binaryPath = bin
	return bin, nil
}

// ensureVersitygw returns root/.tools/bin/versitygw, running root/scripts/install-versitygw.sh
// first when that is not the pinned version.
func ensureVersitygw(root string) (string, error) {
	bin := filepath.Join(root, ".tools", "bin", "versitygw")
	err := checkVersitygw(bin)
	if err == nil {
		return bin, nil
	}
	script := filepath.Join(root, "scripts", "install-versitygw.sh")
	cmd := exec.Command("bash", script)
	cmd.Dir = root
	out, rerr := cmd.CombinedOutput()
	if rerr != nil {
		return "", fmt.Errorf("s3test: %s (binary: %v): %w\n%s", script, err, rerr, tail(out, 4096))
	}
	if err := checkVersitygw(bin); err != nil {
		return "", fmt.Errorf("s3test: after %s: %w", script, err)
	}
	return bin, nil
}

// checkVersitygw reports whether bin is an executable Go binary whose main module is versitygw at
// the pinned version (the build info `go version -m` prints).
func checkVersitygw(bin string) error {
	st, err := os.Stat(bin)
	if err != nil {
		return err
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", bin)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	if info.Main.Path != versitygwModule || info.Main.Version != versitygwVersion {
		return fmt.Errorf("%s is %s %s, want %s %s", bin, info.Main.Path, info.Main.Version,
			versitygwModule, versitygwVersion)
	}
	return nil
}

// repoRoot walks up from the working directory to the first directory containing go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("s3test: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("s3test: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("s3test: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// tail returns at most the last n bytes of b, trimmed of surrounding space.
func tail(b []byte, n int) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = append([]byte("..."), b[len(b)-n:]...)
	}
	return b
}
