package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// /debug/pprof/ on the admin listener: 404 by default, the profiler with -pprof.
func TestPprofOnAdminListener(t *testing.T) {
	addr, admin := addrs(t)
	off := launch(t, addr, admin, deadUpstreamArgs(addr, admin), deadEnv())
	off.waitLog(t, "mizuchi-uploadr listening")
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		if code, _ := off.get(t, path); code != 404 {
			t.Errorf("%s without -pprof: %d, want 404", path, code)
		}
	}

	addr, admin = addrs(t)
	on := launch(t, addr, admin, deadUpstreamArgs(addr, admin, "-pprof"), deadEnv())
	on.waitLog(t, "mizuchi-uploadr listening")
	if code, body := on.get(t, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") || !strings.Contains(body, "heap") {
		t.Errorf("/debug/pprof/ with -pprof: %d\n%s", code, body)
	}
	c := http.Client{Timeout: 20 * time.Second}
	for _, path := range []string{"/debug/pprof/profile?seconds=1", "/debug/pprof/heap"} {
		resp, err := c.Get("http://" + admin + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// A profile is gzipped protobuf.
		if resp.StatusCode != 200 || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			t.Errorf("%s: %d, %d bytes %q...; want a gzipped profile", path, resp.StatusCode, len(b), b[:min(len(b), 40)])
		}
	}
	if code, _ := on.get(t, "/metrics"); code != 200 {
		t.Errorf("/metrics with -pprof: %d", code)
	}
}
