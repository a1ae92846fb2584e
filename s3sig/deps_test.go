package s3sig_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestStdlibOnly keeps s3sig a leaf: its non-test code imports the standard
// library only (the aws-sdk-go-v2 signer is a test oracle, never a dependency).
func TestStdlibOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.Imports) == 0 {
		t.Fatal("no imports found; is the working directory the package?")
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") {
			t.Errorf("s3sig imports %q; only the standard library is allowed", imp)
		}
	}
}
