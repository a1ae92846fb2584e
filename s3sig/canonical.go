package s3sig

import (
	"bytes"
	"slices"
)

// Canonical request (S3 API Reference, "Signature Calculations for the
// Authorization Header"):
//
//	<HTTPMethod>\n<CanonicalURI>\n<CanonicalQueryString>\n<CanonicalHeaders>\n<SignedHeaders>\n<HashedPayload>
//
// where CanonicalHeaders is "Lowercase(<HeaderName>):Trim(<value>)\n" per
// signed header, sorted by name, and SignedHeaders the sorted, ';'-separated
// lowercase names.

type headerRef struct {
	n0, n1 int // lowercased name in Signer.names
	idx    int // index in Request.Headers
}

type queryParam struct {
	k0, k1, v0, v1 int // encoded key and value in Signer.qbuf
}

// canonicalForSign builds the canonical request of req into s.creq, signing
// every header, and the SignedHeaders list into s.signed.
func (s *Signer) canonicalForSign(req *Request) error {
	b, err := s.appendRequestLine(s.creq[:0], req, nil)
	if err != nil {
		s.creq = b[:0]
		return err
	}

	s.names, s.hdrs = s.names[:0], s.hdrs[:0]
	for i, h := range req.Headers {
		n0 := len(s.names)
		s.names = appendLower(s.names, h.Name)
		s.hdrs = append(s.hdrs, headerRef{n0: n0, n1: len(s.names), idx: i})
	}
	names := s.names
	// Stable, so that the values of a repeated name keep their order.
	slices.SortStableFunc(s.hdrs, func(x, y headerRef) int {
		return bytes.Compare(names[x.n0:x.n1], names[y.n0:y.n1])
	})

	s.signed = s.signed[:0]
	for i := 0; i < len(s.hdrs); {
		name := names[s.hdrs[i].n0:s.hdrs[i].n1]
		if len(s.signed) > 0 {
			s.signed = append(s.signed, ';')
		}
		s.signed = append(s.signed, name...)
		b = append(b, name...)
		b = append(b, ':')
		j := i
		for ; j < len(s.hdrs) && bytes.Equal(names[s.hdrs[j].n0:s.hdrs[j].n1], name); j++ {
			if j > i {
				b = append(b, ',')
			}
			b = appendHeaderValue(b, req.Headers[s.hdrs[j].idx].Value)
		}
		b = append(b, '\n')
		i = j
	}
	s.creq = appendTail(b, s.signed, req.PayloadHash)
	return nil
}

// canonicalForVerify builds the canonical request of req into s.creq with
// the headers named in signedHeaders, in that order and as spelled there.
// Names are matched case-insensitively; a name matching no header is
// ErrSignatureDoesNotMatch.
func (s *Signer) canonicalForVerify(req *Request, signedHeaders []byte) error {
	return s.canonicalForVerifyQuery(req, signedHeaders, req.PayloadHash, nil)
}

// canonicalForVerifyQuery is canonicalForVerify with payloadHash as the last
// line and the query parameter whose encoded key is exclude (when not nil)
// left out of the canonical query, as X-Amz-Signature is for presigned URLs.
func (s *Signer) canonicalForVerifyQuery(req *Request, signedHeaders, payloadHash, exclude []byte) error {
	b, err := s.appendRequestLine(s.creq[:0], req, exclude)
	if err != nil {
		s.creq = b[:0]
		return err
	}
	for list := signedHeaders; len(list) > 0; {
		var name []byte
		if j := bytes.IndexByte(list, ';'); j >= 0 {
			name, list = list[:j], list[j+1:]
		} else {
			name, list = list, nil
		}
		b = append(b, name...)
		b = append(b, ':')
		found := false
		for _, h := range req.Headers {
			if equalFoldASCII(h.Name, name) {
				if found {
					b = append(b, ',')
				}
				b = appendHeaderValue(b, h.Value)
				found = true
			}
		}
		if !found {
			s.creq = b[:0]
			return errSignedHeaderMissing
		}
		b = append(b, '\n')
	}
	s.creq = appendTail(b, signedHeaders, payloadHash)
	return nil
}

