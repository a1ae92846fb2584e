package server

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Environment variables read by a config-less start (-bucket, -upstream). Secrets are never flags.
const (
	EnvUpstreamAccessKey = "MIZUCHI_UPSTREAM_ACCESS_KEY"
	EnvUpstreamSecretKey = "MIZUCHI_UPSTREAM_SECRET_KEY"
	EnvAWSAccessKey      = "AWS_ACCESS_KEY_ID"
	EnvAWSSecretKey      = "AWS_SECRET_ACCESS_KEY"
	EnvClientAccessKey   = "MIZUCHI_CLIENT_ACCESS_KEY"
	EnvClientSecretKey   = "MIZUCHI_CLIENT_SECRET_KEY"
)

// Environment variables of a config-less start holding server.upload_id_secrets: the current
// secret, and the previous one during a rotation.
const (
	EnvUploadIDSecret         = "MIZUCHI_UPLOAD_ID_SECRET"
	EnvUploadIDSecretPrevious = "MIZUCHI_UPLOAD_ID_SECRET_PREVIOUS"
)

// Flags are the command-line settings; each overrides its configuration key when given. A Flags
// is filled by flag.FlagSet.Parse and then only read, so Config may be called again (SIGHUP).
type Flags struct {
	fs         *flag.FlagSet
	ConfigPath string
	Check      bool
	Version    bool // -version: print the build and exit
	pprof      bool

	address, metricsAddr, logLevel, logFormat string
	eventLoops, pipePool, maxIdle, maxConns   int
	concurrentParts                           int
	zeroCopy, accessLog, metricsOn, autoChunk bool
	pipeSize, minPipe, maxHead, maxURI        sizeFlag
	readBatch                                 sizeFlag
	inlineMax, maxObject, threshold, partSize sizeFlag
	completeBudget, copyMemoryMax             sizeFlag
	headTimeout, idleTimeout, stallTimeout    time.Duration
	responseTimeout, drainTime                time.Duration
	dialTimeout, upIdleTimeout                time.Duration
	abortRetryFor                             time.Duration
	tlsAddress, tlsCert, tlsKey, tlsMinVer    string
	plain, reusePort                          bool
	tlsHandshake                              time.Duration
	tlsDriver                                 string
	vhostSuffixes                             listFlag
	lim                                       LimitsConfig // -max-connections, -rate-per-ip, ...
	proxyProtocol                             bool
	proxyTrusted                              listFlag
	tracing                                   tracingFlags // -tracing, -tracing-endpoint, ...

	// config-less single bucket
	bucket, upstream, upstreamBucket, region string
	authNone                                 bool
	pol                                      policyFlags // -policy-*: the config-less bucket's rules
	opaURL, opaPath                          string      // config-less authz.opa
}

// sizeFlag is a byte size flag: "1048576", "1MiB", "64KiB", "5GiB".
type sizeFlag struct {
	text string
	v    int64
}

func newSize(def string) sizeFlag {
	v, err := ParseByteSize(def)
	if err != nil {
		panic(err)
	}
	return sizeFlag{text: def, v: v}
}

func (s *sizeFlag) String() string { return s.text }

func (s *sizeFlag) Set(v string) error {
	n, err := ParseByteSize(v)
	if err != nil {
		return err
	}
	s.text, s.v = v, n
	return nil
}

// listFlag is a repeatable string flag: each use adds one value; an empty value clears the list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	if v == "" {
		*l = nil
		return nil
	}
	*l = append(*l, v)
	return nil
}

