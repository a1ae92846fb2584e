// Package jwtauth verifies JSON Web Tokens (RFC 7519) for upload clients: signatures by
// github.com/golang-jwt/jwt/v5 with keys from a shared secret (HS*), a PEM public key or a JWKS
// endpoint (RFC 7517), and the registered claims exp (required), nbf, iat, iss and aud.
//
// A Verifier's VerifyToken never blocks and does no I/O, so it may run on an event loop: a JWKS is
// fetched by a background refresher (Run) and read through an atomically swapped key set, and a
// verified token is cached by its SHA-256 until its exp, so a client that repeats a token costs a
// hash and a map lookup instead of an RSA or ECDSA verification. The package never logs, and its
// errors never quote a token or a signature.
package jwtauth
