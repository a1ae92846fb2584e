// Package systemd holds the systemd unit of the proxy, mizuchi-uploadr.service, and the tests that
// check it with systemd's own tools.
package systemd

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/server"
)

const (
	unitFile    = "mizuchi-uploadr.service"
	installedAt = "/usr/local/bin/mizuchi-uploadr"
)

// testUnit builds the proxy and writes a copy of the unit whose commands run that binary (verify
// refuses a unit whose ExecStart binary does not exist). It returns the copy's path.
func testUnit(t *testing.T, edit func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	raw, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(raw), installedAt, bin)
	if edit != nil {
		unit = edit(unit)
	}
	path := filepath.Join(dir, unitFile)
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// buildBinary builds the proxy into dir as `make release` does (static: CGO_ENABLED=0, -trimpath).
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "mizuchi-uploadr")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "../../cmd/mizuchi-uploadr")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// analyze runs systemd-analyze with args and returns its combined output and error.
func analyze(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "systemd-analyze", args...).CombinedOutput()
	return string(out), err
}

// TestUnitVerifies runs `systemd-analyze verify` on the unit: it must exit 0 and print nothing (any
// line it prints is a warning about the unit). A broken copy shows the tool does report problems.
func TestUnitVerifies(t *testing.T) {
	path := testUnit(t, nil)
	out, err := analyze(t, "verify", path)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify %s: %v\n%s", unitFile, err, out)
	}

	broken := testUnit(t, func(u string) string {
		return strings.Replace(u, "NoNewPrivileges=yes", "NoNewPrivileges=yes\nNoSuchSetting=1\nTimeoutStopSec=soon", 1)
	})
	out, _ = analyze(t, "verify", broken)
	for _, want := range []string{"NoSuchSetting", "soon"} {
		if !strings.Contains(out, want) {
			t.Errorf("systemd-analyze verify of a broken unit does not mention %s; the check would miss problems:\n%s", want, out)
		}
	}
}

// TestUnitSecurityExposure runs `systemd-analyze security --offline=true` on the unit and expects
// an overall exposure of at most 2.0 ("OK" is below 4.0; the hardening options keep it near 1.7).
func TestUnitSecurityExposure(t *testing.T) {
	path := testUnit(t, nil)
	out, err := analyze(t, "security", "--offline=true", "--no-pager", path)
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	level, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure level %.1f", level)
	if level > 2.0 {
		t.Errorf("exposure level %.1f > 2.0:\n%s", level, out)
	}
}

// TestUnitSettings checks what the proxy needs from its supervisor, setting by setting.
func TestUnitSettings(t *testing.T) {
	s := readUnit(t)
	want := map[string]string{
		"Type":                    "simple",
		"ExecStart":               installedAt + " -config /etc/mizuchi-uploadr/config.yaml",
		"ExecReload":              "/bin/kill -HUP $MAINPID", // SIGHUP reloads the configuration
		"KillSignal":              "SIGTERM",                 // SIGTERM drains
		"DynamicUser":             "yes",
		"AmbientCapabilities":     "CAP_SYS_RESOURCE", // 1 MiB pipes past fs.pipe-user-pages-soft
		"CapabilityBoundingSet":   "CAP_SYS_RESOURCE",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"SystemCallArchitectures": "native",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"RestrictNamespaces":      "yes",
		"SystemCallFilter":        "@system-service ~@privileged",
		"SystemCallErrorNumber":   "EPERM",
		"ProtectKernelTunables":   "yes",
		"ProtectControlGroups":    "yes",
		"RestrictSUIDSGID":        "yes",
		"RestrictRealtime":        "yes",
		"ProtectKernelModules":    "yes",
		"ProtectClock":            "yes",
		"ProtectHostname":         "yes",
		"ProtectKernelLogs":       "yes",
		"Restart":                 "on-failure",
		"WantedBy":                "multi-user.target",
		"EnvironmentFile":         "-/etc/mizuchi-uploadr/env",
		"LimitNOFILE":             "1048576",
		"UMask":                   "0077",
		"ProtectProc":             "invisible",
		"RemoveIPC":               "yes",
		"After":                   "network-online.target",
		"Wants":                   "network-online.target",
		"Description":             "Mizuchi Uploadr, an upload-only S3 proxy",
		"RestartSec":              "2s",
		"TimeoutStopSec":          "45s",
	}
	for k, v := range want {
		if got := s[k]; got != v {
			t.Errorf("%s=%q; want %q", k, got, v)
		}
	}
	// The supervisor must wait for the drain: TimeoutStopSec above server.drain_timeout's default
	// plus room for the aborts at the deadline.
	stop, err := time.ParseDuration(s["TimeoutStopSec"])
	if err != nil {
		t.Fatalf("TimeoutStopSec=%q: %v", s["TimeoutStopSec"], err)
	}
	if min := server.DefaultDrainTimeout + 10*time.Second; stop < min {
		t.Errorf("TimeoutStopSec=%v; want at least the default drain timeout + 10s = %v", stop, min)
	}
	for k := range s {
		if _, ok := want[k]; !ok {
			t.Errorf("setting %s is not checked by this test: add it to want", k)
		}
	}
}

// readUnit parses the unit's settings (comments dropped; a repeated key's values joined by spaces).
func readUnit(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: not a setting: %q", unitFile, line)
		}
		if s[k] != "" {
			v = s[k] + " " + v
		}
		s[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}
