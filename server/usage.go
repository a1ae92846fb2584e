package server

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagGroup is one topic of -h.
type flagGroup struct {
	title string
	names []string
}

// flagGroups orders -h by topic. Every registered flag belongs to exactly one group (a test checks
// it); one missing here is still printed, under "Other".
var flagGroups = []flagGroup{
	{"Configuration", []string{"config", "check", "version"}},
	{"Listener", []string{"listen", "plain-listener", "reuse-port", "event-loops", "virtual-host-suffix", "drain-timeout"}},
	{"Limits and client timeouts", []string{"max-head-bytes", "max-uri-bytes", "inline-body-max", "max-object-size",
		"complete-body-budget", "head-timeout", "idle-timeout", "body-stall-timeout", "response-timeout"}},
	{"Upstream", []string{"dial-timeout", "upstream-max-idle", "upstream-max-conns", "upstream-idle-timeout",
		"upstream-abort-retry-for", "auto-chunk", "multipart-threshold", "part-size", "concurrent-parts"}},
	{"Zero-copy (splice) and the copy path", []string{"zero-copy", "pipe-size", "min-pipe-size", "pipe-pool", "read-batch", "copy-memory-max"}},
	{"Client limits (503 SlowDown over them; 0 = unlimited)", []string{"max-connections", "max-connections-per-ip",
		"rate-per-ip", "burst-per-ip", "rate-per-principal", "burst-per-principal"}},
	{"TLS (https listener)", []string{"tls-address", "tls-cert", "tls-key", "tls-min-version", "tls-handshake-timeout", "tls-driver"}},
	{"Behind a load balancer (PROXY protocol)", []string{"proxy-protocol", "proxy-protocol-trusted-cidr"}},
	{"Auth: config-less start (one bucket from flags and environment)", []string{"bucket", "upstream", "upstream-bucket", "region", "auth-none"}},
	{"Policy and authorization (config-less start)", []string{"policy-max-object-size", "policy-content-type",
		"policy-key-template", "policy-no-overwrite", "policy-require-checksum", "policy-storage-class", "policy-max-parts",
		"opa-url", "opa-path"}},
	{"Metrics and admin listener", []string{"metrics", "admin-address", "pprof"}},
	{"Logs", []string{"log-level", "log-format", "access-log"}},
	{"Tracing (OpenTelemetry, OTLP/HTTP)", []string{"tracing", "tracing-endpoint", "tracing-sample-ratio",
		"tracing-service-name", "tracing-timeout", "tracing-queue-size", "tracing-record-keys"}},
}

// printUsage is the FlagSet's Usage: the synopsis, then every flag under its topic with its default.
func (f *Flags) printUsage() {
	w := f.fs.Output()
	fmt.Fprintf(w, `Usage:
  mizuchi-uploadr -config FILE [flags]
  mizuchi-uploadr -bucket NAME -upstream URL [-upstream-bucket B] [-region R] [-auth-none] [flags]
  mizuchi-uploadr -check -config FILE      exit 0: ok, 1: problems (each as file:line: message), 2: usage or unreadable file
  mizuchi-uploadr -version

Without -config, upstream credentials come from %s/%s (or %s/%s)
and client credentials from %s/%s; secrets are never flags.
Flags override the configuration file (its key in parentheses). Sizes are bytes or a number with a
unit: k, m, g, KiB, MiB, GiB, TiB (binary: 64k = 65536) or KB, MB, GB, TB (decimal: 64KB = 64000).
`, EnvUpstreamAccessKey, EnvUpstreamSecretKey, EnvAWSAccessKey, EnvAWSSecretKey, EnvClientAccessKey, EnvClientSecretKey)
	seen := map[string]bool{}
	for _, g := range flagGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, name := range g.names {
			if fl := f.fs.Lookup(name); fl != nil && !seen[name] {
				seen[name] = true
				printFlag(w, fl)
			}
		}
	}
	other := false
	f.fs.VisitAll(func(fl *flag.Flag) {
		if seen[fl.Name] {
			return
		}
		if !other {
			fmt.Fprintf(w, "\nOther:\n")
			other = true
		}
		printFlag(w, fl)
	})
}

// printFlag prints one flag as flag.PrintDefaults does: name, argument, usage, default when set.
func printFlag(w io.Writer, fl *flag.Flag) {
	name, usage := flag.UnquoteUsage(fl)
	line := "  -" + fl.Name
	if name != "" {
		line += " " + name
	}
	line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
	switch fl.DefValue {
	case "", "0", "0s", "false":
	default:
		if g, ok := fl.Value.(flag.Getter); ok && isString(g.Get()) {
			line += fmt.Sprintf(" (default %q)", fl.DefValue)
		} else {
			line += fmt.Sprintf(" (default %s)", fl.DefValue)
		}
	}
	fmt.Fprintln(w, line)
}

func isString(v any) bool { _, ok := v.(string); return ok }
