package engine

import (
	"crypto/tls"
	"encoding/xml"
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/mizuchi/uploadr/policy"
	"github.com/mizuchi/uploadr/postform"
	"github.com/mizuchi/uploadr/s3sig"
)

// The PostObject exchange, off the loop (a detached gnet connection or a Serve connection): read
// the fields before the file, authenticate the form, check the policies, ask the Authorizer, then
// stream the file upstream as a PutObject. The file's length is the request's Content-Length
// minus the bytes before the file's data minus the closing delimiter (postform.Tail): it is known,
// and checked against the policy's content-length-range and the bucket's limits, before any file
// byte moves. The file is copied through a bounded buffer (never held whole) and scanned for the
// multipart delimiter; its last byte is held back until the closing delimiter has been read and
// verified, so a short, malformed or over-long body resets the upstream request before it is
// complete and nothing is stored.

// postUpload is what a verified form becomes upstream.
type postUpload struct {
	key         string
	encKey      []byte // key, S3-URI-encoded (slashes kept)
	size        int64
	headers     []s3sig.Header // forwarded fields, as object headers
	contentType string
	status      int    // success_action_status: 200, 201 or 204
	redirect    string // success_action_redirect (or the older redirect)
	noOverwrite bool
}

// exchangePost serves a PostObject and returns its outcome (the answer is written to client).
func (e *Engine) exchangePost(j *job, client net.Conn) outcome {
	if j.expect100 && j.remaining > 0 && !writeAll(client, continueResponse, e.opts.BodyStallTimeout) {
		return outcome{status: 499, mode: "none", closeClient: true}
	}
	defer client.SetReadDeadline(time.Time{})
	sr := &stallReader{c: client, timeout: e.opts.BodyStallTimeout, n: j.remaining}
	form, s3err := e.readPostForm(j, sr)
	if s3err != nil {
		return e.postRefused(j, client, s3err, j.post.bodyLen-sr.n)
	}
	p, up, s3err := e.checkPostForm(j, form)
	if s3err != nil {
		return e.postRefused(j, client, s3err, j.post.bodyLen-sr.n)
	}
	size := postform.FileLength(j.post.bodyLen, form.DataStart, j.post.boundary)
	if rest := j.post.bodyLen - int64(form.DataStart); rest <= postWholeMax && e.completeBudget.tryAcquire(rest) {
		// A small file of an authenticated form is read whole first (the memory from the budget
		// Complete documents use): parts after it are then ignored, as S3 ignores them.
		j.budget += rest
		if size, s3err = e.readPostWhole(j, sr, form); s3err != nil {
			return e.postRefused(j, client, s3err, j.post.bodyLen-sr.n)
		}
	}
	if s3err := e.checkPostFile(j, form, p, up, size); s3err != nil {
		return e.postRefused(j, client, s3err, j.post.bodyLen-sr.n)
	}
	j.post.up = up
	j.post.scheme = "http://"
	if _, ok := client.(interface{ ConnectionState() tls.ConnectionState }); ok {
		j.post.scheme = "https://"
	}
	pre := j.out[form.DataStart:]
	if j.post.whole {
		pre = pre[:size] // what follows the file was read and checked already
	} else if j.bucket.autoChunks(up.size) {
		return e.autoChunkPost(j, client, sr, pre, up)
	}
	return e.streamPost(j, client, sr, pre, up)
}

// postWholeMax: a form whose file and what follows it fit in this many bytes is read whole
// before the file goes upstream, so its exact length is found by the boundary, whatever follows
// the file (a named submit button, as in AWS's example form; a close delimiter without CRLF).
// Larger files are streamed with the length Content-Length gives (postform.FileLength).
const postWholeMax = 1 << 20

// readPostWhole reads the rest of a small form's body into j.out and returns the file's length.
func (e *Engine) readPostWhole(j *job, sr *stallReader, form *postform.Form) (int64, *s3Error) {
	need := int(j.post.bodyLen)
	if cap(j.out) < need {
		nb := make([]byte, len(j.out), need)
		copy(nb, j.out)
		j.out = nb
	}
	for len(j.out) < need {
		n, err := sr.Read(j.out[len(j.out):need])
		j.out = j.out[:len(j.out)+n]
		if n == 0 && err != nil {
			return 0, postReadError(err)
		}
	}
	size, err := postform.FileEnd(j.out, form.DataStart, j.post.boundary)
	if err != nil {
		return 0, errPostMalformed
	}
	j.post.whole = true
	return size, nil
}

