package engine

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/mizuchi/uploadr/s3sig"
)

// Bearer tokens (JWT) beside SigV4.
//
// TokenAuthenticator adapts a TokenVerifier (jwtauth.Verifier) to an Authenticator. A bucket that
// sets both Bucket.Authenticator and Bucket.Credentials accepts either: a request that carries a
// token (in one of its TokenSources) is authenticated by the token alone, any other by SigV4
// against Credentials, with all of SigV4's rules (eitherAuth). A request carrying a token is
// never also tried as SigV4: a bad token is refused, not passed on.
//
// Headers of a token-authenticated request. A bearer token is not bound to the request it rides
// on, so there is no client signature to filter headers by (headers.go): as for auth: none and
// an operator's Authenticator, every end-to-end header goes upstream, x-amz-* included. This
// gives the token's holder what the holder of a SigV4 key has already: he may sign any x-amz-*
// header he likes (x-amz-acl, x-amz-storage-class, x-amz-meta-*), and anyone able to add a
// header in flight could as well replay the token itself. Which headers a principal may set is
// a policy question, for the bucket's Authorizer. SigV4 requests to the same bucket keep the
// SignedHeaders filter: signedHeaders tells the two apart by the principal (sigv4Signed).
// The token itself never goes upstream: the Authorization header is hop-by-hop to the proxy
// (hopHeaders), and the upstream query is rebuilt from the S3 parameters only (sign.go).

// TokenSource is one place a request may carry a bearer token: the Authorization header's value
// after Prefix (e.g. "Bearer "; compared case-insensitively, RFC 6750 2.1), or the query
// parameter named Query (RFC 6750 2.3, percent-decoded). Exactly one of Header and Query is set;
// Header may only be "Authorization": a token in any other header would go upstream with it.
type TokenSource struct {
	Header string
	Prefix string
	Query  string
}

// TokenVerifier verifies a bearer token. It runs on the event loop (see Authenticator): it must
// not block or do I/O. token is borrowed for the call. It returns the subject (non-empty) and the
// verified claims (read-only, may be shared), or an error whose text is safe to send to the
// client (it must not quote the token).
type TokenVerifier interface {
	VerifyToken(token []byte) (subject string, claims map[string]any, err error)
}

// ValidateTokenSources reports the first problem in sources.
func ValidateTokenSources(sources []TokenSource) error {
	if len(sources) == 0 {
		return errors.New("token_sources: at least one is required")
	}
	for _, s := range sources {
		switch {
		case s.Header != "" && s.Query != "":
			return errors.New("token_sources: set header or query, not both")
		case s.Header != "" && !strings.EqualFold(s.Header, "authorization"):
			return fmt.Errorf("token_sources: header %.64q: only Authorization (another header would go upstream with the token)", s.Header)
		case s.Query != "" && (isRouteParam(s.Query) || strings.HasPrefix(strings.ToLower(s.Query), "x-amz-")):
			return fmt.Errorf("token_sources: query %.64q is an S3 parameter", s.Query)
		case s.Header == "" && s.Query == "":
			return errors.New("token_sources: set header or query")
		}
	}
	return nil
}

func isRouteParam(k string) bool {
	switch k {
	case "uploads", "uploadId", "partNumber", "max-parts", "part-number-marker", "encoding-type":
		return true
	}
	return isSubresource([]byte(k))
}

// TokenAuthenticator returns an Authenticator that verifies the token a request carries in the
// first of sources it finds, with v: Principal{ID: subject, Method: method, Claims: claims}. A
// request without a token gets ErrNoToken; a refused token 403 AccessDenied whose message is
// "Invalid token: " and v's reason. Sources must pass ValidateTokenSources.
func TokenAuthenticator(v TokenVerifier, method string, sources []TokenSource) Authenticator {
	ta := &bearerAuth{v: v, method: method}
	for _, s := range sources {
		ta.sources = append(ta.sources, tokenSource{header: s.Header != "", prefix: []byte(s.Prefix), query: []byte(s.Query)})
	}
	return ta
}

