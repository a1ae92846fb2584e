package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/transfer"
	"github.com/mizuchi/uploadr/uploadid"
)

// Defaults applied by Normalize (the engine's own defaults, written out so that -h, the README and
// a normalized Config all show the values in force).
const (
	DefaultAddress             = "0.0.0.0:8080"
	DefaultMetricsAddress      = "127.0.0.1:9090"
	DefaultDrainTimeout        = 30 * time.Second
	DefaultHeadTimeout         = 30 * time.Second
	DefaultIdleTimeout         = 60 * time.Second
	DefaultStallTimeout        = 60 * time.Second
	DefaultResponseTimeout     = 5 * time.Minute
	DefaultDialTimeout         = 5 * time.Second
	DefaultUpstreamMaxIdle     = 64
	DefaultUpstreamIdleTimeout = 30 * time.Second
	DefaultAbortRetryFor       = 10 * time.Minute
	maxAbortRetryFor           = 24 * time.Hour // S3 lifecycle rules act in whole days
	DefaultPipePool            = 64
	DefaultConcurrentParts     = 4
	minPartSize                = 5 << 20
)

// Normalize fills defaults in place: every zero value takes the default README.md documents.
func (c *Config) Normalize() {
	s, zc := &c.Server, &c.Server.ZeroCopy
	c.Tracing.normalize()
	setStr(&s.Address, DefaultAddress)
	setSize(&zc.PipeBufferSize, 1<<20)
	setSize(&zc.MinPipeSize, 256<<10)
	setInt(&zc.PipePoolSize, DefaultPipePool)
	setSize(&zc.ReadBatch, transfer.DefaultReadBatch)
	if zc.Enabled == nil {
		zc.Enabled = boolPtr(true)
	}
	if s.PlainListener == nil {
		s.PlainListener = boolPtr(true)
	}
	setSize(&s.MaxHeadBytes, 64<<10)
	setSize(&s.MaxURIBytes, 16<<10)
	setSize(&s.InlineBodyMax, 1<<20)
	setSize(&s.MaxObjectSize, 5<<40)
	setSize(&s.CompleteBodyBudget, engine.DefaultCompleteBodyBudget)
	setSize(&s.CopyMemoryMax, transfer.DefaultCopyMemoryMax)
	setDur(&s.HeadTimeout, DefaultHeadTimeout)
	setDur(&s.IdleTimeout, DefaultIdleTimeout)
	setDur(&s.BodyStallTimeout, DefaultStallTimeout)
	setDur(&s.ResponseTimeout, DefaultResponseTimeout)
	setDur(&s.DrainTimeout, DefaultDrainTimeout)
	setStr(&s.TLS.MinVersion, DefaultTLSMinVersion)
	setDur(&s.TLS.HandshakeTimeout, DefaultTLSHandshakeTimeout)
	setStr(&s.TLS.Driver, DefaultTLSDriver)
	setDur(&c.Upstream.DialTimeout, DefaultDialTimeout)
	setInt(&c.Upstream.MaxIdle, DefaultUpstreamMaxIdle)
	setDur(&c.Upstream.IdleTimeout, DefaultUpstreamIdleTimeout)
	setDur(&c.Upstream.AbortRetryFor, DefaultAbortRetryFor)
	if c.Metrics.Enabled == nil {
		c.Metrics.Enabled = boolPtr(true)
	}
	setStr(&c.Metrics.Address, DefaultMetricsAddress)
	setStr(&c.Log.Level, "info")
	setStr(&c.Log.Format, "text")
	if c.Log.Access == nil {
		c.Log.Access = boolPtr(true)
	}
	for i := range c.Buckets {
		b := &c.Buckets[i]
		setStr(&b.PathPrefix, "/"+b.Name)
		setStr(&b.S3.Region, "us-east-1")
		if !b.Auth.None && len(b.Auth.SigV4.Regions) == 0 {
			b.Auth.SigV4.Regions = []string{b.S3.Region}
		}
		setSize(&b.Upload.MultipartThreshold, 50<<20)
		if b.Upload.AutoChunk == nil {
			b.Upload.AutoChunk = boolPtr(true)
		}
		setSize(&b.Upload.PartSize, 100<<20)
		setInt(&b.Upload.ConcurrentParts, DefaultConcurrentParts)
		b.Authz.normalize()
	}
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setSize(p *ByteSize, v ByteSize) {
	if *p == 0 {
		*p = v
	}
}

func setDur(p *Duration, v time.Duration) {
	if *p == 0 {
		*p = Duration(v)
	}
}

// Validate lists every problem in the (normalized) configuration, each naming its key. It never
// dials and never prints a secret.
func (c *Config) Validate() error {
	var errs []error
	if c.Log.Level != "" {
		if _, err := parseLevel(c.Log.Level); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format %q: want text or json", c.Log.Format))
	}
	errs = append(errs, c.Server.TLS.validate()...)
	errs = append(errs, c.Server.ProxyProtocol.validate()...)
	errs = append(errs, c.Tracing.validate()...)
	errs = append(errs, c.checkAddresses()...)
	errs = append(errs, c.checkDurationsAndCounts()...)
	if !c.Server.plainListener() && c.Server.TLS.Address == "" {
		errs = append(errs, errors.New("server.plain_listener is false and server.tls.address is empty: nothing to listen on"))
	}
	errs = append(errs, c.Server.checkSizes()...)
	errs = append(errs, checkLimits(c.Server.Limits)...)
	if s := c.Server.CompleteBodyBudget; s != 0 && s < 4<<20 {
		errs = append(errs, fmt.Errorf("server.complete_body_budget %d: want at least 4MiB (one largest CompleteMultipartUpload document)", s))
	}
	errs = append(errs, checkUploadIDSecrets(c.Server.UploadIDSecrets)...)
	for _, b := range c.Buckets {
		errs = append(errs, b.validate()...)
	}
	return errors.Join(append(errs, c.engineProblems()...)...)
}

// checkDurationsAndCounts refuses negative timeouts and counts, and an out-of-range
// upstream.abort_retry_for.
func (c *Config) checkDurationsAndCounts() []error {
	var errs []error
	for _, d := range []struct {
		key string
		v   Duration
	}{{"server.head_timeout", c.Server.HeadTimeout}, {"server.idle_timeout", c.Server.IdleTimeout},
		{"server.body_stall_timeout", c.Server.BodyStallTimeout}, {"server.response_timeout", c.Server.ResponseTimeout},
		{"server.drain_timeout", c.Server.DrainTimeout},
		{"upstream.dial_timeout", c.Upstream.DialTimeout}, {"upstream.idle_timeout", c.Upstream.IdleTimeout}} {
		if d.v < 0 { // the file refuses them at parse; a flag can still give one (-head-timeout=-5s)
			errs = append(errs, fmt.Errorf("%s %v: must be >= 0", d.key, d.v))
		}
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"server.event_loops", c.Server.EventLoops}, {"server.zero_copy.pipe_pool_size", c.Server.ZeroCopy.PipePoolSize},
		{"upstream.max_idle", c.Upstream.MaxIdle}, {"upstream.max_conns", c.Upstream.MaxConns}} {
		if n.v < 0 {
			errs = append(errs, fmt.Errorf("%s %d must be >= 0", n.key, n.v))
		}
	}
	if d := time.Duration(c.Upstream.AbortRetryFor); d < 0 || d > maxAbortRetryFor {
		errs = append(errs, fmt.Errorf("upstream.abort_retry_for %v: want 0 (the default, %v) up to %v", d, DefaultAbortRetryFor, maxAbortRetryFor))
	}
	return errs
}

