package engine

import (
	"strconv"
)

// Error is an S3 error answer: the code clients switch on, the HTTP status and the message.
// Authenticators and Authorizers return one to refuse a request; the engine renders it as an S3
// XML error document with the request id. Messages never contain secrets, tokens or signatures.
type Error struct {
	Code    string
	Status  int
	Message string
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// s3Error is the engine's name for a row of its error table.
type s3Error = Error

// The error table. Refusal reasons (metrics label) are the codes.
var (
	errAccessDenied            = &s3Error{"AccessDenied", 403, "Access Denied"}
	errAnonymous               = &s3Error{"AccessDenied", 403, "Anonymous access is not allowed: sign the request with SigV4"}
	errUnknownBucket           = &s3Error{"AccessDenied", 403, "Access Denied: this proxy does not serve that bucket"}
	errInvalidBucketName       = &s3Error{"InvalidBucketName", 400, "The specified bucket is not valid."}
	errInvalidAccessKeyID      = &s3Error{"InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."}
	errSignatureDoesNotMatch   = &s3Error{"SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	errRequestTimeTooSkewed    = &s3Error{"RequestTimeTooSkewed", 403, "The difference between the request time and the server's time is too large."}
	errAuthHeaderMalformed     = &s3Error{"AuthorizationHeaderMalformed", 400, "The authorization header is malformed."}
	errWrongRegion             = &s3Error{"AuthorizationHeaderMalformed", 400, "The authorization header is malformed; the region is wrong"} // see wrongRegion
	errMissingDate             = &s3Error{"AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header"}
	errUnsupportedAuth         = &s3Error{"InvalidArgument", 400, "Unsupported Authorization Type: only AWS4-HMAC-SHA256 is supported"}
	errDuplicateAuthorization  = &s3Error{"InvalidArgument", 400, "Only one Authorization header is allowed"}
	errHeadersNotSigned        = &s3Error{"AccessDenied", 403, "There were headers present in the request which were not signed"}
	errPresignedRequestExpired = &s3Error{"AccessDenied", 403, "Request has expired"}
	errSignedChunks            = &s3Error{"NotImplemented", 501, "Signed aws-chunked bodies are accepted for PutObject and UploadPart with AWS4-HMAC-SHA256 header authentication only (not STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD)"}
	errInvalidContentSHA256    = &s3Error{"InvalidArgument", 400, "x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER"}
	errMethodNotAllowed        = &s3Error{"MethodNotAllowed", 405, "The specified method is not allowed against this resource: this proxy accepts uploads only"}
	errNotImplemented          = &s3Error{"NotImplemented", 501, "A header or query parameter you provided implies functionality that is not implemented by this upload-only proxy"}
	errCopyNotImplemented      = &s3Error{"NotImplemented", 501, "Copying objects (x-amz-copy-source) is not supported by this upload-only proxy"}
	errMissingContentLength    = &s3Error{"MissingContentLength", 411, "You must provide the Content-Length HTTP header."}
	errEntityTooLarge          = &s3Error{"EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed size"}
	errChunkedAutoChunk        = &s3Error{"NotImplemented", 501, "Content-Encoding: aws-chunked without a STREAMING-* x-amz-content-sha256 cannot be cut into parts by this proxy: use a multipart upload, or send the body with Content-Length"}
	errBadDigest               = &s3Error{"BadDigest", 400, "The Content-MD5 or checksum you specified did not match what we received."}
	errSHA256Mismatch          = &s3Error{"XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed."}
	errInvalidDigest           = &s3Error{"InvalidDigest", 400, "The Content-MD5 or checksum you specified is not valid."}
	errMalformedXML            = &s3Error{"MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema"}
	errSlowDown                = &s3Error{"SlowDown", 503, "Please reduce your request rate: the upstream connection limit is reached"}
	errAuthorizeTimeout        = &s3Error{"SlowDown", 503, "Please reduce your request rate: the authorization decision did not come in time"}
	errCompleteBudget          = &s3Error{"SlowDown", 503, "Please reduce your request rate: too many CompleteMultipartUpload documents are in flight"}
	errShuttingDown            = &s3Error{"ServiceUnavailable", 503, "The proxy is shutting down: the upload was cut at the drain deadline; retry on another node"}
	errInvalidArgument         = &s3Error{"InvalidArgument", 400, "Invalid argument"}
	errInvalidPartNumber       = &s3Error{"InvalidArgument", 400, "Part number must be an integer between 1 and 10000, inclusive"}
	errInvalidUploadID         = &s3Error{"InvalidArgument", 400, "uploadId is missing or malformed"}
	errInvalidURI              = &s3Error{"InvalidURI", 400, "Couldn't parse the specified URI."}
	errKeyTooLong              = &s3Error{"KeyTooLongError", 400, "Your key is too long"}
	errDotSegment              = &s3Error{"InvalidArgument", 400, "Object keys with dot segments ('.' or '..' between slashes or backslashes, also percent-encoded) are not allowed by this proxy"}
	errBadRequest              = &s3Error{"BadRequest", 400, "Malformed HTTP request"}
	errIncompleteBody          = &s3Error{"IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header"}
	errRequestTimeout          = &s3Error{"RequestTimeout", 400, "Your socket connection to the server was not read from or written to within the timeout period."}
	errBadGateway              = &s3Error{"BadGateway", 502, "The upstream S3 server failed or closed the connection"}
	errServiceUnavailable      = &s3Error{"ServiceUnavailable", 503, "The upstream S3 server cannot be reached"}
	errUpstreamTimeout         = &s3Error{"GatewayTimeout", 504, "The upstream S3 server did not answer in time"}
	errInternal                = &s3Error{"InternalError", 500, "We encountered an internal error. Please try again."}
	errHeadersTooLarge         = &s3Error{"RequestHeaderSectionTooLarge", 431, "Your request header section exceeds the maximum allowed size."}
	errURITooLong              = &s3Error{"RequestURITooLong", 414, "The request URI is too long"}
	errHTTPVersion             = &s3Error{"HttpVersionNotSupported", 505, "The HTTP version specified is not supported."}
	errTransferEncoding        = &s3Error{"NotImplemented", 501, "A Transfer-Encoding other than chunked is not supported: send chunked alone, or Content-Length"}
	errInvalidContentLength    = &s3Error{"InvalidArgument", 400, "Content-Length is malformed, duplicated or conflicting"}
	errDecodedLengthRequired   = &s3Error{"MissingContentLength", 411, "aws-chunked bodies require x-amz-decoded-content-length"}
	errChunkFraming            = &s3Error{"EntityTooLarge", 400, "Content-Length exceeds x-amz-decoded-content-length by more than aws-chunked framing needs"}
	errInvalidDecodedLength    = &s3Error{"InvalidArgument", 400, "x-amz-decoded-content-length is malformed"}
	errTrailerHeader           = &s3Error{"InvalidRequest", 400, "x-amz-trailer must name one x-amz-checksum-* (crc32, crc32c, crc64nvme, sha1, sha256) for a STREAMING-*-TRAILER payload, and only then"}
	errChunkMalformed          = &s3Error{"InvalidRequest", 400, "The aws-chunked body is malformed (a chunk header, a CRLF or the trailer)"}
	errChunkTooLarge           = &s3Error{"InvalidRequest", 400, "signed aws-chunked chunks larger than 1 MiB are not accepted by this proxy (each is held until its signature verified)"}
	errChunkedBody             = &s3Error{"BadRequest", 400, "Malformed chunked request body (Transfer-Encoding: chunked framing, RFC 9112 7.1)"}
	errChunkLength             = &s3Error{"IncompleteBody", 400, "The aws-chunked body's decoded length differs from x-amz-decoded-content-length"}
)

// The rows of query-string authentication (presigned URLs, presign.go).
var (
	errAuthQueryParams     = &s3Error{"AuthorizationQueryParametersError", 400, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters, well-formed and each once."}
	errPresignExpiresRange = &s3Error{"AuthorizationQueryParametersError", 400, "X-Amz-Expires must be between 1 and 604800 seconds"}
	errPresignNotYetValid  = &s3Error{"AccessDenied", 403, "Request is not valid yet"}
	errMultipleAuth        = &s3Error{"InvalidArgument", 400, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"}
	errPresignedHoisted    = &s3Error{"InvalidRequest", 400, "x-amz-* query parameters other than X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders, -Signature, -Security-Token and X-Amz-Sdk-Checksum-Algorithm (headers hoisted into a presigned URL, such as x-amz-checksum-crc32 or x-amz-meta-*) are not supported by this proxy: presign them as signed headers"}
)

// The rows of bearer-token authentication (auth_token.go). A refused token is answered 403
// AccessDenied "Invalid token: <the verifier's reason>", made per refusal.
var (
	// ErrNoToken is what a TokenAuthenticator returns for a request that carries no token: on a
	// bucket that also has Credentials the request is then authenticated by SigV4, else it is
	// answered with this error.
	ErrNoToken        = &Error{"AccessDenied", 403, "Anonymous access is not allowed: send a bearer token"}
	errEmptyToken     = &s3Error{"AccessDenied", 403, "Invalid token: the token is empty"}
	errDuplicateToken = &s3Error{"InvalidArgument", 400, "More than one bearer token in the request"}
)

// The rows of bucket policy violations (policy.go), each naming its rule.
var (
	errPolicyNoMatch      = &s3Error{"AccessDenied", 403, "Access Denied by the bucket policy (when): no rule set applies to this principal"}
	errPolicyKey          = &s3Error{"AccessDenied", 403, "Access Denied by the bucket policy (key_template): this principal may not write this key"}
	errPolicySize         = &s3Error{"EntityTooLarge", 400, "Your proposed upload exceeds the bucket policy's max_object_size"}
	errPolicyContentType  = &s3Error{"AccessDenied", 403, "Access Denied by the bucket policy (allowed_content_types): this Content-Type is not allowed"}
	errPolicyStorageClass = &s3Error{"AccessDenied", 403, "Access Denied by the bucket policy (allowed_storage_classes): this storage class is not allowed"}
	errPolicyChecksum     = &s3Error{"AccessDenied", 403, "Access Denied by the bucket policy (require_checksum): send one of the required checksums (x-amz-checksum-*, Content-MD5, a hex x-amz-content-sha256 or an x-amz-trailer)"}
	errPolicyMaxParts     = &s3Error{"AccessDenied", 403, "Access Denied by the bucket policy (max_parts): the part number is above the limit"}
)

// wrongRegion is errWrongRegion with S3's message: "The authorization header is malformed; the
// region 'got' is wrong; expecting 'want'". got is the client's scope region, quoted only when it
// looks like a region (isRegion: bounded, no markup). It allocates: refusals only.
func wrongRegion(got []byte, want string) *s3Error {
	msg := errWrongRegion.Message
	if isRegion(got) {
		msg = "The authorization header is malformed; the region '" + string(got) + "' is wrong"
	}
	return &s3Error{errWrongRegion.Code, errWrongRegion.Status, msg + "; expecting '" + want + "'"}
}

// appendXMLEscaped appends s to dst with XML's five special characters escaped and control bytes
// dropped, so a hostile key cannot break the error document.
func appendXMLEscaped(dst []byte, s []byte) []byte {
	for _, c := range s {
		switch c {
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '&':
			dst = append(dst, "&amp;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		default:
			if c < 0x20 && c != '\t' || c == 0x7f {
				continue
			}
			dst = append(dst, c)
		}
	}
	return dst
}

// appendErrorResponse appends a complete HTTP/1.1 response carrying e as an S3 XML error document.
// resource is the request path (escaped here), requestID the id also sent as x-amz-request-id;
// corsHdrs are the request's CORS header lines (cors.go), usually none; closeConn adds
// "Connection: close".
func appendErrorResponse(dst []byte, e *s3Error, resource, requestID, corsHdrs []byte, closeConn bool) []byte {
	const xmlHead = `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>"
	// Body first into the tail of dst so the Content-Length is known; then move it behind the head.
	start := len(dst)
	dst = append(dst, xmlHead...)
	dst = append(dst, e.Code...)
	dst = append(dst, "</Code><Message>"...)
	dst = appendXMLEscaped(dst, []byte(e.Message))
	dst = append(dst, "</Message><Resource>"...)
	if len(resource) > 1024+64 {
		resource = resource[:1024+64]
	}
	dst = appendXMLEscaped(dst, resource)
	dst = append(dst, "</Resource><RequestId>"...)
	dst = append(dst, requestID...)
	dst = append(dst, "</RequestId></Error>"...)
	bodyLen := len(dst) - start

	var head [256]byte
	h := head[:0]
	h = append(h, "HTTP/1.1 "...)
	h = strconv.AppendInt(h, int64(e.Status), 10)
	h = append(h, ' ')
	h = append(h, statusText(e.Status)...)
	h = append(h, "\r\nContent-Type: application/xml\r\nx-amz-request-id: "...)
	h = append(h, requestID...)
	h = append(h, "\r\nServer: mizuchi-uploadr\r\nContent-Length: "...)
	h = strconv.AppendInt(h, int64(bodyLen), 10)
	if closeConn {
		h = append(h, "\r\nConnection: close"...)
	}
	h = append(h, "\r\n"...)

	// Shift the body right by the head's length and copy the head in front of it: the fixed
	// lines, the CORS lines, the blank line.
	n := len(h) + len(corsHdrs) + 2
	dst = append(dst, h...)
	dst = append(dst, corsHdrs...)
	dst = append(dst, "\r\n"...)
	copy(dst[start+n:], dst[start:start+bodyLen])
	copy(dst[start:], h)
	copy(dst[start+len(h):], corsHdrs)
	copy(dst[start+len(h)+len(corsHdrs):], "\r\n")
	return dst
}

func statusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 411:
		return "Length Required"
	case 412:
		return "Precondition Failed"
	case 414:
		return "URI Too Long"
	case 417:
		return "Expectation Failed"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status"
}
