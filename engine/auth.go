package engine

import (
	"bytes"
	"errors"

	"github.com/mizuchi/uploadr/s3sig"
)

var errMissingContentSHA256 = &s3Error{"InvalidRequest", 400, "Missing required header for this request: x-amz-content-sha256"}

// authenticate verifies the client's header signature against the bucket's credentials. It runs on
// the loop, allocates nothing with a warm key cache and never logs credentials or signatures.
func (e *Engine) authenticate(st *connState, b *bucketState, buf []byte) *s3Error {
	st.principal = ""
	if b.authNone {
		return nil
	}
	req := st.req
	query := req.Query.Bytes(buf)
	if req.HasQuery && (bytes.Contains(query, []byte("X-Amz-Signature=")) || bytes.Contains(query, []byte("X-Amz-Credential="))) {
		return e.authFailed(errPresignedNotImplemented)
	}
	av, ok := req.Lookup(buf, "authorization")
	if !ok {
		return e.authFailed(errAnonymous)
	}
	if req.HeaderCount(buf, "authorization") > 1 {
		// Which copy a verifier, a log or a server behind would read is not defined: refuse
		// before verifying either.
		return e.authFailed(errDuplicateAuthorization)
	}
	var a s3sig.Authorization
	if err := s3sig.ParseAuthorization(av.Bytes(buf), &a); err != nil {
		return e.authFailed(mapSigError(err))
	}
	if !b.signingRegionOK(a.Region) {
		// Before Verify: a key derived for a refused region never enters the key cache.
		return e.authFailed(wrongRegion(a.Region, b.expectedRegion()))
	}
	if st.unsignedHeader(buf, a.SignedHeaders) {
		// An x-amz-* header outside the signature would go upstream under the proxy's own.
		return e.authFailed(errHeadersNotSigned)
	}
	cred, ok := b.creds[string(a.AccessKey)]
	if !ok {
		return e.authFailed(errInvalidAccessKeyID)
	}
	secret := cred.secret
	dv, ok := req.Lookup(buf, "x-amz-date")
	if !ok {
		return e.authFailed(errMissingDate)
	}
	pv, ok := req.Lookup(buf, "x-amz-content-sha256")
	if !ok {
		return e.authFailed(errMissingContentSHA256)
	}
	sc := sigPool.Get().(*sigScratch)
	defer sigPool.Put(sc)
	n := 0
	for i := 0; i < req.NumHeaders; i++ {
		h := req.Headers[i]
		sc.h[n] = s3sig.Header{Name: h.Name.Bytes(buf), Value: h.Value.Bytes(buf)}
		n++
	}
	sreq := s3sig.Request{
		Method:      req.Method.Bytes(buf),
		Path:        req.Path.Bytes(buf),
		Query:       query,
		Headers:     sc.h[:n],
		PayloadHash: pv.Bytes(buf),
	}
	signer := e.getSigner()
	err := signer.Verify(&sreq, &a, secret, dv.Bytes(buf), e.opts.Now())
	e.signers.Put(signer)
	clear(sc.h[:n])
	if err != nil {
		return e.authFailed(mapSigError(err))
	}
	st.principal = cred.accessKey
	return nil
}

// signingRegionOK reports whether a credential scope naming region is accepted for b
// (Bucket.SigningRegions, default the upstream's region). It does not allocate.
func (b *bucketState) signingRegionOK(region []byte) bool {
	rs := b.up.signingRegions
	if len(rs) == 0 {
		return string(region) == b.up.Region
	}
	for _, r := range rs {
		if string(region) == r {
			return true
		}
	}
	return false
}

// expectedRegion is the region a refusal names: the first of b's signing regions.
func (b *bucketState) expectedRegion() string {
	if rs := b.up.signingRegions; len(rs) > 0 {
		return rs[0]
	}
	return b.up.Region
}

func (e *Engine) authFailed(s3err *s3Error) *s3Error {
	e.metrics.authFailure(s3err)
	return s3err
}

func mapSigError(err error) *s3Error {
	switch {
	case errors.Is(err, s3sig.ErrSignatureDoesNotMatch):
		return errSignatureDoesNotMatch
	case errors.Is(err, s3sig.ErrRequestTimeTooSkewed):
		return errRequestTimeTooSkewed
	case errors.Is(err, s3sig.ErrInvalidAccessKeyID):
		return errInvalidAccessKeyID
	case errors.Is(err, s3sig.ErrUnsupportedAuth):
		return errUnsupportedAuth
	case errors.Is(err, s3sig.ErrMissingDate):
		return errMissingDate
	case errors.Is(err, s3sig.ErrInvalidURI):
		return errInvalidURI
	case errors.Is(err, s3sig.ErrAuthorizationHeaderMalformed):
		return errAuthHeaderMalformed
	}
	return errAccessDenied
}

func (e *Engine) getSigner() *s3sig.Signer {
	if s, ok := e.signers.Get().(*s3sig.Signer); ok {
		return s
	}
	return s3sig.NewSigner(e.keys)
}
