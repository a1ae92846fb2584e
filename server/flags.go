package server

import (
	"flag"
	"fmt"
	"time"
)

// Flags are the command-line settings; each overrides its configuration key when given.
type Flags struct {
	fs         *flag.FlagSet
	ConfigPath string
	Check      bool

	address, metricsAddr, logLevel, logFormat         string
	eventLoops, pipePool                              int
	zeroCopy                                          bool
	pipeSize, maxHead, inlineMax                      string
	headTimeout, idleTimeout, stallTimeout, drainTime time.Duration
}

// RegisterFlags defines the flags on fs.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.ConfigPath, "config", "", "YAML configuration `file`")
	fs.BoolVar(&f.Check, "check", false, "validate the configuration, print every problem and exit (never dials)")
	fs.StringVar(&f.address, "listen", DefaultAddress, "listen `address` for S3 clients (server.address)")
	fs.IntVar(&f.eventLoops, "event-loops", 0, "number of event loops; 0 = one per CPU (server.event_loops)")
	fs.BoolVar(&f.zeroCopy, "zero-copy", true, "move bodies with splice(2) on Linux; false = user-space copy (server.zero_copy.enabled)")
	fs.StringVar(&f.pipeSize, "pipe-size", "1MiB", "splice pipe `size` (server.zero_copy.pipe_buffer_size)")
	fs.IntVar(&f.pipePool, "pipe-pool", 64, "idle splice pipes kept (server.zero_copy.pipe_pool_size)")
	fs.StringVar(&f.maxHead, "max-head-bytes", "64KiB", "largest request head; larger gets 431 (server.max_head_bytes)")
	fs.StringVar(&f.inlineMax, "inline-body-max", "64KiB", "largest body handled in the event loop without splice (server.inline_body_max)")
	fs.DurationVar(&f.headTimeout, "head-timeout", 30*time.Second, "time allowed to send a request head (server.head_timeout)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", 60*time.Second, "keep-alive idle timeout (server.idle_timeout)")
	fs.DurationVar(&f.stallTimeout, "body-stall-timeout", 60*time.Second, "abort a body that moves no byte for this long (server.body_stall_timeout)")
	fs.DurationVar(&f.drainTime, "drain-timeout", DefaultDrainTimeout, "how long SIGTERM waits for uploads in flight (server.drain_timeout)")
	fs.StringVar(&f.metricsAddr, "admin-address", DefaultMetricsAddress, "admin listener `address` for /metrics, /healthz, /readyz (metrics.address)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error (log.level)")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json (log.format)")
	return f
}

// Apply overrides c with the flags that were set explicitly.
func (f *Flags) Apply(c *Config) error {
	var err error
	size := func(s string, dst *ByteSize, name string) {
		v, e := ParseByteSize(s)
		if e != nil && err == nil {
			err = fmt.Errorf("-%s: %w", name, e)
		}
		*dst = ByteSize(v)
	}
	f.fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "listen":
			c.Server.Address = f.address
		case "event-loops":
			c.Server.EventLoops = f.eventLoops
		case "zero-copy":
			v := f.zeroCopy
			c.Server.ZeroCopy.Enabled = &v
		case "pipe-size":
			size(f.pipeSize, &c.Server.ZeroCopy.PipeBufferSize, fl.Name)
		case "pipe-pool":
			c.Server.ZeroCopy.PipePoolSize = f.pipePool
		case "max-head-bytes":
			size(f.maxHead, &c.Server.MaxHeadBytes, fl.Name)
		case "inline-body-max":
			size(f.inlineMax, &c.Server.InlineBodyMax, fl.Name)
		case "head-timeout":
			c.Server.HeadTimeout = Duration(f.headTimeout)
		case "idle-timeout":
			c.Server.IdleTimeout = Duration(f.idleTimeout)
		case "body-stall-timeout":
			c.Server.BodyStallTimeout = Duration(f.stallTimeout)
		case "drain-timeout":
			c.Server.DrainTimeout = Duration(f.drainTime)
		case "admin-address":
			c.Metrics.Address = f.metricsAddr
		case "log-level":
			c.Log.Level = f.logLevel
		case "log-format":
			c.Log.Format = f.logFormat
		}
	})
	return err
}
