package archtest

import (
	"go/build"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/mizuchi/uploadr"

func root(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// imports lists the non-test imports of the package in dir.
func imports(t *testing.T, dir string) []string {
	t.Helper()
	p, err := build.ImportDir(dir, 0)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	return p.Imports
}

func TestImportRules(t *testing.T) {
	r := root(t)
	leaves := map[string][]string{
		"httpparse": nil,
		"s3sig":     nil,
		"transfer":  {"golang.org/x/sys/unix"},
		"jwtauth":   {"github.com/golang-jwt/jwt/v5"},
		"policy":    nil,
		// The authorization clients: stdlib net/http, no project package, no metrics, no logging.
		"authz/opa":     nil,
		"authz/openfga": nil,
		"uploadid":      nil,
		"proxyproto":    nil,
		"postform":      nil,
		"cors":          nil,
	}
	for leaf, allowed := range leaves {
		for _, imp := range imports(t, filepath.Join(r, leaf)) {
			std := !strings.Contains(strings.Split(imp, "/")[0], ".")
			ok := std
			for _, a := range allowed {
				ok = ok || imp == a
			}
			if !ok {
				t.Errorf("leaf %s imports %s; leaves use the standard library only (transfer: x/sys/unix, jwtauth: golang-jwt)", leaf, imp)
			}
		}
	}
	for _, pkg := range []string{"httpparse", "s3sig", "transfer", "jwtauth", "policy", "uploadid", "proxyproto", "postform", "cors", "authz/opa", "authz/openfga", "server", "engine", "cmd/mizuchi-uploadr"} {
		for _, imp := range imports(t, filepath.Join(r, pkg)) {
			if strings.HasPrefix(imp, "github.com/panjf2000/gnet") && pkg != "engine" {
				t.Errorf("%s imports gnet; only engine may", pkg)
			}
			if imp == module+"/server" && pkg != "cmd/mizuchi-uploadr" {
				t.Errorf("%s imports server; only the command may", pkg)
			}
			if pkg == "engine" && imp == module+"/server" {
				t.Errorf("engine imports server")
			}
		}
	}
}