// appendRequestLine appends method, canonical URI and canonical query, each
// followed by '\n'; the query parameter whose encoded key is exclude (when
// not nil) is left out.
func (s *Signer) appendRequestLine(b []byte, req *Request, exclude []byte) ([]byte, error) {
	b = append(b, req.Method...)
	b = append(b, '\n')
	b, err := appendCanonicalURI(b, req.Path)
	if err != nil {
		return b, err
	}
	b = append(b, '\n')
	if b, err = s.appendCanonicalQuery(b, req.Query, exclude); err != nil {
		return b, err
	}
	return append(b, '\n'), nil
}

// appendTail appends the blank line ending the headers, the SignedHeaders
// list and the payload hash.
func appendTail(b, signedHeaders, payloadHash []byte) []byte {
	b = append(b, '\n')
	b = append(b, signedHeaders...)
	b = append(b, '\n')
	return append(b, payloadHash...)
}

// appendCanonicalQuery appends the canonical query string of raw. A
// parameter whose encoded key equals exclude (when not nil) is left out, as
// X-Amz-Signature must be for presigned URLs. On error dst is returned as
// given.
func (s *Signer) appendCanonicalQuery(dst, raw, exclude []byte) ([]byte, error) {
	if len(raw) == 0 {
		return dst, nil
	}
	q, qs := s.qbuf[:0], s.qs[:0]
	var err error
	for len(raw) > 0 {
		var part []byte
		if j := bytes.IndexByte(raw, '&'); j >= 0 {
			part, raw = raw[:j], raw[j+1:]
		} else {
			part, raw = raw, nil
		}
		if len(part) == 0 {
			continue
		}
		key, value, _ := bytes.Cut(part, []byte{'='})
		var p queryParam
		p.k0 = len(q)
		if q, err = appendCanonicalComponent(q, key, false); err != nil {
			break
		}
		p.k1, p.v0 = len(q), len(q)
		if q, err = appendCanonicalComponent(q, value, false); err != nil {
			break
		}
		p.v1 = len(q)
		if exclude != nil && bytes.Equal(q[p.k0:p.k1], exclude) {
			q = q[:p.k0]
			continue
		}
		qs = append(qs, p)
	}
	s.qbuf, s.qs = q, qs
	if err != nil {
		return dst, err
	}
	slices.SortFunc(qs, func(x, y queryParam) int {
		if c := bytes.Compare(q[x.k0:x.k1], q[y.k0:y.k1]); c != 0 {
			return c
		}
		return bytes.Compare(q[x.v0:x.v1], q[y.v0:y.v1])
	})
	for i, p := range qs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, q[p.k0:p.k1]...)
		dst = append(dst, '=')
		dst = append(dst, q[p.v0:p.v1]...)
	}
	return dst, nil
}

// appendHeaderValue appends v with leading and trailing whitespace removed
// and each run of spaces inside collapsed to one space ("Trim" of the SigV4
// specification, as the AWS SDKs implement it).
func appendHeaderValue(dst, v []byte) []byte {
	for len(v) > 0 && isSpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isSpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	// Runs of spaces collapse to one. Most values have no space at all and are appended whole.
	if bytes.IndexByte(v, ' ') < 0 {
		return append(dst, v...)
	}
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' && i > 0 && v[i-1] == ' ' {
			continue
		}
		dst = append(dst, v[i])
	}
	return dst
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

func appendLower(dst, s []byte) []byte {
	n := len(dst)
	dst = append(dst, s...)
	for i, c := range dst[n:] {
		if 'A' <= c && c <= 'Z' {
			dst[n+i] = c + 'a' - 'A'
		}
	}
	return dst
}

func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// listHas reports whether the ';'-separated list holds name (ASCII
// case-insensitively).
func listHas(list []byte, name string) bool {
	for len(list) > 0 {
		var item []byte
		if j := bytes.IndexByte(list, ';'); j >= 0 {
			item, list = list[:j], list[j+1:]
		} else {
			item, list = list, nil
		}
		if len(item) == len(name) && equalFoldASCII(item, []byte(name)) {
			return true
		}
	}
	return false
}
