package server

import (
	"flag"
	"fmt"
	"math"

	"github.com/mizuchi/uploadr/engine"
)

// engine converts server.limits for the data plane.
func (l LimitsConfig) engine() engine.Limits {
	return engine.Limits{
		MaxConns:                      l.MaxConnections,
		MaxConnsPerIP:                 l.MaxConnectionsPerIP,
		RequestsPerSecondPerIP:        l.RequestsPerSecondPerIP,
		BurstPerIP:                    l.BurstPerIP,
		RequestsPerSecondPerPrincipal: l.RequestsPerSecondPerPrincipal,
		BurstPerPrincipal:             l.BurstPerPrincipal,
	}
}

// checkLimits reports server.limits values that make no sense.
func checkLimits(l LimitsConfig) []error {
	var errs []error
	for _, n := range []struct {
		key string
		v   int
	}{{"max_connections", l.MaxConnections}, {"max_connections_per_ip", l.MaxConnectionsPerIP},
		{"burst_per_ip", l.BurstPerIP}, {"burst_per_principal", l.BurstPerPrincipal}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("server.limits.%s %d must be >= 0 (0 = unlimited)", n.key, n.v))
		}
	}
	for _, r := range []struct {
		key string
		v   float64
	}{{"requests_per_second_per_ip", l.RequestsPerSecondPerIP}, {"requests_per_second_per_principal", l.RequestsPerSecondPerPrincipal}} {
		if r.v < 0 || math.IsNaN(r.v) || math.IsInf(r.v, 0) {
			errs = append(errs, fmt.Errorf("server.limits.%s %v must be a finite rate >= 0 (0 = unlimited)", r.key, r.v))
		}
	}
	if l.MaxConnections > 0 && l.MaxConnectionsPerIP > l.MaxConnections {
		errs = append(errs, fmt.Errorf("server.limits.max_connections_per_ip %d is above max_connections %d", l.MaxConnectionsPerIP, l.MaxConnections))
	}
	if l.BurstPerIP > 0 && l.RequestsPerSecondPerIP == 0 {
		errs = append(errs, fmt.Errorf("server.limits.burst_per_ip %d without requests_per_second_per_ip: set a rate too", l.BurstPerIP))
	}
	if l.BurstPerPrincipal > 0 && l.RequestsPerSecondPerPrincipal == 0 {
		errs = append(errs, fmt.Errorf("server.limits.burst_per_principal %d without requests_per_second_per_principal: set a rate too", l.BurstPerPrincipal))
	}
	return errs
}

// registerLimitFlags defines the client-limit flags (server.limits) into l.
func registerLimitFlags(fs *flag.FlagSet, l *LimitsConfig) {
	fs.IntVar(&l.MaxConnections, "max-connections", 0, "client `connections` held at once (both listeners); at the limit the oldest idle keep-alive connection is closed to make room, else 503 SlowDown; 0 = unlimited (server.limits.max_connections)")
	fs.IntVar(&l.MaxConnectionsPerIP, "max-connections-per-ip", 0, "client `connections` held at once from one source address; 0 = unlimited (server.limits.max_connections_per_ip)")
	fs.Float64Var(&l.RequestsPerSecondPerIP, "rate-per-ip", 0, "sustained `requests` per second per source address (token bucket); 0 = unlimited (server.limits.requests_per_second_per_ip)")
	fs.IntVar(&l.BurstPerIP, "burst-per-ip", 0, "`requests` a source address may send at once; 0 = the rate rounded up (server.limits.burst_per_ip)")
	fs.Float64Var(&l.RequestsPerSecondPerPrincipal, "rate-per-principal", 0, "sustained `requests` per second per authenticated principal (access key id, JWT subject); 0 = unlimited (server.limits.requests_per_second_per_principal)")
	fs.IntVar(&l.BurstPerPrincipal, "burst-per-principal", 0, "`requests` a principal may send at once; 0 = the rate rounded up (server.limits.burst_per_principal)")
}

// applyLimitFlag copies the explicitly given limit flag name from f into c.
func applyLimitFlag(name string, f, c *LimitsConfig) {
	switch name {
	case "max-connections":
		c.MaxConnections = f.MaxConnections
	case "max-connections-per-ip":
		c.MaxConnectionsPerIP = f.MaxConnectionsPerIP
	case "rate-per-ip":
		c.RequestsPerSecondPerIP = f.RequestsPerSecondPerIP
	case "burst-per-ip":
		c.BurstPerIP = f.BurstPerIP
	case "rate-per-principal":
		c.RequestsPerSecondPerPrincipal = f.RequestsPerSecondPerPrincipal
	case "burst-per-principal":
		c.BurstPerPrincipal = f.BurstPerPrincipal
	}
}