// readPostForm reads the body until the file part's data begins (bounded by MaxPreData, and in
// time by HeadTimeout + BodyStallTimeout, so a client trickling its fields cannot hold the
// connection longer than a slow head): the bytes read stay in j.out.
func (e *Engine) readPostForm(j *job, sr *stallReader) (*postform.Form, *s3Error) {
	pj := j.post
	buf := j.out
	defer func() { j.out = buf }()
	deadline := time.Now().Add(e.opts.HeadTimeout + e.opts.BodyStallTimeout)
	for {
		f, err := postform.Parse(buf, pj.boundary, postform.MaxPreData)
		switch {
		case err == nil:
			return f, nil
		case errors.Is(err, postform.ErrPreDataTooLarge):
			return nil, errPostPreData
		case errors.Is(err, postform.ErrNoFile):
			return nil, errPostNoFile
		case errors.Is(err, postform.ErrDuplicateField):
			return nil, errPostDuplicate
		case err != postform.ErrNeedMore:
			return nil, errPostMalformed
		}
		if sr.n <= 0 {
			return nil, errPostMalformed // the body ended before the file part
		}
		if time.Now().After(deadline) {
			return nil, errRequestTimeout
		}
		if cap(buf)-len(buf) < 4<<10 {
			nb := make([]byte, len(buf), max(2*cap(buf), 16<<10))
			copy(nb, buf)
			buf = nb
		}
		n, rerr := sr.Read(buf[len(buf):min(cap(buf), postform.MaxPreData+(4<<10))])
		buf = buf[:len(buf)+n]
		if n == 0 && rerr != nil {
			if isTimeout(rerr) {
				return nil, errRequestTimeout
			}
			return nil, errIncompleteBody
		}
	}
}

// postRefused answers a PostObject refused before any byte went upstream (the connection closes:
// the rest of the body is not read).
func (e *Engine) postRefused(j *job, client net.Conn, s3err *s3Error, read int64) outcome {
	e.metrics.refusal(s3err)
	j.trace.refused(s3err)
	e.errorResponse(j, s3err, true)
	writeAll(client, j.resp, e.opts.BodyStallTimeout)
	return outcome{status: s3err.Status, bodyBytes: read, mode: "refused", closeClient: true}
}

// checkPostForm authenticates the form and checks the POST policy's expiration and conditions
// on its fields (the file's length comes next: checkPostFile). A traced request gets its
// authenticate span here (admit, which only looked at the head, leaves it out for a PostObject),
// and its request span the principal.
func (e *Engine) checkPostForm(j *job, form *postform.Form) (*postform.Policy, *postUpload, *s3Error) {
	sp := j.trace.span
	if sp == nil {
		return e.checkPostFormOnce(j, form)
	}
	a := sp.Child("authenticate", time.Time{}, false)
	p, up, s3err := e.checkPostFormOnce(j, form)
	if m := j.principal.Method; m != "" {
		a.SetString(attrAuthMethod, m)
		sp.SetString(attrAuthMethod, m)
		sp.SetString(attrPrincipal, j.principal.ID)
	}
	if s3err != nil {
		a.SetString(attrError, s3err.Code)
		if j.principal.Method == "" { // the form's signature was not accepted
			a.SetError(s3err.Code)
		}
	}
	a.End(time.Time{})
	return p, up, s3err
}

// checkPostFormOnce is checkPostForm without its span.
func (e *Engine) checkPostFormOnce(j *job, form *postform.Form) (*postform.Policy, *postUpload, *s3Error) {
	pj := j.post
	p, s3err := e.authenticatePost(j, form)
	if s3err != nil {
		e.metrics.authFailure(s3err)
		return nil, nil, s3err
	}
	e.metrics.authenticated(j.principal.Method)
	if lm := e.lim; lm != nil && lm.principalRate != nil && !lm.principalRate.allow(j.principal.ID, e.now()) {
		e.metrics.limitedBy("requests_per_principal")
		return nil, nil, errLimitRatePrincipal
	}
	if k, _ := form.Get("key"); k == "" {
		return nil, nil, errPostNoKey // before the conditions, as S3 checks it
	}
	if err := p.Check(form, pj.bucket, e.opts.Now()); err != nil {
		return nil, nil, postPolicyError(err)
	}
	up, s3err := postFields(form)
	if s3err != nil {
		return nil, nil, s3err
	}
	j.setPostResource(up.encKey)
	return p, up, nil
}