// checkSizes checks the byte sizes under server: (pipes, head, URI, bodies, copy memory).
func (s *ServerConfig) checkSizes() []error {
	var errs []error
	zc := s.ZeroCopy
	if s := zc.PipeBufferSize; s != 0 && (s < 4096 || s > 1<<30) {
		errs = append(errs, fmt.Errorf("server.zero_copy.pipe_buffer_size %d: want 4KiB..1GiB", s))
	}
	if s := zc.MinPipeSize; s != 0 && (s < 4096 || s > 1<<30) {
		errs = append(errs, fmt.Errorf("server.zero_copy.min_pipe_size %d: want 4KiB..1GiB", s))
	}
	if s := zc.ReadBatch; s < 0 || s > 1<<30 {
		errs = append(errs, fmt.Errorf("server.zero_copy.read_batch %d: want 1 byte (off)..1GiB", s))
	}
	if zc.PipeBufferSize != 0 && zc.MinPipeSize > zc.PipeBufferSize {
		errs = append(errs, fmt.Errorf("server.zero_copy.min_pipe_size %d is above pipe_buffer_size %d", zc.MinPipeSize, zc.PipeBufferSize))
	}
	if s := s.MaxHeadBytes; s != 0 && (s < 1<<10 || s > 1<<20) {
		errs = append(errs, fmt.Errorf("server.max_head_bytes %d: want 1KiB..1MiB", s))
	}
	if s := s.MaxURIBytes; s != 0 && (s < 256 || s > 1<<20) {
		errs = append(errs, fmt.Errorf("server.max_uri_bytes %d: want 256 bytes..1MiB", s))
	}
	if s := s.InlineBodyMax; s > 16<<20 {
		errs = append(errs, fmt.Errorf("server.inline_body_max %d: want at most 16MiB", s))
	}
	if s := s.MaxObjectSize; s > 5<<40 {
		errs = append(errs, fmt.Errorf("server.max_object_size %d is above S3's 5 TiB object limit", s))
	}
	if s := s.CopyMemoryMax; s != 0 && (s < transfer.DefaultCopyBufferSize || s > 16<<30) {
		errs = append(errs, fmt.Errorf("server.copy_memory_max %d: want 256KiB..16GiB (at least one copy buffer)", s))
	}
	return errs
}

