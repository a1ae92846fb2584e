package engine_test

import (
	"os"
	"os/exec"
	"testing"
)

func runCmd(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "AWS_CA_BUNDLE=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}
