package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config configures a Verifier. Zero values take the documented defaults.
type Config struct {
	// Algorithms are the JWS "alg" values accepted (RFC 7518 3.1): HS256, HS384, HS512, RS256,
	// RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA. Required; "none" is never accepted.
	Algorithms []string
	// Secret is the HMAC key for HS*; required when an HS algorithm is listed, used for nothing else.
	Secret []byte
	// PublicKeyPEM is a PEM "PUBLIC KEY" (PKIX) or "CERTIFICATE" holding the RSA, ECDSA or Ed25519
	// key that verifies every asymmetric token, whatever its kid. Excludes JWKSURL.
	PublicKeyPEM []byte
	// JWKSURL is an http(s) URL serving a JSON Web Key Set; the token's kid selects its key.
	JWKSURL string
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat; 0 = none.
	Leeway time.Duration
	// RefreshInterval is how often the JWKS is fetched; 0 = 5 min.
	RefreshInterval time.Duration
	// MinRefreshInterval bounds refreshes triggered by an unknown kid: at most one per interval;
	// 0 = 10 s.
	MinRefreshInterval time.Duration
	// MaxKeyAge is how long keys from the last successful fetch keep verifying tokens while
	// refreshes fail; 0 = 1 h.
	MaxKeyAge time.Duration
	// FetchTimeout bounds one JWKS request; 0 = 10 s.
	FetchTimeout time.Duration
	// CacheSize bounds the verified tokens kept; 0 = 10000, negative = no cache.
	CacheSize int
	// HTTPClient fetches the JWKS; nil = a client with FetchTimeout.
	HTTPClient *http.Client
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
}

// Verifier verifies tokens. Create it with New; with a JWKSURL, call Run (or Refresh) so it has
// keys. Its methods are safe for concurrent use.
type Verifier struct {
	cfg      Config
	parser   *jwt.Parser
	static   crypto.PublicKey           // from PublicKeyPEM, or nil
	keys     atomic.Pointer[keySet]     // from JWKSURL, nil until the first fetch succeeded
	kick     chan struct{}              // asks the refresher for an early fetch
	lastKick atomic.Int64               // unix nanoseconds of the last unknown-kid kick
	lastErr  atomic.Pointer[fetchError] // the last fetch's failure, nil after a success

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cached
}

type cached struct {
	sub    string
	claims map[string]any
	exp    time.Time
	jwks   bool // verified with a JWKS key: used only while the key set is current
}

type fetchError struct{ err error }

var knownAlgs = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "EdDSA"}

// New checks cfg and prepares a Verifier. It does no I/O: a JWKS is fetched by Run or Refresh.
func New(cfg Config) (*Verifier, error) {
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 5 * time.Minute
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 10 * time.Second
	}
	if cfg.MaxKeyAge <= 0 {
		cfg.MaxKeyAge = time.Hour
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 10 * time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.FetchTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var errs []error
	if len(cfg.Algorithms) == 0 {
		errs = append(errs, errors.New("algorithms: at least one is required"))
	}
	hs, asym := false, false
	for _, a := range cfg.Algorithms {
		switch {
		case !slices.Contains(knownAlgs, a):
			errs = append(errs, fmt.Errorf("algorithms: %q is not one of %s", a, strings.Join(knownAlgs, ", ")))
		case strings.HasPrefix(a, "HS"):
			hs = true
		default:
			asym = true
		}
	}
	if hs && len(cfg.Secret) == 0 {
		errs = append(errs, errors.New("secret: required for the HS algorithms"))
	}
	if !hs && len(cfg.Secret) > 0 {
		errs = append(errs, errors.New("secret: set, but no HS algorithm is listed"))
	}
	if len(cfg.Secret) > 0 && len(cfg.Secret) < 32 {
		errs = append(errs, errors.New("secret: want at least 32 bytes"))
	}
	if cfg.JWKSURL != "" && len(cfg.PublicKeyPEM) > 0 {
		errs = append(errs, errors.New("jwks_url and public_key_file: set one, not both"))
	}
	if asym && cfg.JWKSURL == "" && len(cfg.PublicKeyPEM) == 0 {
		errs = append(errs, errors.New("jwks_url or public_key_file: required for the RS, PS, ES and EdDSA algorithms"))
	}
	if !asym && (cfg.JWKSURL != "" || len(cfg.PublicKeyPEM) > 0) {
		errs = append(errs, errors.New("jwks_url or public_key_file: set, but only HS algorithms are listed"))
	}
	if u := cfg.JWKSURL; u != "" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		errs = append(errs, fmt.Errorf("jwks_url %q: want an http or https URL", u))
	}
	v := &Verifier{cfg: cfg, kick: make(chan struct{}, 1), cache: map[[sha256.Size]byte]cached{}}
	if len(cfg.PublicKeyPEM) > 0 {
		k, err := parsePEM(cfg.PublicKeyPEM)
		if err != nil {
			errs = append(errs, fmt.Errorf("public_key_file: %w", err))
		}
		v.static = k
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(cfg.Algorithms), jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), jwt.WithLeeway(cfg.Leeway), jwt.WithTimeFunc(cfg.Now), jwt.WithStrictDecoding()}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// parsePEM reads the first PEM block: a PKIX public key or a certificate.
func parsePEM(b []byte) (crypto.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var k any
	var err error
	switch blk.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(blk.Bytes); err == nil {
			k = c.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY or CERTIFICATE", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	switch k.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported key type %T", k)
}

