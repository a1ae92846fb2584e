package engine

import (
	"errors"

	"github.com/mizuchi/uploadr/s3sig"
)

var errMissingContentSHA256 = &s3Error{"InvalidRequest", 400, "Missing required header for this request: x-amz-content-sha256"}

// sigv4Auth is SigV4 header authentication against a bucket's client credentials. It runs on
// the loop, allocates nothing with a warm key cache and never logs credentials or signatures.
type sigv4Auth struct {
	e       *Engine
	creds   map[string]*clientCred
	regions []string // credential-scope regions accepted (Bucket.SigningRegions); never empty
}

// Authenticate verifies the Authorization header's signature. Cheap refusals come first, and all
// before the signature is verified: a duplicated Authorization, a region the bucket does not sign
// for (before Verify, so a key derived for a refused region never enters the key cache), an
// x-amz-* header outside the signature (it would go upstream under the proxy's own).
func (s *sigv4Auth) Authenticate(h *Head) (Principal, *Error) {
	e, req, buf := s.e, h.req, h.buf
	query := req.Query.Bytes(buf)
	if req.HasQuery && s3sig.IsPresigned(query) {
		return s.authenticatePresigned(h, query) // presign.go
	}
	av, ok := req.Lookup(buf, "authorization")
	if !ok {
		return Principal{}, errAnonymous
	}
	if req.HeaderCount(buf, "authorization") > 1 {
		// Which copy a verifier, a log or a server behind would read is not defined: refuse
		// before verifying either.
		return Principal{}, errDuplicateAuthorization
	}
	var a s3sig.Authorization
	if err := s3sig.ParseAuthorization(av.Bytes(buf), &a); err != nil {
		return Principal{}, mapSigError(err)
	}
	if !s.regionOK(a.Region) {
		return Principal{}, wrongRegion(a.Region, s.regions[0])
	}
	if unsignedHeader(h, a.SignedHeaders) {
		return Principal{}, errHeadersNotSigned
	}
	cred, ok := s.creds[string(a.AccessKey)]
	if !ok {
		return Principal{}, errInvalidAccessKeyID
	}
	dv, ok := req.Lookup(buf, "x-amz-date")
	if !ok {
		return Principal{}, errMissingDate
	}
	pv, ok := req.Lookup(buf, "x-amz-content-sha256")
	if !ok {
		return Principal{}, errMissingContentSHA256
	}
	sc := sigPool.Get().(*sigScratch)
	defer sigPool.Put(sc)
	sreq := sc.request(h, pv.Bytes(buf))
	n := len(sreq.Headers)
	signer := e.getSigner()
	var err error
	if p := sreq.PayloadHash; string(p) == s3sig.StreamingSigned || string(p) == s3sig.StreamingSignedTrailer {
		// Signed aws-chunked: the header signature is the seed the chunk signatures chain from.
		err = signer.VerifyStreaming(&sreq, &a, cred.secret, dv.Bytes(buf), e.opts.Now(), &h.seed)
	} else {
		err = signer.Verify(&sreq, &a, cred.secret, dv.Bytes(buf), e.opts.Now())
	}
	e.signers.Put(signer)
	clear(sc.h[:n])
	if err != nil {
		return Principal{}, mapSigError(err)
	}
	// Where the SignedHeaders list sits in buf (a.SignedHeaders is a subslice of av), so the upstream
	// head can filter the headers it forwards without parsing Authorization again.
	off := int(av.Start) + cap(av.Bytes(buf)) - cap(a.SignedHeaders)
	h.signed = [2]int32{int32(off), int32(off + len(a.SignedHeaders))}
	return Principal{ID: cred.accessKey, Method: "sigv4"}, nil
}

// regionOK reports whether a credential scope naming region is accepted. It does not allocate.
func (s *sigv4Auth) regionOK(region []byte) bool {
	for _, r := range s.regions {
		if string(region) == r {
			return true
		}
	}
	return false
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

// request is the s3sig view of the head h with the payload hash payload: its header views live in
// sc (clear them after use). It does not allocate.
func (sc *sigScratch) request(h *Head, payload []byte) s3sig.Request {
	req, buf := h.req, h.buf
	n := 0
	for i := 0; i < req.NumHeaders; i++ {
		f := req.Headers[i]
		sc.h[n] = s3sig.Header{Name: f.Name.Bytes(buf), Value: f.Value.Bytes(buf)}
		n++
	}
	return s3sig.Request{
		Method:      req.Method.Bytes(buf),
		Path:        req.Path.Bytes(buf),
		Query:       req.Query.Bytes(buf),
		Headers:     sc.h[:n],
		PayloadHash: payload,
	}
}