// validate checks one bucket's path prefix, upload sizes, auth and authz blocks.
func (b *BucketConfig) validate() []error {
	var errs []error
	p := strings.TrimPrefix(b.PathPrefix, "/")
	if !strings.HasPrefix(b.PathPrefix, "/") || p == "" || strings.Contains(p, "/") {
		errs = append(errs, fmt.Errorf("bucket %q: path_prefix %q must be one path segment like /uploads", b.Name, b.PathPrefix))
	}
	if (b.Name == engine.WildcardBucket) != (p == engine.WildcardBucket) {
		errs = append(errs, fmt.Errorf("bucket %q: path_prefix %q: the any-bucket entry is the one named \"*\", and has no other path prefix", b.Name, b.PathPrefix))
	}
	if b.Upload.PartSize < minPartSize {
		errs = append(errs, fmt.Errorf("bucket %q: upload.part_size %d is below S3's 5 MiB minimum", b.Name, b.Upload.PartSize))
	}
	if b.Upload.MultipartThreshold > 5<<30 {
		errs = append(errs, fmt.Errorf("bucket %q: upload.multipart_threshold %d is above S3's 5 GiB single-PUT limit", b.Name, b.Upload.MultipartThreshold))
	}
	if b.Upload.PartSize > 5<<30 {
		errs = append(errs, fmt.Errorf("bucket %q: upload.part_size %d is above S3's 5 GiB maximum", b.Name, b.Upload.PartSize))
	}
	if b.Upload.ConcurrentParts < 1 || b.Upload.ConcurrentParts > 64 {
		errs = append(errs, fmt.Errorf("bucket %q: upload.concurrent_parts %d: want 1..64", b.Name, b.Upload.ConcurrentParts))
	}
	if b.Auth.None && len(b.Auth.SigV4.Credentials) > 0 {
		errs = append(errs, fmt.Errorf("bucket %q: auth is none but credentials are listed", b.Name))
	}
	if b.Auth.None && len(b.Auth.SigV4.Regions) > 0 {
		errs = append(errs, fmt.Errorf("bucket %q: auth is none but auth.sigv4.regions are listed", b.Name))
	}
	return append(errs, b.Authz.validate(b.Name)...)
}

