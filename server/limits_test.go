package server

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/engine"
)

// server.limits reaches the engine; flags override it; nonsense is refused by key.
func TestLimitsConfig(t *testing.T) {
	y := strings.Replace(sample, "server:\n", "server:\n  limits: {max_connections: 1000, max_connections_per_ip: 50, requests_per_second_per_ip: 20.5, burst_per_ip: 40, requests_per_second_per_principal: 100, burst_per_principal: 200}\n", 1)
	c, err := ParseConfig([]byte(y), env(sampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := engine.Limits{MaxConns: 1000, MaxConnsPerIP: 50, RequestsPerSecondPerIP: 20.5, BurstPerIP: 40,
		RequestsPerSecondPerPrincipal: 100, BurstPerPrincipal: 200}
	if o.Limits != want {
		t.Errorf("engine limits = %+v; want %+v", o.Limits, want)
	}

	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"-config", path, "-max-connections", "100", "-rate-per-ip", "2", "-burst-per-principal", "7"}); err != nil {
		t.Fatal(err)
	}
	c, err = f.Config(env(sampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Server.Limits
	if got.MaxConnections != 100 || got.RequestsPerSecondPerIP != 2 || got.BurstPerPrincipal != 7 || got.MaxConnectionsPerIP != 50 {
		t.Errorf("after flags: %+v", got)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	f = RegisterFlags(fs)
	if err := fs.Parse([]string{"-config", path, "-max-connections", "10"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Config(env(sampleEnv)); err == nil || !strings.Contains(err.Error(), "server.limits.max_connections_per_ip 50 is above max_connections 10") {
		t.Errorf("per-address above total: %v", err)
	}

	for _, tc := range []struct{ yaml, want string }{
		{"max_connections: -1", "server.limits.max_connections -1 must be >= 0"},
		{"requests_per_second_per_principal: -2", "server.limits.requests_per_second_per_principal -2 must be a finite rate"},
		{"burst_per_ip: 5", "server.limits.burst_per_ip 5 without requests_per_second_per_ip"},
	} {
		y := strings.Replace(sample, "server:\n", "server:\n  limits: {"+tc.yaml+"}\n", 1)
		c, err := ParseConfig([]byte(y), env(sampleEnv))
		if err != nil {
			t.Fatal(err)
		}
		c.Normalize()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.yaml, err, tc.want)
		}
	}
}
