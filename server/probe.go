package server

import (
	"context"
	"fmt"
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

// prober dials every distinct upstream endpoint (a TCP connect, no request) at each interval and
// remembers the result; readiness is false while any endpoint's last probe failed or none ran yet.
// mizuchi_upstream_up{endpoint} shows each result. Safe for concurrent use.
type prober struct {
	timeout  time.Duration
	interval time.Duration
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)

	mu      sync.Mutex
	targets map[string]string // endpoint URL -> host:port
	state   map[string]error  // endpoint URL -> last result; absent = not probed yet
	kick    chan struct{}
}

func newProber(timeout, interval time.Duration) *prober {
	var d net.Dialer
	return &prober{timeout: timeout, interval: interval, dial: d.DialContext,
		targets: map[string]string{}, state: map[string]error{}, kick: make(chan struct{}, 1)}
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

func upGaugeName(endpoint string) string {
	return `mizuchi_upstream_up{endpoint="` + strings.ReplaceAll(endpoint, `"`, `\"`) + `"}`
}

// setEndpoints replaces the set of endpoints probed (configuration reload) and probes at once.
func (p *prober) setEndpoints(endpoints []string) {
	p.mu.Lock()
	next := map[string]string{}
	for _, ep := range endpoints {
		if addr, err := dialAddr(ep); err == nil {
			next[ep] = addr
		}
	}
	for ep := range p.targets {
		if _, ok := next[ep]; !ok {
			delete(p.state, ep)
			metrics.UnregisterMetric(upGaugeName(ep))
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
	targets := make(map[string]string, len(p.targets))
	for ep, addr := range p.targets {
		targets[ep] = addr
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for ep, addr := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, p.timeout)
			defer cancel()
			c, err := p.dial(dctx, "tcp", addr)
			if err == nil {
				_ = c.Close()
			}
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			if _, ok := p.targets[ep]; ok { // not removed meanwhile
				p.state[ep] = err
				v := 1.0
				if err != nil {
					v = 0
				}
				metrics.GetOrCreateGauge(upGaugeName(ep), nil).Set(v)
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
	for ep := range p.targets {
		err, probed := p.state[ep]
		switch {
		case !probed:
			bad = append(bad, "upstream "+ep+": not probed yet")
		case err != nil:
			bad = append(bad, "upstream "+ep+" unreachable: "+err.Error())
		}
	}
	sort.Strings(bad)
	if len(bad) > 8 {
		bad = append(bad[:8], fmt.Sprintf("and %d more", len(bad)-8))
	}
	return len(bad) == 0, strings.Join(bad, "\n")
}
