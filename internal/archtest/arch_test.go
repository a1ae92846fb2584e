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
		// The authorization clients: stdlib net/http and their shared HTTP helper (itself a leaf),
		// no other project package, no metrics, no logging.
		"authz/opa":                 {module + "/authz/internal/httpclient"},
		"authz/openfga":             {module + "/authz/internal/httpclient"},
		"authz/internal/httpclient": nil,
		"uploadid":                  nil,
		"proxyproto":                nil,
		"cors":                      nil,
		"postform":                  nil,
		// OpenTelemetry: the SDK lives here only (engine sees its Tracer interface, server adapts);
		// its OTLP/HTTP exporter is its own, on net/http (not otlptracehttp, which links gRPC).
		"tracing": {"go.opentelemetry.io/otel/attribute", "go.opentelemetry.io/otel/codes",
			"go.opentelemetry.io/otel/sdk/resource",
			"go.opentelemetry.io/otel/sdk/trace", "go.opentelemetry.io/otel/trace"},
	}
	for leaf, allowed := range leaves {
		for _, imp := range imports(t, filepath.Join(r, leaf)) {
			std := !strings.Contains(strings.Split(imp, "/")[0], ".")
			ok := std
			for _, a := range allowed {
				ok = ok || imp == a
			}
			if !ok {
				t.Errorf("leaf %s imports %s; leaves use the standard library only (transfer: x/sys/unix, jwtauth: golang-jwt, authz clients: authz/internal/httpclient, tracing: OpenTelemetry)", leaf, imp)
			}
		}
	}
	for _, pkg := range []string{"httpparse", "s3sig", "transfer", "jwtauth", "policy", "uploadid", "proxyproto", "postform", "cors", "tracing", "authz/opa", "authz/openfga", "server", "engine", "cmd/mizuchi-uploadr"} {
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
			if pkg == "engine" && (strings.HasPrefix(imp, "go.opentelemetry.io/") || imp == module+"/tracing") {
				t.Errorf("engine imports %s; it traces through its Tracer interface (server adapts package tracing)", imp)
			}
		}
	}
}
