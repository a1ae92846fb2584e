package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// -check validates an authz block and warns (exit 0) about an authorization service it cannot
// connect to; a reachable one gets no warning; a bad block is an error.
func TestCheckAuthz(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	dir := t.TempDir()
	write := func(name, authz string) string {
		p := filepath.Join(dir, name)
		_ = os.WriteFile(p, []byte(`buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
    authz: `+authz+`
`), 0o600)
		return p
	}
	run := func(path string) (string, error) {
		cmd := exec.Command(binPath, "-check", "-config", path)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(write("live.yaml", `{opa: {url: "http://`+l.Addr().String()+`"}}`))
	if err != nil || !strings.Contains(out, "configuration ok") || strings.Contains(out, "warning") {
		t.Errorf("-check with a reachable OPA: %v\n%s", err, out)
	}
	out, err = run(write("dead.yaml", `{openfga: {url: "http://`+deadAddr+`", store_id: 01HSTORE}}`))
	if err != nil || !strings.Contains(out, "configuration ok") ||
		!strings.Contains(out, "warning: authorization service http://"+deadAddr+" unreachable") {
		t.Errorf("-check with an unreachable OpenFGA: %v\n%s", err, out)
	}
	out, err = run(write("bad.yaml", `{opa: {url: "http://`+deadAddr+`", path: "no-dashes"}, openfga: {url: x}}`))
	if err == nil || !strings.Contains(out, "authz.opa and authz.openfga: choose one") || !strings.Contains(out, `segment "no-dashes" is not a Rego identifier`) {
		t.Errorf("-check with a bad authz block: %v\n%s", err, out)
	}
}
