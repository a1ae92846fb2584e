package server

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ProxyProtocolConfig is server.proxy_protocol: the listeners sit behind an L4 balancer that
// writes a PROXY protocol header (v1 or v2) at the start of each connection; the client address it
// names replaces the balancer's everywhere (access log, authorizer input).
type ProxyProtocolConfig struct {
	// Enabled: every connection must come from TrustedCIDRs and begin with a PROXY header; others
	// are closed without an answer. Default false.
	Enabled bool `yaml:"enabled"`
	// TrustedCIDRs are the balancers' networks ("10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32";
	// a bare address is one host). Required when enabled: -check refuses an empty list, since any
	// client could then claim any address.
	TrustedCIDRs []string `yaml:"trusted_cidrs"`
}

// prefixes parses TrustedCIDRs.
func (p ProxyProtocolConfig) prefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	var errs []error
	for _, s := range p.TrustedCIDRs {
		s = strings.TrimSpace(s)
		var pf netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			pf, err = netip.ParsePrefix(s)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil && a.Zone() == "" {
				pf = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err == nil && pf.Addr().Is4In6() { // ::ffff:10.0.0.0/104 is 10.0.0.0/8: peers are compared unmapped
			if pf.Bits() < 96 {
				err = errors.New("mapped prefix shorter than /96")
			} else {
				pf = netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()-96)
			}
		}
		if err != nil || !pf.IsValid() {
			errs = append(errs, fmt.Errorf("server.proxy_protocol.trusted_cidrs %q: want a CIDR such as 10.0.0.0/8 or an address", s))
			continue
		}
		out = append(out, pf.Masked())
	}
	return out, errors.Join(errs...)
}

func (p ProxyProtocolConfig) validate() []error {
	var errs []error
	if _, err := p.prefixes(); err != nil {
		errs = append(errs, err)
	}
	if p.Enabled && len(p.TrustedCIDRs) == 0 {
		errs = append(errs, errors.New("server.proxy_protocol.enabled without server.proxy_protocol.trusted_cidrs: list the balancers' networks (any client could otherwise claim any address)"))
	}
	return errs
}