// checkPostFile checks the file's length (content-length-range, the bucket's limits), then the
// bucket's upload policy and the Authorizer, as for a PutObject by the policy's access key.
func (e *Engine) checkPostFile(j *job, form *postform.Form, p *postform.Policy, up *postUpload, size int64) *s3Error {
	b := j.bucket
	up.size = size
	switch {
	case up.size < 0:
		return errPostTail
	case p.CheckLength(up.size) == postform.ErrTooLarge:
		return errEntityTooLarge
	case p.CheckLength(up.size) == postform.ErrTooSmall:
		return errEntityTooSmall
	case up.size > e.opts.MaxObjectSize || up.size > maxSinglePut && !b.autoChunks(up.size):
		return errEntityTooLarge
	}
	if b.policy != nil {
		in := policy.Input{Op: policy.OpPutObject, Key: []byte(up.key), Size: up.size,
			Principal: j.principal.ID, Claims: j.principal.Claims}
		if up.contentType != "" {
			in.ContentType = []byte(up.contentType)
		}
		for _, h := range up.headers {
			if string(h.Name) == "x-amz-storage-class" {
				in.StorageClass = h.Value
			}
			in.Checksums |= policy.ChecksumsOf(h.Name, h.Value)
		}
		r := b.policy.Check(&in)
		if s3err := policyErrors[r.Violated]; s3err != nil {
			return s3err
		}
		up.noOverwrite = r.NoOverwrite
	}
	if b.authz != nil {
		if s3err := e.authorize(b.authz, postAuthzInput(j, form, up)); s3err != nil {
			return s3err
		}
	}
	return nil
}

// authenticatePost verifies the form's SigV4 policy signature with the bucket's client
// credentials (the SigV4 Authenticator's) and decodes the policy. On success j.principal is the
// access key (method "sigv4-post").
func (e *Engine) authenticatePost(j *job, form *postform.Form) (*postform.Policy, *s3Error) {
	a, err := postform.ParseAuth(form)
	switch {
	case errors.Is(err, postform.ErrAlgorithm):
		return nil, errPostAlgorithm
	case errors.Is(err, postform.ErrCredential):
		return nil, errPostCredential
	case err != nil:
		return nil, errPostAuthMissing
	}
	s := sigv4Of(j.bucket.auth)
	if s == nil {
		return nil, errPostNoCredentials
	}
	if !s.regionOK([]byte(a.Region)) {
		return nil, wrongRegion([]byte(a.Region), s.regions[0])
	}
	cred, ok := s.creds[a.AccessKey]
	if !ok {
		return nil, errInvalidAccessKeyID
	}
	if a.VerifySignature(cred.secret) != nil {
		return nil, errSignatureDoesNotMatch
	}
	j.principal = Principal{ID: cred.accessKey, Method: "sigv4-post"}
	p, err := postform.DecodePolicy(a.Policy)
	if err != nil {
		return nil, postPolicyError(err)
	}
	return p, nil
}

// sigv4Of is the SigV4 Authenticator of a bucket (alone or beside a token Authenticator); nil
// when the bucket has no client credentials.
func sigv4Of(a Authenticator) *sigv4Auth {
	switch x := a.(type) {
	case *sigv4Auth:
		return x
	case *eitherAuth:
		return x.sigv4
	}
	return nil
}

// postPolicyError maps a policy refusal to S3's answer: InvalidPolicyDocument for a document that
// does not decode, AccessDenied "Invalid according to Policy: …" for the others.
func postPolicyError(err error) *s3Error {
	msg := err.Error()
	var pe *postform.Error
	if errors.As(err, &pe) {
		msg = pe.Detail
		if msg == "" {
			msg = pe.Reason
		}
	}
	if errors.Is(err, postform.ErrPolicyMalformed) {
		return &s3Error{"InvalidPolicyDocument", 400, msg}
	}
	return &s3Error{"AccessDenied", 403, msg}
}

// setPostResource makes the job's resource the object's path (for error documents and the access
// log): /<bucket>/<key>, or /<key> on a virtual-hosted bucket host.
func (j *job) setPostResource(encKey []byte) {
	r := j.resource
	for len(r) > 0 && r[len(r)-1] == '/' {
		r = r[:len(r)-1]
	}
	r = append(r, '/')
	j.keyStart = len(r)
	j.resource = append(r, encKey...)
}

