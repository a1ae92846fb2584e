package engine

import "bytes"

// op is one of the six S3 upload operations this proxy forwards, a browser form upload, or a CORS
// preflight (which the proxy answers itself).
type op uint8

const (
	opNone op = iota
	opPutObject
	opCreateMultipartUpload
	opUploadPart
	opCompleteMultipartUpload
	opAbortMultipartUpload
	opListParts
	opPostObject // a browser form upload (postobject.go)
	opPreflight  // a CORS preflight (OPTIONS, cors.go): answered by the proxy, never forwarded
	numOps
)

var opNames = [numOps]string{"Unknown", "PutObject", "CreateMultipartUpload", "UploadPart",
	"CompleteMultipartUpload", "AbortMultipartUpload", "ListParts", "PostObject", "Preflight"}

func (o op) String() string { return opNames[o] }

// hasBody reports whether the operation carries a request body that goes upstream.
func (o op) hasBody() bool {
	return o == opPutObject || o == opUploadPart || o == opCompleteMultipartUpload
}

// route is the result of routing one request head. Spans index the request's buffer.
type route struct {
	op        op
	bucket    *bucketState // nil if unknown
	keyStart  int          // raw (percent-encoded) key: path[keyStart:keyEnd]
	keyEnd    int
	uploadID  [2]int // raw value span in the query, [0,0] if absent
	partNum   int
	maxParts  [2]int
	partMark  [2]int
	encType   [2]int
	hasUpload bool // "uploads" present
	hasID     bool
	hasPart   bool
}

// subresources are query parameters that turn a request into an S3 operation this proxy refuses.
// A request carrying one gets 501 NotImplemented (or 405 where the method itself is refused).
var subresources = [...]string{"acl", "tagging", "retention", "legal-hold", "torrent", "restore", "select",
	"select-type", "versionId", "attributes", "object-lock", "policy", "cors", "lifecycle", "website",
	"logging", "notification", "replication", "versioning", "encryption", "delete", "location",
	"accelerate", "analytics", "inventory", "metrics", "ownershipControls", "publicAccessBlock",
	"requestPayment", "intelligent-tiering", "list-type", "versions", "renameObject", "response-content-type"}

func isSubresource(k []byte) bool {
	for _, s := range subresources[:] { // the slice: ranging over the array copies it (544 bytes) per call
		if string(k) == s {
			return true
		}
	}
	return false
}

// routeRequest classifies a request from its method, Host header value, raw path and raw query.
// It returns the route and nil, or the S3 error to answer. copySource reports an x-amz-copy-source
// header. All inputs are borrowed; it does not allocate (but see findBucket for the "*" entry).
func (e *Engine) routeRequest(method, host, path, query []byte, hasQuery, copySource bool) (route, *s3Error) {
	var r route
	if len(path) == 0 || path[0] != '/' {
		return r, errInvalidURI
	}
	var s3err *s3Error
	if r.bucket, r.keyStart, s3err = e.routeBucket(host, path); s3err != nil {
		return r, s3err
	}
	r.keyEnd = len(path)
	if decodedLen(path[r.keyStart:]) > 1024 {
		return r, errKeyTooLong
	}
	if hasDotSegment(path[r.keyStart:r.keyEnd]) {
		return r, errDotSegment // for every method: nothing with such a key goes upstream
	}

	subresource, s3err := r.scanQuery(query, hasQuery)
	if s3err != nil {
		return r, s3err
	}
	if s3err := r.classify(method, subresource, copySource); s3err != nil {
		return r, s3err
	}
	return r, nil
}

// scanQuery records in r the upload parameters of a raw query (spans index query) and reports
// whether a subresource that turns the request into another S3 operation is present. It returns
// the S3 error for a malformed uploadId or partNumber.
func (r *route) scanQuery(query []byte, hasQuery bool) (subresource bool, s3err *s3Error) {
	for off := 0; hasQuery && off < len(query); {
		end := bytes.IndexByte(query[off:], '&')
		if end < 0 {
			end = len(query)
		} else {
			end += off
		}
		kv := query[off:end]
		start := off
		off = end + 1
		if len(kv) == 0 {
			continue
		}
		k, v, hasEq := bytes.Cut(kv, []byte{'='})
		vs := [2]int{start + len(kv), start + len(kv)}
		if hasEq {
			vs = [2]int{start + len(k) + 1, start + len(kv)}
		}
		switch string(k) {
		case "uploads":
			r.hasUpload = true
		case "uploadId":
			r.hasID = true
			r.uploadID = vs
			if !saneUploadID(v) {
				return subresource, errInvalidUploadID
			}
		case "partNumber":
			r.hasPart = true
			n, ok := parsePartNumber(v)
			if !ok {
				return subresource, errInvalidPartNumber
			}
			r.partNum = n
		case "max-parts":
			r.maxParts = vs
		case "part-number-marker":
			r.partMark = vs
		case "encoding-type":
			r.encType = vs
		default:
			if isSubresource(k) {
				subresource = true
			}
			// Anything else (x-id, client-specific parameters) is covered by the client's signature
			// and not forwarded.
		}
	}
	return subresource, nil
}

