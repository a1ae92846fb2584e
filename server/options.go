package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/transfer"
)

// Defaults applied by Normalize.
const (
	DefaultAddress        = "0.0.0.0:8080"
	DefaultMetricsAddress = "127.0.0.1:9090"
	DefaultDrainTimeout   = 30 * time.Second
	minPartSize           = 5 << 20
)

// Normalize fills defaults in place.
func (c *Config) Normalize() {
	if c.Server.Address == "" {
		c.Server.Address = DefaultAddress
	}
	if c.Metrics.Address == "" {
		c.Metrics.Address = DefaultMetricsAddress
	}
	if c.Server.DrainTimeout == 0 {
		c.Server.DrainTimeout = Duration(DefaultDrainTimeout)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	for i := range c.Buckets {
		b := &c.Buckets[i]
		if b.PathPrefix == "" {
			b.PathPrefix = "/" + b.Name
		}
		if b.S3.Region == "" {
			b.S3.Region = "us-east-1"
		}
		if b.Upload.MultipartThreshold == 0 {
			b.Upload.MultipartThreshold = 50 << 20
		}
		if b.Upload.PartSize == 0 {
			b.Upload.PartSize = 100 << 20
		}
		if b.Upload.ConcurrentParts == 0 {
			b.Upload.ConcurrentParts = 4
		}
	}
}

// Validate lists every problem in the (normalized) configuration. It never dials.
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
	if s := c.Server.ZeroCopy.PipeBufferSize; s != 0 && (s < 4096 || s > 1<<30) {
		errs = append(errs, fmt.Errorf("server.zero_copy.pipe_buffer_size %d: want 4KiB..1GiB", s))
	}
	if c.Server.EventLoops < 0 {
		errs = append(errs, errors.New("server.event_loops must be >= 0"))
	}
	for _, b := range c.Buckets {
		p := strings.TrimPrefix(b.PathPrefix, "/")
		if !strings.HasPrefix(b.PathPrefix, "/") || p == "" || strings.Contains(p, "/") {
			errs = append(errs, fmt.Errorf("bucket %q: path_prefix %q must be one path segment like /uploads", b.Name, b.PathPrefix))
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
	}
	if _, err := c.EngineOptions(nil); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// EngineOptions converts the configuration for the data plane.
func (c *Config) EngineOptions(logger *slog.Logger) (engine.Options, error) {
	zc := c.Server.ZeroCopy
	o := engine.Options{
		Address:          c.Server.Address,
		EventLoops:       c.Server.EventLoops,
		MaxHeadBytes:     int(c.Server.MaxHeadBytes),
		MaxURIBytes:      int(c.Server.MaxURIBytes),
		HeadTimeout:      time.Duration(c.Server.HeadTimeout),
		IdleTimeout:      time.Duration(c.Server.IdleTimeout),
		BodyStallTimeout: time.Duration(c.Server.BodyStallTimeout),
		ResponseTimeout:  time.Duration(c.Server.ResponseTimeout),
		InlineBodyMax:    int(c.Server.InlineBodyMax),
		MaxObjectSize:    int64(c.Server.MaxObjectSize),
		Transfer: transfer.Options{
			PipeSize:     int(zc.PipeBufferSize),
			MinPipeSize:  int(zc.MinPipeSize),
			MaxIdlePipes: zc.PipePoolSize,
			ForceCopy:    zc.Enabled != nil && !*zc.Enabled,
		},
		Upstream: engine.UpstreamOptions{
			DialTimeout: time.Duration(c.Upstream.DialTimeout),
			MaxIdle:     c.Upstream.MaxIdle,
			IdleTimeout: time.Duration(c.Upstream.IdleTimeout),
		},
		Logger: logger,
	}
	for _, b := range c.Buckets {
		eb := engine.Bucket{
			Name: strings.TrimPrefix(b.PathPrefix, "/"),
			Upstream: engine.Upstream{
				Endpoint: b.S3.Endpoint, Bucket: b.S3.Bucket, Region: b.S3.Region,
				AccessKey: b.S3.AccessKey, SecretKey: b.S3.SecretKey,
			},
			AuthNone: b.Auth.None,
			Upload: engine.UploadOptions{
				MultipartThreshold: int64(b.Upload.MultipartThreshold),
				PartSize:           int64(b.Upload.PartSize),
				ConcurrentParts:    b.Upload.ConcurrentParts,
			},
		}
		if b.S3.CAFile != "" {
			pem, err := os.ReadFile(b.S3.CAFile)
			if err != nil {
				return o, fmt.Errorf("bucket %q: s3.ca_file: %w", b.Name, err)
			}
			eb.Upstream.RootCAs = x509.NewCertPool()
			if !eb.Upstream.RootCAs.AppendCertsFromPEM(pem) {
				return o, fmt.Errorf("bucket %q: s3.ca_file %s holds no PEM certificate", b.Name, b.S3.CAFile)
			}
		}
		if len(b.Auth.SigV4.Credentials) > 0 {
			eb.Credentials = map[string]string{}
			for _, cr := range b.Auth.SigV4.Credentials {
				if _, dup := eb.Credentials[cr.AccessKey]; dup {
					return o, fmt.Errorf("bucket %q: client access key listed twice", b.Name)
				}
				eb.Credentials[cr.AccessKey] = cr.SecretKey
			}
		}
		if eb.Name == "" {
			eb.Name = b.Name
		}
		o.Buckets = append(o.Buckets, eb)
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
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
