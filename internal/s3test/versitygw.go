package s3test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const (
	versitygwModule  = "github.com/versity/versitygw"
	versitygwVersion = "v1.8.0"
)

var versitygwTool = &goTool{name: "versitygw", module: versitygwModule, version: versitygwVersion, script: "install-versitygw.sh"}

// VersitygwPath returns the absolute path of the versitygw v1.8.0 binary in <repo root>/.tools/bin,
// building it first with scripts/install-versitygw.sh when it is missing or another version (about
// 3 minutes cold; the script holds a file lock, so parallel test binaries build it once). The repo
// root is the nearest directory at or above the working directory that holds go.mod. The result is
// cached for the life of the process. Safe for concurrent use.
func VersitygwPath() (string, error) { return versitygwTool.path() }

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
