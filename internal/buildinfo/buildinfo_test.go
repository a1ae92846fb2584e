package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFill(t *testing.T) {
	read := func(bi *debug.BuildInfo) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	}
	vcs := &debug.BuildInfo{Main: debug.Module{Version: "v0.3.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abc"}, {Key: "vcs.modified", Value: "true"},
	}}
	for _, tc := range []struct {
		name, v, r   string
		bi           *debug.BuildInfo
		wantV, wantR string
	}{
		{"stamped wins", "v9", "rev9", vcs, "v9", "rev9"},
		{"from the toolchain", "", "", vcs, "v0.3.0", "0123abc-dirty"},
		{"stamped version, recorded revision", "v9", "", vcs, "v9", "0123abc-dirty"},
		{"devel", "", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "unknown", "unknown"},
		{"nothing recorded", "", "", nil, "unknown", "unknown"},
	} {
		v, r := fill(tc.v, tc.r, read(tc.bi))
		if v != tc.wantV || r != tc.wantR {
			t.Errorf("%s: got %q %q; want %q %q", tc.name, v, r, tc.wantV, tc.wantR)
		}
	}
	if Version == "" || Revision == "" || !strings.HasPrefix(GoVersion(), "go") {
		t.Errorf("package values: %q %q %q", Version, Revision, GoVersion())
	}
}