// RegisterFlags defines the flags on fs. Their defaults are the configuration's defaults (README.md,
// "Flags"); a flag given on the command line overrides the file.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	f.pipeSize, f.minPipe, f.readBatch = newSize("1MiB"), newSize("256KiB"), newSize("256KiB")
	f.maxHead, f.maxURI, f.inlineMax = newSize("64KiB"), newSize("16KiB"), newSize("1MiB")
	f.maxObject, f.threshold, f.partSize = newSize("5TiB"), newSize("50MiB"), newSize("100MiB")
	f.completeBudget, f.copyMemoryMax = newSize("32MiB"), newSize("64MiB")
	const sz = "" // the units are explained once, above the flags (usage.go)

	fs.StringVar(&f.ConfigPath, "config", "", "YAML configuration `file`; SIGHUP reloads its buckets")
	fs.BoolVar(&f.Check, "check", false, "validate the configuration, print every problem and exit non-zero if any (dials only auth.jwt.jwks_url and authorization services: one unreachable is a warning)")

	fs.BoolVar(&f.Version, "version", false, "print the version, source revision and Go version, and exit")
	fs.StringVar(&f.address, "listen", DefaultAddress, "listen `address` (host:port) for S3 clients (server.address)")
	fs.BoolVar(&f.plain, "plain-listener", true, "serve plain http on -listen; false = https only, on -tls-address (server.plain_listener)")
	fs.BoolVar(&f.reusePort, "reuse-port", false, "set SO_REUSEPORT on the listeners: a new process joins the addresses of a running one started with it too, then SIGTERM drains the old one (the zero-downtime upgrade; README \"Upgrading without downtime\") (server.reuse_port)")
	fs.IntVar(&f.eventLoops, "event-loops", 0, "`number` of event loops; 0 = one per CPU the process may use, GOMAXPROCS (server.event_loops)")
	fs.BoolVar(&f.zeroCopy, "zero-copy", true, "move bodies with splice(2) on Linux; false = user-space copy (server.zero_copy.enabled)")
	fs.Var(&f.pipeSize, "pipe-size", "splice pipe `size`"+sz+" (server.zero_copy.pipe_buffer_size)")
	fs.Var(&f.minPipe, "min-pipe-size", "smallest pipe `size` worth splicing; a smaller grant takes the copy path"+sz+" (server.zero_copy.min_pipe_size)")
	fs.Var(&f.readBatch, "read-batch", "`size` a large body gathers in the client's socket before the proxy reads it (SO_RCVLOWAT): spliced bodies above two pipes (capped at the pipe size), TLS bodies (capped at 128KiB); 1 = wake for every segment"+sz+" (server.zero_copy.read_batch)")
	fs.IntVar(&f.pipePool, "pipe-pool", DefaultPipePool, "idle splice `pipes` kept (server.zero_copy.pipe_pool_size)")
	fs.Var(&f.maxHead, "max-head-bytes", "largest request head `size`; larger gets 431"+sz+" (server.max_head_bytes)")
	fs.Var(&f.maxURI, "max-uri-bytes", "longest request target `size`; longer gets 414"+sz+" (server.max_uri_bytes)")
	fs.Var(&f.inlineMax, "inline-body-max", "largest body `size` handled in the event loop without splice"+sz+" (server.inline_body_max)")
	fs.Var(&f.maxObject, "max-object-size", "largest object `size` a PutObject may create"+sz+" (server.max_object_size)")
	fs.Var(&f.completeBudget, "complete-body-budget", "total `size` of CompleteMultipartUpload documents buffered at once, at least 4MiB; a Complete that does not fit gets 503 SlowDown"+sz+" (server.complete_body_budget)")
	fs.Var(&f.copyMemoryMax, "copy-memory-max", "total `size` of the copy path's buffers (256KiB per transfer: https upstreams and clients, zero copy off) lent at once; a transfer that finds none waits up to -body-stall-timeout"+sz+" (server.copy_memory_max)")
	registerLimitFlags(fs, &f.lim) // limits.go
	fs.DurationVar(&f.headTimeout, "head-timeout", DefaultHeadTimeout, "`duration` a client may take to send a request head (server.head_timeout)")
	fs.DurationVar(&f.idleTimeout, "idle-timeout", DefaultIdleTimeout, "keep-alive idle `duration` before a client connection is closed (server.idle_timeout)")
	fs.DurationVar(&f.stallTimeout, "body-stall-timeout", DefaultStallTimeout, "a body that moves no byte for this `duration` gets 400 RequestTimeout (server.body_stall_timeout)")
	fs.DurationVar(&f.responseTimeout, "response-timeout", DefaultResponseTimeout, "`duration` to wait for the upstream's answer after the body (server.response_timeout)")
	fs.Var(&f.vhostSuffixes, "virtual-host-suffix", "serve virtual-hosted-style requests: Host <bucket>.`suffix`[:port] addresses bucket <bucket>; repeatable; replaces the file's list, an empty value clears it (server.virtual_host_suffixes)")
	fs.StringVar(&f.tlsAddress, "tls-address", "", "https listen `address` (host:port) for S3 clients, beside -listen; empty = none (server.tls.address)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate chain `file` of the https listener; SIGHUP reloads it (server.tls.cert_file)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key `file` of the https listener; SIGHUP reloads it (server.tls.key_file)")
	fs.StringVar(&f.tlsMinVer, "tls-min-version", DefaultTLSMinVersion, "lowest TLS `version` accepted: 1.2 or 1.3 (server.tls.min_version)")
	fs.DurationVar(&f.tlsHandshake, "tls-handshake-timeout", DefaultTLSHandshakeTimeout, "`duration` a client may take to complete its TLS handshake (server.tls.handshake_timeout)")
	fs.StringVar(&f.tlsDriver, "tls-driver", DefaultTLSDriver, "who serves https clients: loop (the event loops) or goroutine (one per connection) (server.tls.driver)")
	fs.BoolVar(&f.proxyProtocol, "proxy-protocol", false, "require a PROXY protocol header (v1 or v2) from -proxy-protocol-trusted-cidr peers on both listeners; its client address is logged and authorized; others are closed (server.proxy_protocol.enabled)")
	fs.Var(&f.proxyTrusted, "proxy-protocol-trusted-cidr", "a balancer's network (`CIDR`, or an address) allowed to send PROXY headers; repeatable; replaces the file's list (server.proxy_protocol.trusted_cidrs)")
	registerTracingFlags(fs, &f.tracing) // tracing.go
	fs.DurationVar(&f.drainTime, "drain-timeout", DefaultDrainTimeout, "`duration` SIGTERM/SIGINT waits for uploads in flight before cutting them (server.drain_timeout)")

	fs.DurationVar(&f.dialTimeout, "dial-timeout", DefaultDialTimeout, "upstream connect `duration` limit, also used by the readiness probe (upstream.dial_timeout)")
	fs.IntVar(&f.maxIdle, "upstream-max-idle", DefaultUpstreamMaxIdle, "idle keep-alive `connections` kept per upstream endpoint (upstream.max_idle)")
	fs.IntVar(&f.maxConns, "upstream-max-conns", 0, "most `connections` per upstream endpoint; 0 = unlimited (upstream.max_conns)")
	fs.DurationVar(&f.upIdleTimeout, "upstream-idle-timeout", DefaultUpstreamIdleTimeout, "an idle upstream connection older than this `duration` is closed (upstream.idle_timeout)")
	fs.DurationVar(&f.abortRetryFor, "upstream-abort-retry-for", DefaultAbortRetryFor, "retry a failed abort of an auto-chunked upload in the background for this `duration`, up to 24h (upstream.abort_retry_for)")

	fs.Var(&f.threshold, "multipart-threshold", "PutObjects larger than this `size` become multipart uploads upstream"+sz+"; applies to every bucket (buckets[].upload.multipart_threshold)")
	fs.Var(&f.partSize, "part-size", "auto-chunking part `size`, 5MiB..5GiB"+sz+"; applies to every bucket (buckets[].upload.part_size)")
	fs.IntVar(&f.concurrentParts, "concurrent-parts", DefaultConcurrentParts, "`parts` of one auto-chunked object in flight upstream, 1..64; applies to every bucket (buckets[].upload.concurrent_parts)")

	fs.BoolVar(&f.autoChunk, "auto-chunk", true, "cut PutObjects above the multipart threshold into multipart uploads upstream; false sends them whole (up to 5 GiB); applies to every bucket (buckets[].upload.auto_chunk)")
	fs.BoolVar(&f.metricsOn, "metrics", true, "serve the admin listener (/metrics, /healthz, /readyz) (metrics.enabled)")
	fs.StringVar(&f.metricsAddr, "admin-address", DefaultMetricsAddress, "admin listener `address` (host:port) (metrics.address)")
	fs.BoolVar(&f.pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on the admin listener (metrics.pprof)")
	fs.StringVar(&f.logLevel, "log-level", "info", "`level`: debug, info, warn or error (log.level)")
	fs.StringVar(&f.logFormat, "log-format", "text", "`format` of the log (stderr) and the access log (stdout): text or json (log.format)")
	fs.BoolVar(&f.accessLog, "access-log", true, "write one access-log line per request to stdout (log.access)")

	fs.StringVar(&f.bucket, "bucket", "", "config-less start: the one bucket `name` clients use (needs -upstream; credentials from the environment)")
	fs.StringVar(&f.upstream, "upstream", "", "config-less start: upstream S3 endpoint `URL`, http://host:port or https://host:port")
	fs.StringVar(&f.upstreamBucket, "upstream-bucket", "", "config-less start: upstream bucket `name`; default: the -bucket name")
	fs.StringVar(&f.region, "region", "us-east-1", "config-less start: upstream `region`")
	fs.BoolVar(&f.authNone, "auth-none", false, "config-less start: no client authentication (trusted networks only); otherwise "+
		EnvClientAccessKey+" and "+EnvClientSecretKey+" must be set")
	f.registerPolicyFlags(fs)
	fs.StringVar(&f.opaURL, "opa-url", "", "config-less start: OPA server `URL` that decides on every request (as authz.opa.url in a file; README \"Authorization\")")
	fs.StringVar(&f.opaPath, "opa-path", DefaultOPAPath, "config-less start: OPA decision `path` (as authz.opa.path in a file)")
	fs.Usage = f.printUsage // usage.go: grouped by topic
	return f
}

