package jwtauth

import "errors"

// Why a token was refused. Each message is safe to show to the client: none quotes the token.
var (
	ErrMalformed      = errors.New("jwtauth: token is malformed")
	ErrAlgorithm      = errors.New("jwtauth: token algorithm is not allowed")
	ErrUnknownKey     = errors.New("jwtauth: token is signed by an unknown key")
	ErrKeyType        = errors.New("jwtauth: token algorithm does not match its key")
	ErrSignature      = errors.New("jwtauth: token signature is invalid")
	ErrExpired        = errors.New("jwtauth: token is expired")
	ErrNotYetValid    = errors.New("jwtauth: token is not valid yet")
	ErrIssuedInFuture = errors.New("jwtauth: token is issued in the future")
	ErrMissingExp     = errors.New("jwtauth: token has no exp claim")
	ErrIssuer         = errors.New("jwtauth: token has the wrong issuer")
	ErrAudience       = errors.New("jwtauth: token has the wrong audience")
	ErrMissingSubject = errors.New("jwtauth: token has no sub claim")
	ErrInvalidClaims  = errors.New("jwtauth: token claims are invalid")
	ErrNoKeys         = errors.New("jwtauth: no current signing keys (JWKS unavailable)")
)