// engineProblems is what the engine's own check of the options finds that Validate has not
// already named: the engine checks buckets again, so its upload, authz and secret problems are
// dropped.
func (c *Config) engineProblems() []error {
	_, err := c.EngineOptions(nil, nil)
	if err == nil {
		return nil
	}
	var errs []error
	for _, e := range flatten(err) {
		m := e.Error()
		if strings.Contains(m, "part size") || strings.Contains(m, "multipart threshold") || strings.Contains(m, "concurrent parts") ||
			strings.Contains(m, "complete body budget") || strings.Contains(m, ": authz.") ||
			strings.Contains(m, "upload id secrets") {
			continue
		}
		errs = append(errs, e)
	}
	return errs
}

// flatten returns the errors an errors.Join combined, or err itself.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// EngineOptions converts the configuration for the data plane. logger receives the engine's
// anomalies; access, if not nil, one line per request (the caller decides by log.access).
func (c *Config) EngineOptions(logger, access *slog.Logger) (engine.Options, error) {
	trusted, err := c.Server.ProxyProtocol.prefixes()
	if err != nil {
		return engine.Options{}, err
	}
	o := c.serverOptions(trusted, logger, access)
	var errs bucketErrs // every bucket's problems, not only the first (-check lists them all)
	for _, b := range c.Buckets {
		eb, authorizeTimeout := b.engineBucket(logger, &errs)
		if authorizeTimeout > o.AuthorizeTimeout {
			o.AuthorizeTimeout = max(authorizeTimeout, 5*time.Second)
		}
		o.Buckets = append(o.Buckets, eb)
	}
	if err := errors.Join(append(append(append(errs.bucket, errs.policy...), errs.authz...), o.Validate())...); err != nil {
		return o, err
	}
	return o, nil
}

// serverOptions is the engine options without buckets: listeners, limits, timeouts, transfer and
// upstream pool.
func (c *Config) serverOptions(trusted []netip.Prefix, logger, access *slog.Logger) engine.Options {
	zc := c.Server.ZeroCopy
	return engine.Options{
		Address:            c.Server.Address,
		NoPlainListener:    !c.Server.plainListener(),
		ReusePort:          c.Server.ReusePort,
		EventLoops:         c.Server.EventLoops,
		MaxHeadBytes:       int(c.Server.MaxHeadBytes),
		MaxURIBytes:        int(c.Server.MaxURIBytes),
		HeadTimeout:        time.Duration(c.Server.HeadTimeout),
		IdleTimeout:        time.Duration(c.Server.IdleTimeout),
		BodyStallTimeout:   time.Duration(c.Server.BodyStallTimeout),
		ResponseTimeout:    time.Duration(c.Server.ResponseTimeout),
		InlineBodyMax:      int(c.Server.InlineBodyMax),
		MaxObjectSize:      int64(c.Server.MaxObjectSize),
		CompleteBodyBudget: int64(c.Server.CompleteBodyBudget),
		Transfer: transfer.Options{
			PipeSize:      int(zc.PipeBufferSize),
			MinPipeSize:   int(zc.MinPipeSize),
			MaxIdlePipes:  zc.PipePoolSize,
			ReadBatch:     int(zc.ReadBatch),
			ForceCopy:     zc.Enabled != nil && !*zc.Enabled,
			CopyMemoryMax: int(c.Server.CopyMemoryMax),
		},
		Upstream: engine.UpstreamOptions{
			DialTimeout:   time.Duration(c.Upstream.DialTimeout),
			MaxIdle:       c.Upstream.MaxIdle,
			MaxConns:      c.Upstream.MaxConns,
			IdleTimeout:   time.Duration(c.Upstream.IdleTimeout),
			AbortRetryFor: time.Duration(c.Upstream.AbortRetryFor),
		},
		VirtualHostSuffixes: append([]string(nil), c.Server.VirtualHostSuffixes...),
		ProxyProtocol:       engine.ProxyProtocol{Enabled: c.Server.ProxyProtocol.Enabled, Trusted: trusted},
		UploadIDSecrets:     uploadIDSecrets(c.Server.UploadIDSecrets),
		Limits:              c.Server.Limits.engine(),
		Logger:              logger,
		AccessLog:           access,
		TraceKeys:           c.Tracing.RecordKeys, // the Tracer itself is set by New (it owns the exporter)
	}
}

