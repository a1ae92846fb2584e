package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/jwtauth"
)

// JWTConfig is a bucket's auth.jwt block: bearer tokens accepted beside (or instead of) SigV4.
// See README.md ("JWT authentication").
type JWTConfig struct {
	// HS256/384/512, RS256/384/512, PS256/384/512, ES256/384, EdDSA; required
	Algorithms    []string `yaml:"algorithms"`
	JWKSURL       string   `yaml:"jwks_url"`        // JWK set for the asymmetric algorithms; kid selects the key
	Secret        string   `yaml:"secret"`          // HMAC key for HS*, at least 32 bytes; use "${JWT_SECRET}"
	PublicKeyFile string   `yaml:"public_key_file"` // PEM public key or certificate (instead of jwks_url)
	Issuer        string   `yaml:"issuer"`          // required iss, when set
	Audience      string   `yaml:"audience"`        // required aud, when set
	Leeway        Duration `yaml:"leeway"`          // clock skew on exp, nbf, iat; default 0
	// where a request carries its token; default [{header: Authorization, prefix: "Bearer "}]
	TokenSources       []TokenSourceConfig `yaml:"token_sources"`
	RefreshInterval    Duration            `yaml:"refresh_interval"`     // JWKS refetch; default 5m
	MinRefreshInterval Duration            `yaml:"min_refresh_interval"` // unknown-kid refetch at most this often; default 10s
	MaxKeyAge          Duration            `yaml:"max_key_age"`          // cached JWKS served while refreshes fail; default 1h
	CacheSize          int                 `yaml:"cache_size"`           // verified tokens cached; default 10000
}

// TokenSourceConfig is one place a token may be: {header: Authorization, prefix: "Bearer "} or
// {query: token}.
type TokenSourceConfig struct {
	Header string `yaml:"header"`
	Prefix string `yaml:"prefix"`
	Query  string `yaml:"query"`
}

// jwtAuthenticator is a bucket's token Authenticator with the Verifier behind it, so the server
// can run its JWKS refresher and ask it for readiness.
type jwtAuthenticator struct {
	engine.Authenticator
	bucket string
	v      *jwtauth.Verifier
	jwks   string // the JWKS URL, "" without one
}

// jwtAuth sets eb.Authenticator from b's auth.jwt block; nothing without one. It reads the public
// key file but does no network I/O.
func jwtAuth(b BucketConfig, eb *engine.Bucket) error {
	j := b.Auth.JWT
	if j == nil {
		return nil
	}
	cfg := jwtauth.Config{
		Algorithms: j.Algorithms, JWKSURL: j.JWKSURL, Issuer: j.Issuer, Audience: j.Audience,
		Leeway: time.Duration(j.Leeway), RefreshInterval: time.Duration(j.RefreshInterval),
		MinRefreshInterval: time.Duration(j.MinRefreshInterval), MaxKeyAge: time.Duration(j.MaxKeyAge),
		CacheSize: j.CacheSize,
	}
	if j.Secret != "" {
		cfg.Secret = []byte(j.Secret)
	}
	if j.PublicKeyFile != "" {
		pem, err := os.ReadFile(j.PublicKeyFile)
		if err != nil {
			return fmt.Errorf("bucket %q: auth.jwt.public_key_file: %w", b.Name, err)
		}
		if len(pem) == 0 {
			return fmt.Errorf("bucket %q: auth.jwt.public_key_file %s is empty", b.Name, j.PublicKeyFile)
		}
		cfg.PublicKeyPEM = pem
	}
	v, err := jwtauth.New(cfg)
	if err != nil {
		return fmt.Errorf("bucket %q: auth.jwt: %s", b.Name, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	sources := []engine.TokenSource{{Header: "Authorization", Prefix: "Bearer "}}
	if len(j.TokenSources) > 0 {
		sources = sources[:0]
		for _, s := range j.TokenSources {
			sources = append(sources, engine.TokenSource{Header: s.Header, Prefix: s.Prefix, Query: s.Query})
		}
	}
	if err := engine.ValidateTokenSources(sources); err != nil {
		return fmt.Errorf("bucket %q: auth.jwt.%s", b.Name, err)
	}
	eb.Authenticator = &jwtAuthenticator{Authenticator: engine.TokenAuthenticator(v, "jwt", sources),
		bucket: b.Name, v: v, jwks: j.JWKSURL}
	return nil
}

// jwtAuthenticators lists the token Authenticators of o's buckets.
func jwtAuthenticators(o engine.Options) []*jwtAuthenticator {
	var out []*jwtAuthenticator
	for _, b := range o.Buckets {
		if a, ok := b.Authenticator.(*jwtAuthenticator); ok {
			out = append(out, a)
		}
	}
	return out
}

// jwksRunner runs the JWKS refreshers of the buckets in force; Reload replaces them.
type jwksRunner struct {
	log    *slog.Logger
	mu     sync.Mutex
	cancel context.CancelFunc
	auths  []*jwtAuthenticator
}

// prime fetches every JWKS once (bounded by each fetch timeout), so a reloaded bucket has its
// keys before it takes requests; failures are logged and leave the refresher to retry.
func (r *jwksRunner) prime(auths []*jwtAuthenticator) {
	var wg sync.WaitGroup
	for _, a := range auths {
		if a.jwks == "" {
			continue
		}
		wg.Go(func() {
			if err := a.v.Refresh(context.Background()); err != nil {
				r.log.Warn("jwks fetch failed", "bucket", a.bucket, "err", err)
			}
		})
	}
	wg.Wait()
}

// start stops the previous refreshers and runs one per bucket with a JWKS in auths.
func (r *jwksRunner) start(auths []*jwtAuthenticator) {
	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel()
	}
	r.cancel, r.auths = cancel, auths
	r.mu.Unlock()
	for _, a := range auths {
		if a.jwks == "" {
			continue
		}
		go a.v.Run(ctx, func(err error) { r.log.Warn("jwks refresh failed", "bucket", a.bucket, "err", err) })
	}
}

func (r *jwksRunner) stop() {
	r.mu.Lock()
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
}

// ready lists the buckets whose JWKS has no current keys (never fetched, or older than max_key_age).
func (r *jwksRunner) ready() []string {
	r.mu.Lock()
	auths := r.auths
	r.mu.Unlock()
	var bad []string
	for _, a := range auths {
		if err := a.v.Ready(); err != nil {
			bad = append(bad, fmt.Sprintf("bucket %s: auth.jwt: %v", a.bucket, err))
		}
	}
	sort.Strings(bad)
	return bad
}

// CheckWarnings fetches every auth.jwt.jwks_url once (each within 10 s) and describes those that
// fail: for -check, where an unreachable JWKS is a warning, not an error (at run time it is a
// readiness failure). It is the only part of -check that uses the network.
func (c *Config) CheckWarnings() []string {
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		return nil // Validate reports it
	}
	r := &jwksRunner{log: slog.New(slog.DiscardHandler)}
	auths := jwtAuthenticators(o)
	r.prime(auths)
	r.auths = auths
	return append(r.ready(), c.tlsWarnings()...)
}

// jwtRouteAuth describes a bucket's authentication for -check's route lines: "jwt" or
// "sigv4 or jwt".
func jwtRouteAuth(a AuthConfig) string {
	if len(a.SigV4.Credentials) > 0 {
		return "sigv4 or jwt"
	}
	return "jwt"
}
