// Package buildinfo holds the version of the running binary: Version and Revision are stamped at
// link time (go build -ldflags "-X github.com/mizuchi/uploadr/internal/buildinfo.Version=v1.2.3
// -X github.com/mizuchi/uploadr/internal/buildinfo.Revision=abc123"); without stamping they fall back
// to what the Go toolchain recorded in the binary (runtime/debug.ReadBuildInfo: the module version
// and the VCS revision), and to "unknown" when nothing is recorded (go test, go run of a dirty tree
// without VCS data).
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version is the release version ("v1.2.3"), set with -ldflags -X; see the package comment.
var Version string

// Revision is the source revision (a git commit), set with -ldflags -X; see the package comment.
var Revision string

// GoVersion is the Go toolchain that built the binary ("go1.26.8").
func GoVersion() string { return runtime.Version() }

func init() {
	Version, Revision = fill(Version, Revision, debug.ReadBuildInfo)
}

// fill completes the stamped values from the toolchain's build information.
func fill(version, revision string, read func() (*debug.BuildInfo, bool)) (string, string) {
	if version != "" && revision != "" {
		return version, revision
	}
	bi, ok := read()
	if ok {
		if version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		if revision == "" {
			var modified bool
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					revision = s.Value
				case "vcs.modified":
					modified = s.Value == "true"
				}
			}
			if revision != "" && modified {
				revision += "-dirty"
			}
		}
	}
	if version == "" {
		version = "unknown"
	}
	if revision == "" {
		revision = "unknown"
	}
	return version, revision
}
