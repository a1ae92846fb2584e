package s3sig

import "errors"

// Sentinel errors, compared with errors.Is. Errors returned by this package
// either are these or wrap one of them with a fixed, short detail.
var (
	// ErrSignatureDoesNotMatch: the computed signature differs from the one
	// sent, or a header named in SignedHeaders is absent from the request.
	ErrSignatureDoesNotMatch = errors.New("s3sig: signature does not match")
	// ErrRequestTimeTooSkewed: x-amz-date is more than MaxSkew away from now.
	ErrRequestTimeTooSkewed = errors.New("s3sig: request time too skewed")
	// ErrInvalidAccessKeyID is for callers that do not know the access key;
	// this package never returns it.
	ErrInvalidAccessKeyID = errors.New("s3sig: invalid access key id")
	// ErrAccessDenied is for callers' policy decisions; this package never
	// returns it.
	ErrAccessDenied = errors.New("s3sig: access denied")
	// ErrAuthorizationHeaderMalformed: the Authorization value or its
	// credential scope cannot be used (bad syntax, wrong date, service or
	// terminator, host not signed).
	ErrAuthorizationHeaderMalformed = errors.New("s3sig: authorization header malformed")
	// ErrUnsupportedAuth: the Authorization scheme is not AWS4-HMAC-SHA256.
	ErrUnsupportedAuth = errors.New("s3sig: unsupported authorization scheme")
	// ErrMissingDate: x-amz-date is absent or not of the form yyyymmddThhmmssZ.
	ErrMissingDate = errors.New("s3sig: missing or invalid x-amz-date")
	// ErrInvalidURI: the path or the query holds a malformed %-escape.
	ErrInvalidURI = errors.New("s3sig: invalid URI escape")
)

// detailError wraps a sentinel with a fixed detail. All values are package
// variables, so returning one allocates nothing.
type detailError struct {
	err    error
	detail string
}

func (e *detailError) Error() string { return e.err.Error() + ": " + e.detail }
func (e *detailError) Unwrap() error { return e.err }

func wrap(err error, detail string) error { return &detailError{err: err, detail: detail} }

var (
	errDateMalformed       = wrap(ErrMissingDate, "x-amz-date is not yyyymmddThhmmssZ")
	errChunkSignature      = wrap(ErrSignatureDoesNotMatch, "chunk or trailer signature")
	errAuthEmpty           = wrap(ErrAuthorizationHeaderMalformed, "empty value")
	errAuthNoFields        = wrap(ErrAuthorizationHeaderMalformed, "no Credential, SignedHeaders, Signature")
	errAuthField           = wrap(ErrAuthorizationHeaderMalformed, "component is not Credential=, SignedHeaders= or Signature=")
	errAuthDuplicate       = wrap(ErrAuthorizationHeaderMalformed, "component repeated")
	errAuthMissing         = wrap(ErrAuthorizationHeaderMalformed, "Credential, SignedHeaders or Signature missing")
	errAuthCredential      = wrap(ErrAuthorizationHeaderMalformed, "Credential is not <key>/<yyyymmdd>/<region>/<service>/aws4_request")
	errAuthSignedHeaders   = wrap(ErrAuthorizationHeaderMalformed, "SignedHeaders is not a ';'-separated list of names")
	errAuthSignature       = wrap(ErrAuthorizationHeaderMalformed, "Signature is not 64 hex digits")
	errScopeDate           = wrap(ErrAuthorizationHeaderMalformed, "credential scope date differs from x-amz-date")
	errScopeService        = wrap(ErrAuthorizationHeaderMalformed, "credential scope service is not s3")
	errHostNotSigned       = wrap(ErrAuthorizationHeaderMalformed, "host is not in SignedHeaders")
	errSignedHeaderMissing = wrap(ErrSignatureDoesNotMatch, "a header in SignedHeaders is absent")
)