// bucketErrs gathers the problems of every bucket, by kind: EngineOptions reports the bucket
// problems first, then the policy ones, then the authz ones.
type bucketErrs struct{ bucket, policy, authz []error }

// engineBucket converts one bucket, adding its problems to errs. authorizeTimeout is the engine
// deadline its authorizer needs (zero without one).
func (b *BucketConfig) engineBucket(logger *slog.Logger, errs *bucketErrs) (eb engine.Bucket, authorizeTimeout time.Duration) {
	eb = engine.Bucket{
		Name: strings.TrimPrefix(b.PathPrefix, "/"),
		Upstream: engine.Upstream{
			Endpoint: b.S3.Endpoint, Bucket: b.S3.Bucket, Region: b.S3.Region,
			AccessKey: b.S3.AccessKey, SecretKey: b.S3.SecretKey,
		},
		AuthNone:       b.Auth.None,
		SigningRegions: append([]string(nil), b.Auth.SigV4.Regions...),
		Upload: engine.UploadOptions{
			MultipartThreshold: autoChunkThreshold(b.Upload),
			PartSize:           int64(b.Upload.PartSize),
			ConcurrentParts:    b.Upload.ConcurrentParts,
		},
	}
	errs.bucket = append(errs.bucket, b.upstreamCA(&eb)...)
	errs.bucket = append(errs.bucket, b.clientCredentials(&eb)...)
	if err := jwtAuth(*b, &eb); err != nil { // jwt.go
		errs.bucket = append(errs.bucket, err)
	}
	c, corsErrs := compileCORS(b.CORS) // config.go
	for _, err := range corsErrs {
		errs.bucket = append(errs.bucket, fmt.Errorf("bucket %q: %w", b.Name, err))
	}
	eb.CORS = c
	pol, err := b.Policy.compile()
	if err != nil {
		errs.policy = append(errs.policy, fmt.Errorf("bucket %q: %w", b.Name, err))
	}
	eb.Policy = pol
	authorizeTimeout = b.engineAuthorizer(&eb, logger, errs)
	if eb.Name == "" {
		eb.Name = b.Name
	}
	if eb.Name == engine.WildcardBucket && eb.Upstream.Bucket == engine.WildcardBucket {
		eb.Upstream.Bucket = "" // "*": the same-named upstream bucket
	}
	return eb, authorizeTimeout
}

// upstreamCA loads s3.ca_file, if set, as the roots eb trusts for its upstream.
func (b *BucketConfig) upstreamCA(eb *engine.Bucket) []error {
	if b.S3.CAFile == "" {
		return nil
	}
	var errs []error
	pem, err := os.ReadFile(b.S3.CAFile)
	if err != nil {
		errs = append(errs, fmt.Errorf("bucket %q: s3.ca_file: %w", b.Name, err))
	}
	eb.Upstream.RootCAs = x509.NewCertPool()
	if err == nil && !eb.Upstream.RootCAs.AppendCertsFromPEM(pem) {
		errs = append(errs, fmt.Errorf("bucket %q: s3.ca_file %s holds no PEM certificate", b.Name, b.S3.CAFile))
	}
	return errs
}

