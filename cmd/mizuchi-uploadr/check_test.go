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
	if err == nil || !strings.Contains(string(out), bad+":2: ") || !strings.Contains(string(out), "adress") {
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

// -check exits 0 for a valid configuration, 1 for problems (each as file:line: message, all in
// one pass), 2 for a usage error or a file it cannot read.
func TestCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(good, []byte(`server: {max_head_bytes: 64k}
metrics: {address: "127.0.0.1:9999"}
buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
`), 0o600)
	_ = os.WriteFile(bad, []byte(`server:
  event_loops: many
metrics:
  address: not-an-address
buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
    upload: {part_size: 1m}
`), 0o600)
	code := func(args ...string) (int, string) {
		out, err := exec.Command(binPath, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if c, out := code("-check", "-config", good); c != 0 {
		t.Errorf("valid file: exit %d\n%s", c, out)
	}
	c, out := code("-check", "-config", bad)
	if c != 1 {
		t.Errorf("file with problems: exit %d, want 1\n%s", c, out)
	}
	for _, w := range []string{bad + ":2: cannot unmarshal", bad + `:4: metrics.address "not-an-address"`,
		bad + `:9: bucket "uploads": upload.part_size 1048576 is below S3's 5 MiB minimum`} {
		if !strings.Contains(out, w) {
			t.Errorf("-check output lacks %q:\n%s", w, out)
		}
	}
	if c, out := code("-check", "-config", filepath.Join(dir, "missing.yaml")); c != 2 {
		t.Errorf("unreadable file: exit %d, want 2\n%s", c, out)
	}
	if c, out := code("-check", "-no-such-flag"); c != 2 {
		t.Errorf("unknown flag: exit %d, want 2\n%s", c, out)
	}
	if c, out := code("-check"); c != 2 {
		t.Errorf("no configuration: exit %d, want 2\n%s", c, out)
	}
}