// set reports whether the flag name was given on the command line.
func (f *Flags) set(name string) bool {
	found := false
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			found = true
		}
	})
	return found
}

// Config builds the configuration: the -config file (or, without one, the single bucket of -bucket
// and -upstream with credentials from the environment), then the flags given, then defaults. The
// error lists every problem found (file, flags and validation); the Config returned with it is what
// could be built and must not be used to serve. lookup reads the environment (os.LookupEnv).
func (f *Flags) Config(lookup func(string) (string, bool)) (*Config, error) {
	var errs []error
	var doc *yaml.Node // the file's tree: places Validate's problems (configcheck.go)
	c := &Config{}
	configless := f.set("bucket") || f.set("upstream") || f.set("upstream-bucket") || f.set("auth-none")
	switch {
	case f.ConfigPath != "" && configless:
		errs = append(errs, errors.New("-bucket, -upstream, -upstream-bucket and -auth-none configure a config-less start; with -config, put buckets in the file"))
	case f.ConfigPath != "":
		raw, err := os.ReadFile(f.ConfigPath)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfigUnreadable, err)
		}
		pc, tree, err := parseConfig(raw, lookup)
		if pc == nil {
			return nil, positionErrors(f.ConfigPath, nil, []error{err})
		}
		c, doc = pc, tree
		if err != nil {
			errs = append(errs, err)
		}
	case configless:
		b, err := f.flagBucket(lookup)
		if f.opaURL != "" {
			b.Authz.OPA = &OPAConfig{AuthzCommon: AuthzCommon{URL: f.opaURL}, Path: f.opaPath}
		}
		if err != nil {
			errs = append(errs, err)
		}
		c.Buckets = []BucketConfig{b}
		if v, _ := lookup(EnvUploadIDSecret); v != "" {
			prev, _ := lookup(EnvUploadIDSecretPrevious)
			c.Server.UploadIDSecrets = []string{v, prev}
		} else if v, _ := lookup(EnvUploadIDSecretPrevious); v != "" {
			errs = append(errs, fmt.Errorf("%s is set without %s", EnvUploadIDSecretPrevious, EnvUploadIDSecret))
		}
	default:
		errs = append(errs, ErrNoConfig)
	}
	if f.ConfigPath != "" && f.policySet() {
		errs = append(errs, errPolicyFlagsWithConfig)
	}
	if (f.set("opa-url") || f.set("opa-path")) && !configless {
		errs = append(errs, errors.New("-opa-url and -opa-path configure a config-less start; with -config, put authz in the file"))
	} else if f.set("opa-path") && f.opaURL == "" {
		errs = append(errs, errors.New("-opa-path needs -opa-url"))
	}
	if err := f.Apply(c); err != nil {
		errs = append(errs, err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	if f.ConfigPath != "" && len(errs) > 0 {
		return c, positionErrors(f.ConfigPath, doc, errs)
	}
	return c, errors.Join(errs...)
}

// ErrNoConfig: neither -config nor a config-less start was given (a usage error: exit 2).
var ErrNoConfig = errors.New("no configuration: give -config FILE, or -bucket NAME -upstream URL for a single bucket")

// ErrConfigUnreadable: the -config file could not be read (exit 2, not 1).
var ErrConfigUnreadable = errors.New("cannot read the configuration file")

// flagBucket is the bucket of a config-less start.
func (f *Flags) flagBucket(lookup func(string) (string, bool)) (BucketConfig, error) {
	var errs []error
	b := BucketConfig{Name: f.bucket, S3: S3Config{Bucket: f.upstreamBucket, Region: f.region, Endpoint: f.upstream}}
	if f.bucket == "" {
		errs = append(errs, errors.New("-bucket is required for a config-less start"))
	}
	if f.upstream == "" {
		errs = append(errs, errors.New("-upstream is required for a config-less start"))
	} else if u, err := url.Parse(f.upstream); err == nil && u.User != nil {
		errs = append(errs, errors.New("-upstream must not carry credentials; set "+EnvUpstreamAccessKey+" and "+EnvUpstreamSecretKey))
		b.S3.Endpoint = u.Scheme + "://" + u.Host
	}
	if b.S3.Bucket == "" {
		b.S3.Bucket = f.bucket
	}
	get := func(k string) string { v, _ := lookup(k); return v }
	ak, sk := get(EnvUpstreamAccessKey), get(EnvUpstreamSecretKey)
	switch {
	case ak != "" || sk != "":
		if ak == "" || sk == "" {
			errs = append(errs, fmt.Errorf("upstream credentials: set both %s and %s", EnvUpstreamAccessKey, EnvUpstreamSecretKey))
		}
	case get(EnvAWSAccessKey) != "" || get(EnvAWSSecretKey) != "":
		ak, sk = get(EnvAWSAccessKey), get(EnvAWSSecretKey)
		if ak == "" || sk == "" {
			errs = append(errs, fmt.Errorf("upstream credentials: set both %s and %s", EnvAWSAccessKey, EnvAWSSecretKey))
		}
	default:
		errs = append(errs, fmt.Errorf("upstream credentials: set %s and %s (or %s and %s)",
			EnvUpstreamAccessKey, EnvUpstreamSecretKey, EnvAWSAccessKey, EnvAWSSecretKey))
	}
	b.S3.AccessKey, b.S3.SecretKey = ak, sk
	b.Policy = f.policyConfig()
	cak, csk := get(EnvClientAccessKey), get(EnvClientSecretKey)
	switch {
	case f.authNone && (cak != "" || csk != ""):
		errs = append(errs, fmt.Errorf("-auth-none given but %s/%s are set: choose one", EnvClientAccessKey, EnvClientSecretKey))
	case f.authNone:
		b.Auth.None = true
	case cak == "" || csk == "":
		errs = append(errs, fmt.Errorf("client credentials: set %s and %s, or give -auth-none for a trusted network",
			EnvClientAccessKey, EnvClientSecretKey))
	default:
		b.Auth.SigV4.Credentials = []Credential{{AccessKey: cak, SecretKey: csk}}
	}
	return b, errors.Join(errs...)
}

// Apply overrides c with the flags that were set explicitly. Size flags were checked by Parse.
func (f *Flags) Apply(c *Config) error {
	a := &flagApplier{f: f, c: c}
	groups := []func(name string) bool{a.listener, a.sizes, a.timeouts, a.tls, a.front, a.upstream, a.uploads, a.observability}
	f.fs.Visit(func(fl *flag.Flag) {
		for _, apply := range groups {
			if apply(fl.Name) {
				return
			}
		}
	})
	return errors.Join(a.errs...)
}

// flagApplier copies explicitly set flags into a Config, one group of flags per method; each
// method reports whether it knew the flag.
type flagApplier struct {
	f    *Flags
	c    *Config
	errs []error
}

// nonNeg returns v, noting an error if it is negative.
func (a *flagApplier) nonNeg(name string, v int) int {
	if v < 0 {
		a.errs = append(a.errs, fmt.Errorf("-%s %d: must be >= 0", name, v))
	}
	return v
}

// listener applies the listener and zero-copy flags.
func (a *flagApplier) listener(name string) bool {
	f, s, zc := a.f, &a.c.Server, &a.c.Server.ZeroCopy
	switch name {
	case "listen":
		s.Address = f.address
	case "plain-listener":
		s.PlainListener = boolPtr(f.plain)
	case "reuse-port":
		s.ReusePort = f.reusePort
	case "event-loops":
		s.EventLoops = a.nonNeg(name, f.eventLoops)
	case "zero-copy":
		zc.Enabled = boolPtr(f.zeroCopy)
	case "pipe-size":
		zc.PipeBufferSize = ByteSize(f.pipeSize.v)
	case "min-pipe-size":
		zc.MinPipeSize = ByteSize(f.minPipe.v)
	case "pipe-pool":
		zc.PipePoolSize = a.nonNeg(name, f.pipePool)
	case "read-batch":
		zc.ReadBatch = ByteSize(f.readBatch.v)
	default:
		return false
	}
	return true
}

// sizes applies the request size, memory and connection/rate limit flags.
func (a *flagApplier) sizes(name string) bool {
	f, s := a.f, &a.c.Server
	switch name {
	case "max-head-bytes":
		s.MaxHeadBytes = ByteSize(f.maxHead.v)
	case "max-uri-bytes":
		s.MaxURIBytes = ByteSize(f.maxURI.v)
	case "inline-body-max":
		s.InlineBodyMax = ByteSize(f.inlineMax.v)
	case "max-object-size":
		s.MaxObjectSize = ByteSize(f.maxObject.v)
	case "complete-body-budget":
		s.CompleteBodyBudget = ByteSize(f.completeBudget.v)
	case "copy-memory-max":
		s.CopyMemoryMax = ByteSize(f.copyMemoryMax.v)
	case "max-connections", "max-connections-per-ip", "rate-per-ip", "burst-per-ip", "rate-per-principal", "burst-per-principal":
		applyLimitFlag(name, &f.lim, &s.Limits)
	default:
		return false
	}
	return true
}

// timeouts applies the client-side timeout flags.
func (a *flagApplier) timeouts(name string) bool {
	f, s := a.f, &a.c.Server
	switch name {
	case "head-timeout":
		s.HeadTimeout = Duration(f.headTimeout)
	case "idle-timeout":
		s.IdleTimeout = Duration(f.idleTimeout)
	case "body-stall-timeout":
		s.BodyStallTimeout = Duration(f.stallTimeout)
	case "response-timeout":
		s.ResponseTimeout = Duration(f.responseTimeout)
	case "drain-timeout":
		s.DrainTimeout = Duration(f.drainTime)
	default:
		return false
	}
	return true
}

// tls applies the -tls-* flags.
func (a *flagApplier) tls(name string) bool {
	f, t := a.f, &a.c.Server.TLS
	switch name {
	case "tls-address":
		t.Address = f.tlsAddress
	case "tls-cert":
		t.CertFile = f.tlsCert
	case "tls-key":
		t.KeyFile = f.tlsKey
	case "tls-min-version":
		t.MinVersion = f.tlsMinVer
	case "tls-handshake-timeout":
		t.HandshakeTimeout = Duration(f.tlsHandshake)
	case "tls-driver":
		t.Driver = f.tlsDriver
	default:
		return false
	}
	return true
}

// front applies the flags about what stands in front of the proxy: PROXY protocol and virtual
// host names.
func (a *flagApplier) front(name string) bool {
	f, s := a.f, &a.c.Server
	switch name {
	case "proxy-protocol":
		s.ProxyProtocol.Enabled = f.proxyProtocol
	case "proxy-protocol-trusted-cidr":
		s.ProxyProtocol.TrustedCIDRs = append([]string(nil), f.proxyTrusted...)
	case "virtual-host-suffix":
		s.VirtualHostSuffixes = nil // "-virtual-host-suffix=" alone: path style only
		if len(f.vhostSuffixes) > 0 {
			s.VirtualHostSuffixes = append([]string(nil), f.vhostSuffixes...)
		}
	default:
		return false
	}
	return true
}

// upstream applies the upstream connection pool flags.
func (a *flagApplier) upstream(name string) bool {
	f, up := a.f, &a.c.Upstream
	switch name {
	case "dial-timeout":
		up.DialTimeout = Duration(f.dialTimeout)
	case "upstream-max-idle":
		up.MaxIdle = a.nonNeg(name, f.maxIdle)
	case "upstream-max-conns":
		up.MaxConns = a.nonNeg(name, f.maxConns)
	case "upstream-idle-timeout":
		up.IdleTimeout = Duration(f.upIdleTimeout)
	case "upstream-abort-retry-for":
		up.AbortRetryFor = Duration(f.abortRetryFor)
	default:
		return false
	}
	return true
}

// uploads applies the upload flags to every bucket.
func (a *flagApplier) uploads(name string) bool {
	f, bs := a.f, a.c.Buckets
	switch name {
	case "multipart-threshold":
		for i := range bs {
			bs[i].Upload.MultipartThreshold = ByteSize(f.threshold.v)
		}
	case "part-size":
		for i := range bs {
			bs[i].Upload.PartSize = ByteSize(f.partSize.v)
		}
	case "concurrent-parts":
		for i := range bs {
			bs[i].Upload.ConcurrentParts = f.concurrentParts
		}
	case "auto-chunk":
		for i := range bs {
			bs[i].Upload.AutoChunk = boolPtr(f.autoChunk)
		}
	default:
		return false
	}
	return true
}

// observability applies the tracing, metrics and logging flags.
func (a *flagApplier) observability(name string) bool {
	f, c := a.f, a.c
	switch name {
	case "tracing", "tracing-endpoint", "tracing-sample-ratio", "tracing-service-name", "tracing-timeout",
		"tracing-queue-size", "tracing-record-keys":
		applyTracingFlag(name, &f.tracing, &c.Tracing)
	case "metrics":
		c.Metrics.Enabled = boolPtr(f.metricsOn)
	case "admin-address":
		c.Metrics.Address = f.metricsAddr
	case "pprof":
		c.Metrics.PProf = f.pprof
	case "log-level":
		c.Log.Level = f.logLevel
	case "log-format":
		c.Log.Format = f.logFormat
	case "access-log":
		c.Log.Access = boolPtr(f.accessLog)
	default:
		return false
	}
	return true
}

func boolPtr(b bool) *bool { return &b }