// clientCredentials gives eb the bucket's SigV4 client keys, refusing an access key listed twice.
func (b *BucketConfig) clientCredentials(eb *engine.Bucket) []error {
	if len(b.Auth.SigV4.Credentials) == 0 {
		return nil
	}
	eb.Credentials = map[string]string{}
	for _, cr := range b.Auth.SigV4.Credentials {
		if _, dup := eb.Credentials[cr.AccessKey]; dup {
			return []error{fmt.Errorf("bucket %q: client access key listed twice", b.Name)}
		}
		eb.Credentials[cr.AccessKey] = cr.SecretKey
	}
	return nil
}

// engineAuthorizer gives eb the bucket's external authorizer, if any, and returns the engine
// deadline it needs (zero without one). A bad authz block never leaves its bucket open: its
// problems go to errs and the options are refused (fail closed).
func (b *BucketConfig) engineAuthorizer(eb *engine.Bucket, logger *slog.Logger, errs *bucketErrs) time.Duration {
	if verrs := b.Authz.validate(b.Name); len(verrs) > 0 {
		errs.authz = append(errs.authz, verrs...)
		return 0
	}
	az, err := b.Authz.authorizer(b.Name, logger)
	if err != nil {
		errs.authz = append(errs.authz, err)
	}
	if az == nil {
		return 0
	}
	eb.Authorizer = az
	if b.Authz.OPA != nil {
		for _, h := range b.Authz.OPA.Headers {
			eb.AuthzHeaders = append(eb.AuthzHeaders, strings.ToLower(h))
		}
	}
	// The engine's own deadline stays above the block's, which answers first.
	return time.Duration(b.Authz.common().Timeout) + time.Second
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log.level %q: want debug, info, warn or error", s)
}

// autoChunkThreshold is the engine's threshold: 0 (no auto-chunking) when the bucket turned it off.
func autoChunkThreshold(u UploadConfig) int64 {
	if u.AutoChunk != nil && !*u.AutoChunk {
		return 0
	}
	return int64(u.MultipartThreshold)
}

// checkUploadIDSecrets checks server.upload_id_secrets: the first entry signs and must be set;
// every entry set is at least uploadid.MinKeyLen bytes. Messages name the entry, never its value.
func checkUploadIDSecrets(secrets []string) []error {
	var errs []error
	if len(secrets) > 0 && secrets[0] == "" {
		errs = append(errs, errors.New("server.upload_id_secrets[0] is empty: the first secret signs new upload ids; list none to use keys derived from the upstream secrets"))
	}
	for i, s := range secrets {
		if s != "" && len(s) < uploadid.MinKeyLen {
			errs = append(errs, fmt.Errorf("server.upload_id_secrets[%d] is %d bytes: want at least %d (32 random bytes recommended)", i, len(s), uploadid.MinKeyLen))
		}
	}
	return errs
}

// uploadIDSecrets is server.upload_id_secrets for the engine: the entries set, in order (an
// empty one, such as ${UPLOAD_ID_SECRET_PREVIOUS:-} outside a rotation, is skipped).
func uploadIDSecrets(secrets []string) [][]byte {
	var out [][]byte
	for _, s := range secrets {
		if s != "" {
			out = append(out, []byte(s))
		}
	}
	return out
}

// checkAddresses resolves every listen address in force as the start will (host:port, a port
// number, a host that resolves), without binding: -check must not fail because the running
// instance holds the address.
func (c *Config) checkAddresses() []error {
	var errs []error
	check := func(key, addr string) {
		if _, err := net.ResolveTCPAddr("tcp", addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: want host:port (%v)", key, addr, err))
		}
	}
	if c.Server.plainListener() && c.Server.Address != "" {
		check("server.address", c.Server.Address)
	}
	if c.Server.TLS.Address != "" {
		check("server.tls.address", c.Server.TLS.Address)
	}
	if (c.Metrics.Enabled == nil || *c.Metrics.Enabled) && c.Metrics.Address != "" {
		check("metrics.address", c.Metrics.Address)
	}
	return errs
}
