package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// DefaultProbeInterval is how often the readiness prober dials each upstream endpoint.
const DefaultProbeInterval = 2 * time.Second

// prober dials every distinct upstream endpoint and authorization server (a TCP connect, no
// request) at each interval and remembers the result; readiness is false while any endpoint's last
// probe failed or none ran yet. mizuchi_upstream_up{endpoint} and mizuchi_authz_up{endpoint} show
// each result. Safe for concurrent use.
type prober struct {
	timeout  time.Duration
	interval time.Duration
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)

	log *slog.Logger // up/down transitions (warn); nil: none

	mu      sync.Mutex
	targets map[string]target // kind + " " + endpoint URL -> what to dial
	state   map[string]error  // same keys -> last result; absent = not probed yet
	kick    chan struct{}
}

// target is one probed endpoint: kind is "upstream" or "authz".
type target struct {
	kind, endpoint, addr string
}

func newProber(timeout, interval time.Duration) *prober {
	var d net.Dialer
	return &prober{timeout: timeout, interval: interval, dial: d.DialContext,
		targets: map[string]target{}, state: map[string]error{}, kick: make(chan struct{}, 1)}
}

// dialAddr is the host:port of an endpoint URL (ports 80 and 443 by scheme).
func dialAddr(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("endpoint %q: not a URL", endpoint)
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443"), nil
	}
	return net.JoinHostPort(u.Hostname(), "80"), nil
}

func upGaugeName(tg target) string {
	return `mizuchi_` + tg.kind + `_up{endpoint="` + strings.ReplaceAll(tg.endpoint, `"`, `\"`) + `"}`
}

// setEndpoints replaces the set of upstream endpoints probed (configuration reload) and probes at once.
func (p *prober) setEndpoints(endpoints []string) { p.setKind("upstream", endpoints) }

// setAuthzEndpoints replaces the set of authorization servers probed and probes at once.
func (p *prober) setAuthzEndpoints(endpoints []string) { p.setKind("authz", endpoints) }

func (p *prober) setKind(kind string, endpoints []string) {
	p.mu.Lock()
	next := map[string]target{}
	for key, tg := range p.targets {
		if tg.kind != kind {
			next[key] = tg
		}
	}
	for _, ep := range endpoints {
		if addr, err := dialAddr(ep); err == nil {
			next[kind+" "+ep] = target{kind: kind, endpoint: ep, addr: addr}
		}
	}
	for key, tg := range p.targets {
		if _, ok := next[key]; !ok {
			delete(p.state, key)
			metrics.UnregisterMetric(upGaugeName(tg))
		}
	}
	p.targets = next
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run probes until ctx ends: at once, then every interval and after each setEndpoints.
func (p *prober) run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.probeAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
	}
}

// probeAll dials every endpoint concurrently, each bounded by the dial timeout.
func (p *prober) probeAll(ctx context.Context) {
	p.mu.Lock()
	targets := make(map[string]target, len(p.targets))
	for key, tg := range p.targets {
		targets[key] = tg
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for key, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			c, err := p.dial(dctx, "tcp", tg.addr)
			if err == nil {
				_ = c.Close()
			}
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			if _, ok := p.targets[key]; ok { // not removed meanwhile
				prev, probed := p.state[key]
				p.logTransition(tg, probed, prev, err)
				p.state[key] = err
				v := 1.0
				if err != nil {
					v = 0
				}
				metrics.GetOrCreateGauge(upGaugeName(tg), nil).Set(v)
			}
			p.mu.Unlock()
		}()
	}
	wg.Wait()
}

// ready reports whether every endpoint answered its last probe; if not, why (sorted, bounded).
func (p *prober) ready() (bool, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var bad []string
	for key := range p.targets {
		err, probed := p.state[key]
		switch {
		case !probed:
			bad = append(bad, key+": not probed yet")
		case err != nil:
			bad = append(bad, key+" unreachable: "+err.Error())
		}
	}
	sort.Strings(bad)
	if len(bad) > 8 {
		bad = append(bad[:8], fmt.Sprintf("and %d more", len(bad)-8))
	}
	return len(bad) == 0, strings.Join(bad, "\n")
}

// logTransition logs an endpoint going down or coming back, once per change, at warn: the first
// probe that fails, and each change after that. The first probe that succeeds is a debug line.
func (p *prober) logTransition(tg target, probed bool, prev, now error) {
	if p.log == nil || (probed && (prev == nil) == (now == nil)) {
		return
	}
	switch {
	case now != nil:
		p.log.Warn(tg.kind+" down", "endpoint", tg.endpoint, "err", now.Error())
	case probed:
		p.log.Warn(tg.kind+" up again", "endpoint", tg.endpoint)
	default:
		p.log.Debug(tg.kind+" up", "endpoint", tg.endpoint)
	}
}
