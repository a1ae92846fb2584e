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

// Errors of query-string authentication (presigned URLs).
var (
	// ErrAuthorizationQueryParameters: the query-string authentication
	// parameters cannot be used (missing, repeated, malformed, X-Amz-Expires
	// out of range, a scope that does not match X-Amz-Date).
	ErrAuthorizationQueryParameters = errors.New("s3sig: authorization query parameters error")
	// ErrPresignExpiresRange: X-Amz-Expires is a number outside
	// 1..MaxPresignExpires. It wraps ErrAuthorizationQueryParameters.
	ErrPresignExpiresRange = wrap(ErrAuthorizationQueryParameters, "X-Amz-Expires must be between 1 and 604800 seconds")
	// ErrPresignExpired: the clock is past X-Amz-Date + X-Amz-Expires.
	ErrPresignExpired = errors.New("s3sig: request has expired")
	// ErrPresignNotYetValid: X-Amz-Date is more than MaxSkew in the future.
	ErrPresignNotYetValid = errors.New("s3sig: request is not valid yet")
)

var (
	errQueryDuplicate     = wrap(ErrAuthorizationQueryParameters, "an authentication parameter is repeated")
	errQueryEscape        = wrap(ErrAuthorizationQueryParameters, "an authentication parameter has a malformed escape")
	errQueryMissing       = wrap(ErrAuthorizationQueryParameters, "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders or X-Amz-Signature missing")
	errQueryAlgorithm     = wrap(ErrAuthorizationQueryParameters, "X-Amz-Algorithm is not AWS4-HMAC-SHA256")
	errQueryCredential    = wrap(ErrAuthorizationQueryParameters, "X-Amz-Credential is not <key>/<yyyymmdd>/<region>/<service>/aws4_request")
	errQueryDate          = wrap(ErrAuthorizationQueryParameters, "X-Amz-Date is not yyyymmddThhmmssZ")
	errQueryExpires       = wrap(ErrAuthorizationQueryParameters, "X-Amz-Expires is not a number")
	errQuerySignedHeaders = wrap(ErrAuthorizationQueryParameters, "X-Amz-SignedHeaders is not a ';'-separated list of names")
	errQuerySignature     = wrap(ErrAuthorizationQueryParameters, "X-Amz-Signature is not 64 hex digits")
	errQueryScopeDate     = wrap(ErrAuthorizationQueryParameters, "credential scope date differs from X-Amz-Date")
	errQueryScopeService  = wrap(ErrAuthorizationQueryParameters, "credential scope service is not s3")
	errQueryHostNotSigned = wrap(ErrAuthorizationQueryParameters, "host is not in X-Amz-SignedHeaders")
)
