package engine

import "github.com/mizuchi/uploadr/cors"

// CORS (Bucket.CORS, evaluated by the cors package as S3 evaluates a bucket's CORS rules).
//
// A preflight — OPTIONS with Origin and Access-Control-Request-Method — is answered by admit
// itself (preflight): no authentication, nothing upstream. An allowed one gets 200 with the
// matching rule's Access-Control-* headers; one without Origin or Access-Control-Request-Method
// 400; one to a bucket without CORS rules, or that no rule allows, 403 AccessForbidden, as S3
// answers. OPTIONS is not one of the six operations: it never reaches routeRequest.
//
// Every other answer to a request with an Origin, to a bucket with CORS rules, carries the
// matching rule's headers (Access-Control-Allow-Origin, -Allow-Methods, -Allow-Credentials,
// -Expose-Headers, -Max-Age) and Vary, or Vary alone when no rule allows the request's origin and
// method: relayed upstream answers, the proxy's own S3 errors, everything. The transports render
// these lines once per request, right after admit (Engine.appendCORS, from the head's buffer), into an
// owned buffer (connState.cors, copied into reqMeta.cors by newJob); the two places that assemble
// answers append it — appendErrorResponse (every S3 error) and relayHead (every relayed upstream
// answer) — and a new kind of answer appends j.cors the same way (appendCORSHeaders). A request
// without an Origin, or to a bucket without CORS rules, costs a nil check or one header lookup,
// and its answers carry nothing.

// The preflight refusals, in S3's words.
var (
	errCORSNoOrigin  = &s3Error{"BadRequest", 400, "Insufficient information. Origin request header needed."}
	errCORSNoMethod  = &s3Error{"BadRequest", 400, "Invalid Access-Control-Request-Method: a preflight needs one"}
	errCORSDisabled  = &s3Error{"AccessForbidden", 403, "CORSResponse: CORS is not enabled for this bucket."}
	errCORSForbidden = &s3Error{"AccessForbidden", 403, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."}
)

// preflight decides an OPTIONS request: verdictPreflight with the matching rule in d.corsRule, or
// a refusal. It is pure and, for a named bucket, allocates nothing.
func (e *Engine) preflight(h *Head) (d decision) {
	d.preflight = true
	d.rt.op = opPreflight // counted and logged as such, allowed or refused
	req, buf := h.req, h.buf
	origin, hasOrigin := req.Lookup(buf, "origin")
	if !hasOrigin {
		return refusal(d, errCORSNoOrigin)
	}
	method, hasMethod := req.Lookup(buf, "access-control-request-method")
	if !hasMethod || method.Len() == 0 {
		return refusal(d, errCORSNoMethod)
	}
	path := req.Path.Bytes(buf)
	if len(path) == 0 || path[0] != '/' {
		return refusal(d, errInvalidURI)
	}
	b, _, s3err := e.routeBucket(req.Host.Bytes(buf), path) // a bucket-level path is fine (PostObject)
	d.rt.bucket = b
	switch {
	case b == nil && s3err != errMethodNotAllowed:
		return refusal(d, s3err) // a bucket this proxy does not serve
	case b == nil || b.cors == nil:
		return refusal(d, errCORSDisabled)
	}
	var hdrs []byte
	if v, ok := req.Lookup(buf, "access-control-request-headers"); ok {
		hdrs = v.Bytes(buf)
	}
	d.corsRule = b.cors.MatchPreflight(origin.Bytes(buf), method.Bytes(buf), hdrs)
	if d.corsRule == cors.NoMatch {
		return refusal(d, errCORSForbidden)
	}
	d.verdict = verdictPreflight
	return d
}

// appendCORS appends to dst the CORS header lines every answer to the request in h carries, for
// the decision d admit made about it: for an allowed preflight the rule's preflight headers, for
// any other request with an Origin to a bucket with CORS rules those of the first rule allowing
// its origin and method, or Vary alone. It appends nothing for a request without an Origin or to
// a bucket without CORS rules. A request refused before it was routed (a client limit) is routed
// here, for its answer's sake, when it has an Origin. h's buffer must still be valid; it
// allocates only when dst grows (or for a refusal routed to a bucket of the "*" entry).
func (e *Engine) appendCORS(dst []byte, h *Head, d *decision) []byte {
	b := d.rt.bucket
	if b != nil && b.cors == nil {
		return dst
	}
	req, buf := h.req, h.buf
	ov, ok := req.Lookup(buf, "origin")
	if !ok {
		return dst
	}
	if b == nil && d.verdict == verdictRefuse && !d.preflight {
		if path := req.Path.Bytes(buf); len(path) > 0 && path[0] == '/' {
			b, _, _ = e.routeBucket(req.Host.Bytes(buf), path)
		}
	}
	if b == nil || b.cors == nil {
		return dst
	}
	origin := ov.Bytes(buf)
	if d.verdict == verdictPreflight {
		var hdrs []byte
		if v, ok := req.Lookup(buf, "access-control-request-headers"); ok {
			hdrs = v.Bytes(buf)
		}
		return b.cors.AppendPreflight(dst, d.corsRule, origin, hdrs)
	}
	if i := b.cors.Match(origin, req.Method.Bytes(buf)); i != cors.NoMatch {
		return b.cors.AppendActual(dst, i, origin)
	}
	return append(dst, cors.Vary...)
}

// appendCORSHeaders appends the CORS header lines of j's request (none for most requests) to an
// answer's head being built in dst: the call every answer the proxy assembles makes once, before
// the blank line.
func appendCORSHeaders(dst []byte, j *job) []byte { return append(dst, j.cors...) }

// appendPreflightResponse appends the 200 answer to an allowed preflight: corsHdrs (appendCORS),
// the request id, no body.
func appendPreflightResponse(dst, corsHdrs, requestID []byte, closeConn bool) []byte {
	dst = append(dst, "HTTP/1.1 200 OK\r\n"...)
	dst = append(dst, corsHdrs...)
	dst = append(dst, "x-amz-request-id: "...)
	dst = append(dst, requestID...)
	dst = append(dst, "\r\nServer: mizuchi-uploadr\r\nContent-Length: 0\r\n"...)
	if closeConn {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// isAccessControlHeader reports a response header name starting with "access-control-": the
// proxy alone answers CORS, so an upstream's are dropped from relayed answers.
func isAccessControlHeader(name []byte) bool {
	const p = "access-control-"
	return len(name) > len(p) && equalFoldASCII(name[:len(p)], p)
}
