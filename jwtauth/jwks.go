package jwtauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"time"
)

// keySet is one fetched JWKS, immutable once stored.
type keySet struct {
	keys    map[string]jwk // by kid ("" for a key without one)
	fetched time.Time
}

type jwk struct {
	alg string // the JWK's "alg", "" when absent
	key crypto.PublicKey
}

// lookup returns the key kid names; a token without a kid may use a set's only key.
func (s *keySet) lookup(kid string) (jwk, bool) {
	if k, ok := s.keys[kid]; ok {
		return k, true
	}
	if kid == "" && len(s.keys) == 1 {
		for _, k := range s.keys {
			return k, true
		}
	}
	return jwk{}, false
}

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

// Refresh fetches the JWKS once and, on success, swaps it in. It blocks for at most
// Config.FetchTimeout. Without a JWKSURL it does nothing.
func (v *Verifier) Refresh(ctx context.Context) error {
	if v.cfg.JWKSURL == "" {
		return nil
	}
	err := v.fetch(ctx)
	if err != nil {
		v.lastErr.Store(&fetchError{err})
		return err
	}
	v.lastErr.Store(nil)
	return nil
}

func (v *Verifier) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", v.cfg.JWKSURL, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", v.cfg.JWKSURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks %s: status %d", v.cfg.JWKSURL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("jwks %s: %w", v.cfg.JWKSURL, err)
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("jwks %s: larger than %d bytes", v.cfg.JWKSURL, maxJWKSBytes)
	}
	ks, err := parseJWKS(body)
	if err != nil {
		return fmt.Errorf("jwks %s: %w", v.cfg.JWKSURL, err)
	}
	ks.fetched = v.cfg.Now()
	old := v.keys.Swap(ks)
	if old != nil && removedKey(old, ks) {
		v.purge() // tokens verified with a key the issuer withdrew are verified again
	}
	return nil
}

// removedKey reports whether a kid of old is missing from or differs in next.
func removedKey(old, next *keySet) bool {
	for kid, k := range old.keys {
		n, ok := next.keys[kid]
		if !ok {
			return true
		}
		if e, ok := k.key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !e.Equal(n.key) {
			return true
		}
	}
	return false
}

// parseJWKS reads a JSON Web Key Set (RFC 7517 5): {"keys": [...]}. Keys it cannot use (another
// "use" than "sig", symmetric "oct" keys, unknown types or curves) are skipped; a set without a
// usable key is an error.
func parseJWKS(b []byte) (*keySet, error) {
	var doc struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a JWK set: %w", err)
	}
	ks := &keySet{keys: map[string]jwk{}}
	for _, k := range doc.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var key crypto.PublicKey
		var err error
		switch k.Kty {
		case "RSA":
			key, err = rsaKey(k.N, k.E)
		case "EC":
			key, err = ecKey(k.Crv, k.X, k.Y)
		case "OKP":
			key, err = okpKey(k.Crv, k.X)
		default:
			continue // "oct" among them: HS keys come from the configured secret only
		}
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.Kid, err)
		}
		if key == nil {
			continue
		}
		if _, dup := ks.keys[k.Kid]; dup {
			return nil, fmt.Errorf("kid %q is listed twice", k.Kid)
		}
		ks.keys[k.Kid] = jwk{alg: k.Alg, key: key}
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("no usable signing key")
	}
	return ks, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// rsaKey: RFC 7518 6.3.1, n and e as base64url unsigned big-endian integers.
func rsaKey(n, e string) (crypto.PublicKey, error) {
	nb, err1 := b64(n)
	eb, err2 := b64(e)
	if err1 != nil || err2 != nil || len(nb) == 0 || len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("bad RSA n or e")
	}
	ev := 0
	for _, c := range eb {
		ev = ev<<8 | int(c)
	}
	k := &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: ev}
	if k.N.BitLen() < 2048 || ev < 3 || ev&1 == 0 {
		return nil, errors.New("RSA key below 2048 bits or with a bad exponent")
	}
	return k, nil
}

// ecKey: RFC 7518 6.2.1, crv P-256 or P-384 and the point's coordinates; the point must be on
// the curve. An unsupported curve is skipped (nil key).
func ecKey(crv, x, y string) (crypto.PublicKey, error) {
	var c elliptic.Curve
	switch crv {
	case "P-256":
		c = elliptic.P256()
	case "P-384":
		c = elliptic.P384()
	default:
		return nil, nil
	}
	size := (c.Params().BitSize + 7) / 8
	xb, err1 := b64(x)
	yb, err2 := b64(y)
	if err1 != nil || err2 != nil || len(xb) != size || len(yb) != size {
		return nil, errors.New("bad EC coordinates")
	}
	k, err := ecdsa.ParseUncompressedPublicKey(c, append(append([]byte{4}, xb...), yb...))
	if err != nil {
		return nil, errors.New("EC point is not on the curve")
	}
	return k, nil
}

// okpKey: RFC 8037 2, crv Ed25519 and x. Other curves are skipped (nil key).
func okpKey(crv, x string) (crypto.PublicKey, error) {
	if crv != "Ed25519" {
		return nil, nil
	}
	xb, err := b64(x)
	if err != nil || len(xb) != ed25519.PublicKeySize {
		return nil, errors.New("bad Ed25519 x")
	}
	return ed25519.PublicKey(xb), nil
}

// Run keeps the JWKS fresh until ctx ends: a fetch at once, then every RefreshInterval, and
// early when a token names an unknown kid (at most once per MinRefreshInterval). A failed fetch
// keeps the cached keys (until MaxKeyAge) and is retried after MinRefreshInterval. onError, if
// not nil, receives each failure (for the caller's log). Without a JWKSURL it returns at once.
func (v *Verifier) Run(ctx context.Context, onError func(error)) {
	if v.cfg.JWKSURL == "" {
		return
	}
	for {
		wait := v.cfg.RefreshInterval
		if err := v.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if onError != nil {
				onError(err)
			}
			wait = min(wait, v.cfg.MinRefreshInterval)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-v.kick:
			t.Stop()
		}
	}
}

// Ready reports whether the verifier can verify asymmetric tokens: nil for static keys; for a
// JWKS, nil once a fetch succeeded and its keys are younger than MaxKeyAge, else why not (the
// last fetch's failure).
func (v *Verifier) Ready() error {
	if v.cfg.JWKSURL == "" {
		return nil
	}
	if v.keysCurrent(v.cfg.Now()) {
		return nil // possibly after failed refreshes: cached keys are served until MaxKeyAge
	}
	if fe := v.lastErr.Load(); fe != nil {
		return fe.err
	}
	return errors.New("jwks " + v.cfg.JWKSURL + ": not fetched yet")
}
