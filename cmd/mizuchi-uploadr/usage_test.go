package main

import (
	"flag"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/server"
)

// -version prints what -ldflags -X stamped into internal/buildinfo, and the Go version.
func TestVersionFlag(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mizuchi-uploadr")
	ld := "-X github.com/mizuchi/uploadr/internal/buildinfo.Version=v9.8.7-test -X github.com/mizuchi/uploadr/internal/buildinfo.Revision=0123abcd"
	if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-version").Output()
	if err != nil {
		t.Fatalf("-version: %v", err)
	}
	want := "mizuchi-uploadr v9.8.7-test (revision 0123abcd, " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if string(out) != want {
		t.Errorf("-version printed %q, want %q", out, want)
	}
	// The Makefile stamps git describe and rev-parse into the same variables.
	mk, err := exec.Command("make", "-C", "../..", "-n", "build").Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	for _, v := range []string{"internal/buildinfo.Version=", "internal/buildinfo.Revision="} {
		if !strings.Contains(string(mk), v) {
			t.Errorf("make build does not stamp %s:\n%s", v, mk)
		}
	}
	rev, _ := exec.Command("git", "rev-parse", "HEAD").Output()
	if r := strings.TrimSpace(string(rev)); r != "" && !strings.Contains(string(mk), "Revision="+r) {
		t.Errorf("make build does not stamp revision %s:\n%s", r, mk)
	}
}

// -h lists every registered flag exactly once, each under a topic heading, with its default.
func TestHelpGroupsEveryFlag(t *testing.T) {
	out, err := exec.Command(binPath, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v\n%s", err, out)
	}
	help := string(out)
	for _, g := range []string{"Listener:", "Limits and client timeouts:", "Upstream:", "Zero-copy (splice) and the copy path:", "TLS (https listener):",
		"Auth: config-less start", "Policy and authorization", "Metrics and admin listener:", "Logs:"} {
		if !strings.Contains(help, "\n"+g) {
			t.Errorf("-h has no group %q", g)
		}
	}
	if strings.Contains(help, "\nOther:") {
		t.Errorf("-h has flags outside the groups (server/usage.go flagGroups):\n%s", help[strings.Index(help, "\nOther:"):])
	}
	// Which group each flag is printed under.
	group := map[string]string{}
	count := map[string]int{}
	cur := ""
	flagLine := regexp.MustCompile(`^  -([a-z0-9-]+)`)
	for _, line := range strings.Split(help, "\n") {
		if strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") {
			cur = line
			continue
		}
		if m := flagLine.FindStringSubmatch(line); m != nil {
			count[m[1]]++
			group[m[1]] = cur
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server.RegisterFlags(fs)
	n := 0
	fs.VisitAll(func(fl *flag.Flag) {
		n++
		switch {
		case count[fl.Name] != 1:
			t.Errorf("-%s appears %d times in -h", fl.Name, count[fl.Name])
		case group[fl.Name] == "" || group[fl.Name] == "Usage:":
			t.Errorf("-%s is not under a group", fl.Name)
		}
	})
	if len(count) != n {
		t.Errorf("-h lists %d flags, %d are registered", len(count), n)
	}
	for _, d := range []string{`-listen address` + "\n" + `    	listen address (host:port) for S3 clients (server.address) (default "0.0.0.0:8080")`,
		"(default 1MiB)", "(default 30s)"} {
		if !strings.Contains(help, d) {
			t.Errorf("-h does not show %q", d)
		}
	}
	if group["reuse-port"] != "Listener:" || group["pprof"] != "Metrics and admin listener:" || group["log-level"] != "Logs:" ||
		group["pipe-size"] != "Zero-copy (splice) and the copy path:" || group["tls-cert"] != "TLS (https listener):" || group["dial-timeout"] != "Upstream:" {
		t.Errorf("flags in the wrong group: %v", group)
	}
}
