package server

import (
	"strings"
	"testing"
	"time"
)

// upstream.abort_retry_for: default 10m, settable from the file and by flag, reaches the engine,
// and -check refuses a negative or an over-long window.
func TestAbortRetryFor(t *testing.T) {
	awsEnv := env(map[string]string{EnvAWSAccessKey: "a", EnvAWSSecretKey: "s"})
	f := parseFlags(t, "-bucket", "b", "-upstream", "http://h:1", "-auth-none")
	c, err := f.Config(awsEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Upstream.AbortRetryFor); got != 10*time.Minute {
		t.Errorf("default upstream.abort_retry_for = %v; want 10m", got)
	}

	fc, err := ParseConfig([]byte("upstream:\n  abort_retry_for: 90s\n"+sample), env(sampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	fc.Normalize()
	o, err := fc.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Upstream.AbortRetryFor != 90*time.Second {
		t.Errorf("file: engine AbortRetryFor = %v; want 90s", o.Upstream.AbortRetryFor)
	}

	f = parseFlags(t, "-bucket", "b", "-upstream", "http://h:1", "-auth-none", "-upstream-abort-retry-for", "3m")
	if c, err = f.Config(awsEnv); err != nil {
		t.Fatal(err)
	}
	if o, err = c.EngineOptions(nil, nil); err != nil || o.Upstream.AbortRetryFor != 3*time.Minute {
		t.Errorf("flag: engine AbortRetryFor = %v (%v); want 3m", o.Upstream.AbortRetryFor, err)
	}

	for _, v := range []string{"-1s", "25h"} {
		f = parseFlags(t, "-bucket", "b", "-upstream", "http://h:1", "-auth-none", "-upstream-abort-retry-for", v)
		if _, err := f.Config(awsEnv); err == nil || !strings.Contains(err.Error(), "upstream.abort_retry_for") {
			t.Errorf("-upstream-abort-retry-for %s: %v; want an error naming upstream.abort_retry_for", v, err)
		}
	}
}