// postForwarded reports whether a form field goes upstream as an object header (every such
// field is covered by a policy condition: Check refused the others), and under which name.
func postForwarded(lower string) (string, bool) {
	switch {
	case lower == "acl":
		return "x-amz-acl", true
	case lower == "content-type", lower == "cache-control", lower == "content-disposition",
		lower == "content-encoding", lower == "expires", lower == "x-amz-storage-class",
		lower == "x-amz-website-redirect-location", lower == "x-amz-checksum-algorithm",
		strings.HasPrefix(lower, "x-amz-meta-"), strings.HasPrefix(lower, "x-amz-server-side-encryption"),
		strings.HasPrefix(lower, "x-amz-checksum-"), strings.HasPrefix(lower, "x-amz-object-lock-"):
		return lower, true
	}
	return "", false
}

// postFields reads the key, the answer fields and the forwarded headers of a checked form.
func postFields(form *postform.Form) (*postUpload, *s3Error) {
	up := &postUpload{status: 204}
	key, ok := form.Get("key")
	if !ok || key == "" {
		return nil, errPostNoKey
	}
	if len(key) > 1024 {
		return nil, errKeyTooLong
	}
	up.key = key
	up.encKey = s3sig.AppendURIEncode(nil, []byte(key), true)
	if hasDotSegment(up.encKey) {
		return nil, errDotSegment
	}
	if v, _ := form.Get("success_action_status"); v == "200" || v == "201" {
		up.status = int(v[2]-'0') + 200
	}
	up.redirect, _ = form.Get("success_action_redirect")
	if up.redirect == "" {
		up.redirect, _ = form.Get("redirect")
	}
	for _, f := range form.Fields {
		lower := strings.ToLower(f.Name)
		value := f.Value
		name, ok := postForwarded(lower)
		if lower == "tagging" {
			// S3 takes the tag set as a <Tagging> document in the form, as x-amz-tagging on PUT.
			if value, ok = taggingHeader(f.Value); !ok {
				return nil, errPostTagging
			}
			name = "x-amz-tagging"
		}
		if !ok {
			continue
		}
		if !validHeaderValue(value) || !validHeaderName(name) {
			return nil, errPostHeaderValue
		}
		if name == "content-type" {
			up.contentType = value
		}
		up.headers = append(up.headers, s3sig.Header{Name: []byte(name), Value: []byte(value)})
	}
	return up, nil
}

// validHeaderValue: no control bytes but HTAB (RFC 9110 field-value), so no field can add a
// header line to the upstream request.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// validHeaderName: an RFC 9110 token.
func validHeaderName(n string) bool {
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return n != ""
}

// postAuthzInput is the Authorizer's input for a PostObject: a PutObject of the form's key by the
// policy's access key.
func postAuthzInput(j *job, form *postform.Form, up *postUpload) *AuthzInput {
	in := &AuthzInput{RequestID: string(j.reqID[:]), Remote: j.remote, Principal: j.principal,
		Operation: opPutObject.String(), Bucket: j.bucket.name, Key: up.key, Size: up.size, ContentType: up.contentType,
		span: j.trace.span}
	for _, name := range j.bucket.authzHdrs {
		if v, ok := form.Get(name); ok {
			if in.Headers == nil {
				in.Headers = make(map[string]string, len(j.bucket.authzHdrs))
			}
			in.Headers[name] = v
		}
	}
	return in
}

// taggingHeader turns a form's tagging document (<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value>
// </Tag>…</TagSet></Tagging>) into the x-amz-tagging header value (k=v&…, URL-encoded).
func taggingHeader(doc string) (string, bool) {
	var t struct {
		Tags []struct {
			Key   string `xml:"Key"`
			Value string `xml:"Value"`
		} `xml:"TagSet>Tag"`
	}
	if len(doc) > 16<<10 || xml.Unmarshal([]byte(doc), &t) != nil || len(t.Tags) == 0 {
		return "", false
	}
	q := url.Values{}
	for _, tag := range t.Tags {
		if tag.Key == "" || q.Has(tag.Key) {
			return "", false
		}
		q.Set(tag.Key, tag.Value)
	}
	return q.Encode(), true
}
