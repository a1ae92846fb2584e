package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(good, []byte(`buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: "${SK}"}
    auth: none
`), 0o600)
	_ = os.WriteFile(bad, []byte(`server:
  adress: x
`), 0o600)
	cmd := exec.Command(binPath, "-check", "-config", good)
	cmd.Env = append(os.Environ(), "SK=secret")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "configuration ok") ||
		!strings.Contains(string(out), "bucket uploads -> bucket b at http://127.0.0.1:1 (auth none)") ||
		!strings.Contains(string(out), "any other bucket: 403 AccessDenied") {
		t.Errorf("-check good config: %v %s", err, out)
	}
	out, err := exec.Command(binPath, "-check", "-config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "line 2") || !strings.Contains(string(out), "adress") {
		t.Errorf("-check bad config: err %v, output %s; want a failure naming line 2 and the key", err, out)
	}
	// A missing secret variable is named, its value never printed.
	out, err = exec.Command(binPath, "-check", "-config", good).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "SK is not set") {
		t.Errorf("-check without SK: err %v, output %s", err, out)
	}
	out, _ = exec.Command(binPath, "-h").CombinedOutput()
	for _, f := range []string{"-listen", "-pipe-size", "-zero-copy", "-event-loops", "-max-head-bytes", "-body-stall-timeout"} {
		if !strings.Contains(string(out), f) {
			t.Errorf("-h does not list %s", f)
		}
	}
}