type tokenSource struct {
	header bool
	prefix []byte
	query  []byte
}

type bearerAuth struct {
	v       TokenVerifier
	method  string
	sources []tokenSource
}

// Authenticate finds the token and verifies it. It allocates only to decode a percent-encoded
// query token and to answer a refusal.
func (t *bearerAuth) Authenticate(h *Head) (Principal, *Error) {
	tok, s3err := t.token(h)
	if s3err != nil {
		return Principal{}, s3err
	}
	if tok == nil {
		return Principal{}, ErrNoToken
	}
	sub, claims, err := t.v.VerifyToken(tok)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "jwtauth: ")
		return Principal{}, &Error{"AccessDenied", 403, "Invalid token: " + msg}
	}
	return Principal{ID: sub, Method: t.method, Claims: claims}, nil
}

// token returns the request's token (nil: none) from the first source that has one.
func (t *bearerAuth) token(h *Head) ([]byte, *Error) {
	for _, s := range t.sources {
		if s.header {
			v, ok := h.Header("authorization")
			if ok && bytes.EqualFold(v, bytes.TrimSpace(s.prefix)) {
				return nil, errEmptyToken // "Bearer" alone: the prefix's space trimmed on the way
			}
			if !ok || len(v) < len(s.prefix) || !bytes.EqualFold(v[:len(s.prefix)], s.prefix) {
				continue
			}
			if h.HeaderCount("authorization") > 1 {
				return nil, errDuplicateAuthorization
			}
			if tok := bytes.TrimSpace(v[len(s.prefix):]); len(tok) > 0 {
				return tok, nil
			}
			return nil, errEmptyToken
		}
		if !h.HasQuery() {
			continue
		}
		tok, n := queryParam(h.Query(), s.query)
		switch {
		case n > 1:
			return nil, errDuplicateToken
		case n == 0:
			continue
		}
		if bytes.IndexByte(tok, '%') >= 0 || bytes.IndexByte(tok, '+') >= 0 {
			d, err := s3sig.AppendPercentDecode(nil, tok)
			if err != nil {
				return nil, errInvalidURI
			}
			tok = d
		}
		if len(tok) == 0 {
			return nil, errEmptyToken
		}
		return tok, nil
	}
	return nil, nil
}

// queryParam returns the raw value of the last parameter named name in q and how many there are.
func queryParam(q, name []byte) (val []byte, n int) {
	for len(q) > 0 {
		item := q
		if i := bytes.IndexByte(q, '&'); i >= 0 {
			item, q = q[:i], q[i+1:]
		} else {
			q = nil
		}
		k, v := item, []byte(nil)
		if i := bytes.IndexByte(item, '='); i >= 0 {
			k, v = item[:i], item[i+1:]
		}
		if bytes.Equal(k, name) {
			val, n = v, n+1
		}
	}
	return val, n
}

// eitherAuth is a bucket that accepts a token or SigV4: token decides when the request carries a
// token, sigv4 otherwise.
type eitherAuth struct {
	token Authenticator
	sigv4 *sigv4Auth
}

func (a *eitherAuth) Authenticate(h *Head) (Principal, *Error) {
	p, err := a.token.Authenticate(h)
	if err == ErrNoToken {
		return a.sigv4.Authenticate(h)
	}
	return p, err
}

// sigv4Signed reports whether the request st carries was authenticated by a client SigV4
// signature, whose SignedHeaders then decide which headers go upstream (headers.go). On an
// eitherAuth bucket SigV4 notes the list's place in st.signed; a token request has none.
func sigv4Signed(auth Authenticator, st *connState) bool {
	switch auth.(type) {
	case *sigv4Auth:
		return true
	case *eitherAuth:
		return st.signed != [2]int32{} || strings.HasPrefix(st.principal.Method, "sigv4")
	}
	return false
}