// VerifyToken verifies a compact JWS token and returns its subject and claims (shared with
// other callers of the same token: read-only). It never blocks and does no I/O; with a warm
// cache it does not verify a signature. An error is one of the package's sentinels.
func (v *Verifier) VerifyToken(token []byte) (sub string, claims map[string]any, err error) {
	now := v.cfg.Now()
	sum := sha256.Sum256(token)
	if v.cfg.CacheSize > 0 {
		v.mu.Lock()
		c, ok := v.cache[sum]
		v.mu.Unlock()
		if ok && now.Before(c.exp) && (!c.jwks || v.keysCurrent(now)) {
			return c.sub, c.claims, nil
		}
	}
	mc := jwt.MapClaims{}
	tok, err := v.parser.ParseWithClaims(string(token), mc, v.keyFor)
	if err != nil {
		return "", nil, v.classify(tok, err)
	}
	sub, _ = mc["sub"].(string)
	if sub == "" {
		return "", nil, ErrMissingSubject
	}
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return "", nil, ErrMissingExp
	}
	if v.cfg.CacheSize > 0 {
		v.put(sum, cached{sub: sub, claims: mc, exp: exp.Time, jwks: v.static == nil && !strings.HasPrefix(tok.Method.Alg(), "HS")})
	}
	return sub, mc, nil
}

// put caches a verified token; a full cache drops its expired entries, and if none had
// expired, all of them (a burst of distinct tokens costs verifications, never memory).
func (v *Verifier) put(sum [sha256.Size]byte, c cached) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cache) >= v.cfg.CacheSize {
		now := v.cfg.Now()
		for k, e := range v.cache {
			if !now.Before(e.exp) {
				delete(v.cache, k)
			}
		}
		if len(v.cache) >= v.cfg.CacheSize {
			clear(v.cache)
		}
	}
	v.cache[sum] = c
}

// purge empties the verified-token cache (the key set changed: a removed key's tokens go).
func (v *Verifier) purge() {
	v.mu.Lock()
	clear(v.cache)
	v.mu.Unlock()
}

// classify maps a jwt error to the package's sentinels. It never quotes the token.
func (v *Verifier) classify(tok *jwt.Token, err error) error {
	for _, s := range []error{ErrUnknownKey, ErrKeyType, ErrNoKeys, ErrAlgorithm} {
		if errors.Is(err, s) {
			return s
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrAlgorithm // an alg the library does not know
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok == nil || tok.Method == nil || !slices.Contains(v.cfg.Algorithms, tok.Method.Alg()) {
			return ErrAlgorithm
		}
		return ErrSignature
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrMissingExp // the only claim the parser requires
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrIssuedInFuture
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrAudience
	}
	return ErrInvalidClaims
}

// keyFor is the parser's key function: the configured key for the token's algorithm, whose type
// must match it (RFC 8725 3.1: an HS token is never checked against a public key, an RS token
// never against an EC key).
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if !slices.Contains(v.cfg.Algorithms, alg) {
		return nil, ErrAlgorithm
	}
	if strings.HasPrefix(alg, "HS") {
		return v.cfg.Secret, nil
	}
	var k crypto.PublicKey
	if v.static != nil {
		k = v.static
	} else {
		ks := v.keys.Load()
		if !v.keysCurrent(v.cfg.Now()) {
			return nil, ErrNoKeys
		}
		kid, _ := t.Header["kid"].(string)
		jk, ok := ks.lookup(kid)
		if !ok {
			v.kickRefresh()
			return nil, ErrUnknownKey
		}
		if jk.alg != "" && jk.alg != alg {
			return nil, ErrKeyType
		}
		k = jk.key
	}
	if !keyFits(alg, k) {
		return nil, ErrKeyType
	}
	return k, nil
}

// keyFits reports whether key is of the type (and curve) alg verifies with.
func keyFits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256() || alg == "ES384" && k.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// kickRefresh asks the refresher for an early fetch, at most once per MinRefreshInterval.
func (v *Verifier) kickRefresh() {
	now := v.cfg.Now().UnixNano()
	last := v.lastKick.Load()
	if now-last < int64(v.cfg.MinRefreshInterval) || !v.lastKick.CompareAndSwap(last, now) {
		return
	}
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// keysCurrent reports whether a JWKS was fetched within MaxKeyAge of now.
func (v *Verifier) keysCurrent(now time.Time) bool {
	ks := v.keys.Load()
	return ks != nil && now.Sub(ks.fetched) <= v.cfg.MaxKeyAge
}