// classify sets r.op from the method and the query scanQuery recorded, or returns the S3 error
// for a combination this proxy refuses (a subresource, a copy, a stray uploadId or partNumber).
func (r *route) classify(method []byte, subresource, copySource bool) *s3Error {
	switch string(method) {
	case "PUT":
		switch {
		case subresource || r.hasUpload:
			return errNotImplemented
		case copySource:
			return errCopyNotImplemented
		case r.hasID && r.hasPart:
			r.op = opUploadPart
		case r.hasID || r.hasPart:
			return errInvalidArgument
		default:
			r.op = opPutObject
		}
	case "POST":
		switch {
		case subresource:
			return errNotImplemented
		case r.hasUpload && !r.hasID:
			r.op = opCreateMultipartUpload
		case r.hasID && !r.hasUpload:
			r.op = opCompleteMultipartUpload
		default:
			return errMethodNotAllowed
		}
	case "DELETE":
		if r.hasID && !subresource {
			r.op = opAbortMultipartUpload
		} else {
			return errMethodNotAllowed
		}
	case "GET":
		if r.hasID && !subresource {
			r.op = opListParts
		} else {
			return errMethodNotAllowed
		}
	default:
		return errMethodNotAllowed
	}
	if copySource {
		return errCopyNotImplemented
	}
	if r.op != opUploadPart && r.hasPart {
		return errInvalidArgument
	}
	return nil
}

// decodedLen is the length of s after percent-decoding (each valid %XX counts as one byte).
func decodedLen(s []byte) int {
	n := len(s)
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' {
			n -= 2
			i += 2
		}
	}
	return n
}

// parsePartNumber parses an S3 part number: decimal 1..10000, no sign, no leading garbage.
func parsePartNumber(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1 && n <= 10000
}

// saneUploadID accepts a non-empty upload id of at most 1024 raw bytes made of URL-safe bytes or
// percent escapes (upload ids are opaque to the proxy and pass through unchanged).
func saneUploadID(v []byte) bool {
	if len(v) == 0 || len(v) > 1024 {
		return false
	}
	for _, c := range v {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\' {
			return false
		}
	}
	return true
}

// routeBucket finds the bucket a request addresses and where its key starts in path (which
// begins with '/'). Virtual-hosted style (Host <bucket>.<suffix>, see virtualHostBucket): the
// bucket is the Host's, the key is the whole path after the leading '/'. Path style: the bucket
// is the first path segment, the key the rest after its '/'. A request without a key is a
// service- or bucket-level operation: 405. host and path are borrowed; the bucket name is looked
// up in a stack copy and never kept.
func (e *Engine) routeBucket(host, path []byte) (b *bucketState, keyStart int, s3err *s3Error) {
	var lower [63]byte
	if name, ok := virtualHostBucket(host, e.vhosts, &lower); ok {
		if b, s3err = e.findBucket(name); s3err != nil {
			return nil, 0, s3err
		}
		if len(path) == 1 {
			return b, 0, errMethodNotAllowed // bucket-level operations
		}
		return b, 1, nil
	}
	rest := path[1:]
	slash := bytes.IndexByte(rest, '/')
	name := rest
	if slash >= 0 {
		name = rest[:slash]
	}
	if len(name) == 0 {
		return nil, 0, errMethodNotAllowed // service-level: ListBuckets and friends
	}
	if b, s3err = e.findBucket(name); s3err != nil {
		return nil, 0, s3err
	}
	if slash < 0 || slash == len(rest)-1 {
		return b, 0, errMethodNotAllowed // bucket-level operations
	}
	return b, 1 + slash + 1, nil
}

// hasDotSegment reports whether rawKey, percent-decoded once, has a segment that is exactly "." or
// "..". Segments end at '/' and, decoded, at '\' too: the upstream path is the decoded key
// re-encoded, so an encoded "%2F" arrives upstream as a literal '/', and a normaliser that decodes
// "%5C" may take a backslash for a separator (IIS and some WAFs do). A key whose path a normaliser
// (the upstream's, or a middlebox's on the way) could collapse could leave the configured bucket
// with a request the proxy signed, so such keys are refused (RFC 3986 5.2.4 removes exactly these
// segments). A malformed escape counts as its literal bytes: s3sig refuses it later. It does not
// allocate.
func hasDotSegment(rawKey []byte) bool {
	n, dots := 0, true // decoded bytes of the current segment; whether all of them are '.'
	for i := 0; i < len(rawKey); i++ {
		c := rawKey[i]
		if c == '%' && i+2 < len(rawKey) {
			if hi, lo := unhexDigit(rawKey[i+1]), unhexDigit(rawKey[i+2]); hi < 16 && lo < 16 {
				c = hi<<4 | lo
				i += 2
			}
		}
		if c == '/' || c == '\\' {
			if dots && (n == 1 || n == 2) {
				return true
			}
			n, dots = 0, true
			continue
		}
		n++
		dots = dots && c == '.'
	}
	return dots && (n == 1 || n == 2)
}

// unhexDigit is the value of an ASCII hex digit, 0xff for any other byte.
func unhexDigit(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}
