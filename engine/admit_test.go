package engine

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi/uploadr/cors"
	"github.com/mizuchi/uploadr/httpparse"
)

// Tests of admit over raw request heads, without a server: an Engine made with New (never Run)
// at a fixed clock, each head parsed with httpparse and handed to admit, the decision checked.
// The requests are signed with aws-sdk-go-v2's signer, the oracle the proxy must agree with.

const (
	admitAK   = "AKIDADMITTESTCLIENT"
	admitSK   = "admit/secret+key=tests-only"
	admitAK2  = "AKIDADMITSECONDKEY"
	admitSK2  = "second/secret"
	admitHost = "proxy.test:8080"
	emptySHA  = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tokenOK   = "let-me-in"
)

// admitNow is the engine's clock in these tests; requests are signed at it unless skewed.
var admitNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// errBadToken is what the test's own Authenticator answers.
var errBadToken = &Error{Code: "AccessDenied", Status: 403, Message: "no valid x-test-token"}

// tokenAuth is an Authenticator of the test's own: a request with x-test-token: let-me-in is
// "token-user".
func tokenAuth(h *Head) (Principal, *Error) {
	if v, ok := h.Header("x-test-token"); ok && string(v) == tokenOK {
		return Principal{ID: "token-user", Method: "token"}, nil
	}
	return Principal{}, errBadToken
}

// The buckets of the admit tests.
const (
	autoThreshold = 16 << 20 // "chunky": PutObjects above this are auto-chunked
	admitMaxObj   = 8 << 30  // Options.MaxObjectSize
)

// newAdmitEngine returns an Engine (not running) with the buckets:
//
//	sig     SigV4, two credentials
//	open    auth: none
//	authz   SigV4 and an Authorizer that allows everything
//	chunky  SigV4, auto-chunking above 16 MiB in 8 MiB parts
//	custom  tokenAuth
func newAdmitEngine(tb testing.TB) *Engine {
	tb.Helper()
	up := Upstream{Endpoint: "http://127.0.0.1:9", Bucket: "upstream", AccessKey: "UPSTREAMAK", SecretKey: "upstream-secret"}
	creds := map[string]string{admitAK: admitSK, admitAK2: admitSK2}
	allow := AuthorizerFunc(func(context.Context, *AuthzInput) *Error { return nil })
	e, err := New(Options{
		Address:       "127.0.0.1:0",
		EventLoops:    1,
		InlineBodyMax: 64 << 10,
		MaxObjectSize: admitMaxObj,
		Logger:        slog.New(slog.DiscardHandler),
		Now:           func() time.Time { return admitNow },
		Buckets: []Bucket{
			{Name: "sig", Upstream: up, Credentials: creds},
			{Name: "open", Upstream: up, AuthNone: true},
			{Name: "authz", Upstream: up, Credentials: creds, Authorizer: allow},
			{Name: "chunky", Upstream: up, Credentials: creds,
				Upload: UploadOptions{MultipartThreshold: autoThreshold, PartSize: 8 << 20}},
			{Name: "custom", Upstream: up, Authenticator: AuthenticatorFunc(tokenAuth)},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// admitReq is a hand-made request head. Unless noSign, the SDK's v4 signer signs it at admitNow
// (plus skew) the way the engine's other tests sign (DisableURIPathEscaping, the payload hash
// as x-amz-content-sha256).
type admitReq struct {
	method string
	path   string // percent-encoded, e.g. /sig/key
	query  string // raw, without '?'; "" = none
	cl     string // Content-Length value; "" = no header
	hdr    []string
	// payload is x-amz-content-sha256: "" = the SHA-256 of an empty body when signed, no header
	// when not.
	payload string
	noSign  bool
	rawID   bool          // send the uploadId as given; else as the token sealed for the request's principal
	ak, sk  string        // "" = admitAK; "" = admitSK
	skew    time.Duration // signing time minus admitNow
	post    func(lines []string) []string
}

// principal is who r authenticates as where it does: its access key when signed, tokenAuth's
// user with the test token, else anonymous.
func (r *admitReq) principal() string {
	switch {
	case !r.noSign && r.ak != "":
		return r.ak
	case !r.noSign:
		return admitAK
	case slices.Contains(r.hdr, "x-test-token: "+tokenOK), slices.Contains(r.hdr, "X-Test-Token: "+tokenOK):
		return "token-user"
	}
	return ""
}

// wire renders r as a request head (no body).
func (r *admitReq) wire(tb testing.TB) []byte {
	tb.Helper()
	query := r.query
	if !r.rawID {
		query = withUploadToken(tb, r.principal(), r.path, r.query)
	}
	lines := append([]string(nil), r.hdr...)
	payload := r.payload
	if !r.noSign {
		if payload == "" {
			payload = emptySHA
		}
		dec, err := url.PathUnescape(r.path)
		if err != nil {
			tb.Fatal(err)
		}
		u := &url.URL{Scheme: "http", Host: admitHost, Path: dec, RawPath: r.path, RawQuery: query}
		req, err := http.NewRequest(r.method, "http://"+admitHost+"/", nil)
		if err != nil {
			tb.Fatal(err)
		}
		req.URL = u
		for _, l := range r.hdr {
			k, v, _ := strings.Cut(l, ":")
			req.Header.Add(k, strings.TrimSpace(v))
		}
		if r.cl != "" {
			n, err := strconv.ParseInt(r.cl, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			req.ContentLength = n
		}
		req.Header.Set("X-Amz-Content-Sha256", payload)
		ak, sk := r.ak, r.sk
		if ak == "" {
			ak = admitAK
		}
		if sk == "" {
			sk = admitSK
		}
		s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		creds := aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}
		if err := s.SignHTTP(context.Background(), creds, req, payload, "s3", "us-east-1", admitNow.Add(r.skew)); err != nil {
			tb.Fatal(err)
		}
		for _, k := range []string{"X-Amz-Content-Sha256", "X-Amz-Date", "Authorization"} {
			lines = append(lines, k+": "+req.Header.Get(k))
		}
	} else if payload != "" {
		lines = append(lines, "X-Amz-Content-Sha256: "+payload)
	}
	if r.post != nil {
		lines = r.post(lines)
	}
	var b bytes.Buffer
	b.WriteString(r.method + " " + r.path)
	if query != "" {
		b.WriteString("?" + query)
	}
	b.WriteString(" HTTP/1.1\r\nHost: " + admitHost + "\r\n")
	if r.cl != "" {
		b.WriteString("Content-Length: " + r.cl + "\r\n")
	}
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// admitWant is the expected decision. For refusals only err, authErr and (when set) op are
// checked; for the others everything.
type admitWant struct {
	verdict   verdict
	next      verdict
	err       *s3Error
	authErr   bool
	op        op
	bodyLen   int64
	size      int64 // 0 = bodyLen
	principal Principal
	part      int
	uploadID  string // raw value of uploadId
}

func n64(n int64) string { return strconv.FormatInt(n, 10) }

// sigv4 is the principal of a request signed with admitAK.
var sigv4 = Principal{ID: admitAK, Method: "sigv4"}

// without returns a post hook that drops the header lines named name (case-insensitive).
func without(name string) func([]string) []string {
	return func(lines []string) []string {
		var out []string
		for _, l := range lines {
			if k, _, _ := strings.Cut(l, ":"); !strings.EqualFold(k, name) {
				out = append(out, l)
			}
		}
		return out
	}
}

// replace returns a post hook that sets the value of the header lines named name.
func replace(name, value string) func([]string) []string {
	return func(lines []string) []string {
		out := append([]string(nil), lines...)
		for i, l := range out {
			if k, _, _ := strings.Cut(l, ":"); strings.EqualFold(k, name) {
				out[i] = k + ": " + value
			}
		}
		return out
	}
}

const (
	gib = int64(1) << 30
	mib = int64(1) << 20
)

var admitTests = []struct {
	name string
	req  admitReq
	want admitWant
}{
	// Routing: the six operations.
	{"PutObject", admitReq{method: "PUT", path: "/sig/photos/cat.jpg", cl: "1024", hdr: []string{"Content-Type: image/jpeg"}},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 1024, principal: sigv4}},
	{"PutObject empty", admitReq{method: "PUT", path: "/sig/empty", cl: "0"},
		admitWant{verdict: verdictInline, op: opPutObject, principal: sigv4}},
	{"PutObject escaped key", admitReq{method: "PUT", path: "/sig/dir/a%20b%2Bc%E2%9C%93", cl: "3"},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 3, principal: sigv4}},
	{"PutObject x-id", admitReq{method: "PUT", path: "/sig/k", query: "x-id=PutObject", cl: "3"},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 3, principal: sigv4}},
	{"CreateMultipartUpload", admitReq{method: "POST", path: "/sig/big.bin", query: "uploads"},
		admitWant{verdict: verdictInline, op: opCreateMultipartUpload, principal: sigv4}},
	{"CreateMultipartUpload uploads=", admitReq{method: "POST", path: "/sig/big.bin", query: "uploads=", cl: "0"},
		admitWant{verdict: verdictInline, op: opCreateMultipartUpload, principal: sigv4}},
	{"UploadPart", admitReq{method: "PUT", path: "/sig/big.bin", query: "partNumber=3&uploadId=abc-123", cl: n64(5 * mib)},
		admitWant{verdict: verdictStream, op: opUploadPart, bodyLen: 5 * mib, principal: sigv4, part: 3, uploadID: "abc-123"}},
	{"UploadPart uploadId first", admitReq{method: "PUT", path: "/sig/big.bin", query: "uploadId=abc%2F123&partNumber=10000", cl: "10"},
		admitWant{verdict: verdictInline, op: opUploadPart, bodyLen: 10, principal: sigv4, part: 10000, uploadID: "abc%2F123"}},
	{"CompleteMultipartUpload", admitReq{method: "POST", path: "/sig/big.bin", query: "uploadId=abc-123", cl: "512"},
		admitWant{verdict: verdictInline, op: opCompleteMultipartUpload, bodyLen: 512, principal: sigv4, uploadID: "abc-123"}},
	{"AbortMultipartUpload", admitReq{method: "DELETE", path: "/sig/big.bin", query: "uploadId=abc-123"},
		admitWant{verdict: verdictInline, op: opAbortMultipartUpload, principal: sigv4, uploadID: "abc-123"}},
	{"ListParts", admitReq{method: "GET", path: "/sig/big.bin", query: "max-parts=10&part-number-marker=2&uploadId=abc-123&encoding-type=url"},
		admitWant{verdict: verdictInline, op: opListParts, principal: sigv4, uploadID: "abc-123"}},

	// Routing: what this proxy does not serve.
	{"ListBuckets", admitReq{method: "GET", path: "/"}, admitWant{err: errMethodNotAllowed}},
	{"service-level PUT", admitReq{method: "PUT", path: "/", cl: "0"}, admitWant{err: errMethodNotAllowed}},
	{"ListObjects", admitReq{method: "GET", path: "/sig"}, admitWant{err: errMethodNotAllowed}},
	{"ListObjectsV2", admitReq{method: "GET", path: "/sig/", query: "list-type=2"}, admitWant{err: errMethodNotAllowed}},
	{"CreateBucket", admitReq{method: "PUT", path: "/sig", cl: "0"}, admitWant{err: errMethodNotAllowed}},
	{"CreateBucket trailing slash", admitReq{method: "PUT", path: "/sig/", cl: "0"}, admitWant{err: errMethodNotAllowed}},
	{"DeleteBucket", admitReq{method: "DELETE", path: "/sig"}, admitWant{err: errMethodNotAllowed}},
	{"GetObject", admitReq{method: "GET", path: "/sig/key"}, admitWant{err: errMethodNotAllowed}},
	{"HeadObject", admitReq{method: "HEAD", path: "/sig/key"}, admitWant{err: errMethodNotAllowed}},
	{"DeleteObject", admitReq{method: "DELETE", path: "/sig/key"}, admitWant{err: errMethodNotAllowed}},
	{"POST without uploads", admitReq{method: "POST", path: "/sig/key", cl: "0"}, admitWant{err: errMethodNotAllowed}},
	{"POST uploads and uploadId", admitReq{method: "POST", path: "/sig/key", query: "uploads&uploadId=x"}, admitWant{err: errMethodNotAllowed}},
	{"OPTIONS without Origin", admitReq{method: "OPTIONS", path: "/sig/key", noSign: true}, admitWant{err: errCORSNoOrigin}},
	{"OPTIONS without Access-Control-Request-Method", admitReq{method: "OPTIONS", path: "/sig/key", noSign: true,
		hdr: []string{"Origin: https://app.example"}}, admitWant{err: errCORSNoMethod}},
	{"preflight, bucket without CORS rules", admitReq{method: "OPTIONS", path: "/sig/key", noSign: true,
		hdr: []string{"Origin: https://app.example", "Access-Control-Request-Method: PUT"}}, admitWant{err: errCORSDisabled}},
	{"preflight, unknown bucket", admitReq{method: "OPTIONS", path: "/nope/key", noSign: true,
		hdr: []string{"Origin: https://app.example", "Access-Control-Request-Method: PUT"}}, admitWant{err: errUnknownBucket}},
	{"unknown bucket", admitReq{method: "PUT", path: "/nope/key", cl: "1"}, admitWant{err: errUnknownBucket}},
	{"unknown bucket, unsigned", admitReq{method: "PUT", path: "/nope/key", cl: "1", noSign: true}, admitWant{err: errUnknownBucket}},
	{"bucket name prefix", admitReq{method: "PUT", path: "/si/key", cl: "1"}, admitWant{err: errUnknownBucket}},
	{"PutObjectAcl", admitReq{method: "PUT", path: "/sig/key", query: "acl", cl: "0"}, admitWant{err: errNotImplemented}},
	{"PutObjectTagging", admitReq{method: "PUT", path: "/sig/key", query: "tagging", cl: "0"}, admitWant{err: errNotImplemented}},
	{"UploadPart with tagging", admitReq{method: "PUT", path: "/sig/key", query: "partNumber=1&uploadId=x&tagging", cl: "0"}, admitWant{err: errNotImplemented}},
	{"PUT uploads", admitReq{method: "PUT", path: "/sig/key", query: "uploads", cl: "0"}, admitWant{err: errNotImplemented}},
	{"POST restore", admitReq{method: "POST", path: "/sig/key", query: "restore"}, admitWant{err: errNotImplemented}},
	{"GetObjectAcl", admitReq{method: "GET", path: "/sig/key", query: "acl"}, admitWant{err: errMethodNotAllowed}},
	{"CopyObject", admitReq{method: "PUT", path: "/sig/key", cl: "0", hdr: []string{"X-Amz-Copy-Source: /sig/other"}},
		admitWant{err: errCopyNotImplemented}},
	{"UploadPartCopy", admitReq{method: "PUT", path: "/sig/key", query: "partNumber=1&uploadId=x", cl: "0", hdr: []string{"X-Amz-Copy-Source: /sig/other"}},
		admitWant{err: errCopyNotImplemented}},
	{"Complete with copy-source", admitReq{method: "POST", path: "/sig/key", query: "uploadId=x", cl: "0", hdr: []string{"X-Amz-Copy-Source: /sig/other"}},
		admitWant{err: errCopyNotImplemented}},
	{"partNumber without uploadId", admitReq{method: "PUT", path: "/sig/key", query: "partNumber=1", cl: "1"}, admitWant{err: errInvalidArgument}},
	{"uploadId without partNumber", admitReq{method: "PUT", path: "/sig/key", query: "uploadId=x", cl: "1"}, admitWant{err: errInvalidArgument}},
	{"partNumber on Create", admitReq{method: "POST", path: "/sig/key", query: "uploads&partNumber=1"}, admitWant{err: errInvalidArgument}},
	{"partNumber on Complete", admitReq{method: "POST", path: "/sig/key", query: "uploadId=x&partNumber=1", cl: "0"}, admitWant{err: errInvalidArgument}},
	{"partNumber 0", admitReq{method: "PUT", path: "/sig/key", query: "partNumber=0&uploadId=x", cl: "1"}, admitWant{err: errInvalidPartNumber}},
	{"partNumber 10001", admitReq{method: "PUT", path: "/sig/key", query: "partNumber=10001&uploadId=x", cl: "1"}, admitWant{err: errInvalidPartNumber}},
	{"partNumber not a number", admitReq{method: "PUT", path: "/sig/key", query: "partNumber=1a&uploadId=x", cl: "1"}, admitWant{err: errInvalidPartNumber}},
	{"partNumber signed", admitReq{method: "PUT", path: "/sig/key", query: "partNumber=%2B1&uploadId=x", cl: "1"}, admitWant{err: errInvalidPartNumber}},
	{"partNumber empty", admitReq{method: "PUT", path: "/sig/key", query: "partNumber=&uploadId=x", cl: "1"}, admitWant{err: errInvalidPartNumber}},
	{"uploadId empty", admitReq{method: "PUT", path: "/sig/key", query: "partNumber=1&uploadId=", cl: "1"}, admitWant{err: errInvalidUploadID}},
	{"uploadId without value", admitReq{method: "DELETE", path: "/sig/key", query: "uploadId"}, admitWant{err: errInvalidUploadID}},
	{"uploadId too long", admitReq{method: "DELETE", path: "/sig/key", query: "uploadId=" + strings.Repeat("u", 1025)}, admitWant{err: errInvalidUploadID}},
	{"key too long", admitReq{method: "PUT", path: "/sig/" + strings.Repeat("k", 1025), cl: "1"}, admitWant{err: errKeyTooLong}},
	{"key of 1025 escaped bytes", admitReq{method: "PUT", path: "/sig/" + strings.Repeat("%20", 1025), cl: "1"}, admitWant{err: errKeyTooLong}},
	{"key of 1024 escaped bytes", admitReq{method: "PUT", path: "/sig/" + strings.Repeat("%20", 1024), cl: "1"},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 1, principal: sigv4}},

	// Size limits.
	{"PutObject over MaxObjectSize", admitReq{method: "PUT", path: "/chunky/huge", cl: n64(admitMaxObj + 1)},
		admitWant{err: errEntityTooLarge, op: opPutObject}},
	{"PutObject over 5 GiB without auto-chunking", admitReq{method: "PUT", path: "/sig/huge", cl: n64(5*gib + 1)},
		admitWant{err: errEntityTooLarge, op: opPutObject}},
	{"PutObject of 5 GiB", admitReq{method: "PUT", path: "/sig/huge", cl: n64(5 * gib)},
		admitWant{verdict: verdictStream, op: opPutObject, bodyLen: 5 * gib, principal: sigv4}},
	{"PutObject over 5 GiB auto-chunked", admitReq{method: "PUT", path: "/chunky/huge", cl: n64(6 * gib)},
		admitWant{verdict: verdictAutoChunk, op: opPutObject, bodyLen: 6 * gib, principal: sigv4}},
	{"PutObject of MaxObjectSize auto-chunked", admitReq{method: "PUT", path: "/chunky/huge", cl: n64(admitMaxObj)},
		admitWant{verdict: verdictAutoChunk, op: opPutObject, bodyLen: admitMaxObj, principal: sigv4}},
	{"PutObject over the threshold", admitReq{method: "PUT", path: "/chunky/mid", cl: n64(autoThreshold + 1)},
		admitWant{verdict: verdictAutoChunk, op: opPutObject, bodyLen: autoThreshold + 1, principal: sigv4}},
	{"PutObject at the threshold", admitReq{method: "PUT", path: "/chunky/mid", cl: n64(autoThreshold)},
		admitWant{verdict: verdictStream, op: opPutObject, bodyLen: autoThreshold, principal: sigv4}},
	{"UploadPart over the threshold is not auto-chunked", admitReq{method: "PUT", path: "/chunky/mid", query: "partNumber=1&uploadId=x", cl: n64(autoThreshold + 1)},
		admitWant{verdict: verdictStream, op: opUploadPart, bodyLen: autoThreshold + 1, principal: sigv4, part: 1, uploadID: "x"}},
	{"UploadPart over 5.625 GiB", admitReq{method: "PUT", path: "/sig/k", query: "partNumber=1&uploadId=x", cl: n64(5*gib + 5*gib/8 + 1)},
		admitWant{err: errEntityTooLarge, op: opUploadPart}},
	{"UploadPart of 5.625 GiB", admitReq{method: "PUT", path: "/sig/k", query: "partNumber=1&uploadId=x", cl: n64(5*gib + 5*gib/8)},
		admitWant{verdict: verdictStream, op: opUploadPart, bodyLen: 5*gib + 5*gib/8, principal: sigv4, part: 1, uploadID: "x"}},
	{"Complete over 4 MiB", admitReq{method: "POST", path: "/sig/k", query: "uploadId=x", cl: n64(4*mib + 1)},
		admitWant{err: errEntityTooLarge, op: opCompleteMultipartUpload}},
	{"Complete of 4 MiB", admitReq{method: "POST", path: "/sig/k", query: "uploadId=x", cl: n64(4 * mib)},
		admitWant{verdict: verdictInline, op: opCompleteMultipartUpload, bodyLen: 4 * mib, principal: sigv4, uploadID: "x"}},
	{"Abort with a body", admitReq{method: "DELETE", path: "/sig/k", query: "uploadId=x", cl: "5"},
		admitWant{err: errInvalidArgument, op: opAbortMultipartUpload}},
	{"Abort with Content-Length 0", admitReq{method: "DELETE", path: "/sig/k", query: "uploadId=x", cl: "0"},
		admitWant{verdict: verdictInline, op: opAbortMultipartUpload, principal: sigv4, uploadID: "x"}},
	{"ListParts with a body", admitReq{method: "GET", path: "/sig/k", query: "uploadId=x", cl: "1"},
		admitWant{err: errInvalidArgument, op: opListParts}},
	{"Create with a body", admitReq{method: "POST", path: "/sig/k", query: "uploads", cl: "2"},
		admitWant{err: errInvalidArgument, op: opCreateMultipartUpload}},
	{"PutObject without Content-Length", admitReq{method: "PUT", path: "/sig/k"},
		admitWant{err: errMissingContentLength, op: opPutObject}},
	{"UploadPart without Content-Length", admitReq{method: "PUT", path: "/sig/k", query: "partNumber=2&uploadId=x"},
		admitWant{err: errMissingContentLength, op: opUploadPart}},
	{"Complete without Content-Length", admitReq{method: "POST", path: "/sig/k", query: "uploadId=x"},
		admitWant{verdict: verdictInline, op: opCompleteMultipartUpload, principal: sigv4, uploadID: "x"}},

	// Payload declarations.
	{"hex sha256", admitReq{method: "PUT", path: "/sig/k", cl: "11", payload: "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 11, principal: sigv4}},
	{"upper-case hex sha256", admitReq{method: "PUT", path: "/sig/k", cl: "11", payload: "B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9"},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 11, principal: sigv4}},
	{"UNSIGNED-PAYLOAD", admitReq{method: "PUT", path: "/sig/k", cl: "11", payload: "UNSIGNED-PAYLOAD"},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 11, principal: sigv4}},
	{"STREAMING-UNSIGNED-PAYLOAD-TRAILER", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000", "X-Amz-Trailer: x-amz-checksum-crc32"}},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 1100, size: 1000, principal: sigv4}},
	{"aws-chunked UploadPart streamed", admitReq{method: "PUT", path: "/sig/k", query: "partNumber=1&uploadId=x", cl: n64(8*mib + 100), payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: gzip, AWS-Chunked", "X-Amz-Decoded-Content-Length: 8388608"}},
		admitWant{verdict: verdictStream, op: opUploadPart, bodyLen: 8*mib + 100, size: 8 * mib, principal: sigv4, part: 1, uploadID: "x"}},
	// Signed chunks: streamed (detached, copy path) whatever the size, so the loop never sees one.
	{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000"}},
		admitWant{verdict: verdictStream, op: opPutObject, bodyLen: 1100, size: 1000, principal: sigv4}},
	{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD UploadPart", admitReq{method: "PUT", path: "/sig/k", query: "partNumber=2&uploadId=x", cl: "1100", payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000"}},
		admitWant{verdict: verdictStream, op: opUploadPart, bodyLen: 1100, size: 1000, principal: sigv4, part: 2, uploadID: "x"}},
	{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000", "X-Amz-Trailer: x-amz-checksum-crc64nvme"}},
		admitWant{verdict: verdictStream, op: opPutObject, bodyLen: 1100, size: 1000, principal: sigv4}},
	{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER without x-amz-trailer", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000"}},
		admitWant{err: errTrailerHeader, op: opPutObject}},
	{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER with an unknown trailer", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000", "X-Amz-Trailer: x-amz-meta-a"}},
		admitWant{err: errTrailerHeader, op: opPutObject}},
	{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD with x-amz-trailer", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000", "X-Amz-Trailer: x-amz-checksum-crc32"}},
		admitWant{err: errTrailerHeader, op: opPutObject}},
	{"STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000"}},
		admitWant{err: errSignedChunks, op: opPutObject}},
	{"garbage payload", admitReq{method: "PUT", path: "/sig/k", cl: "1", payload: "not-a-hash"},
		admitWant{err: errInvalidContentSHA256, op: opPutObject}},
	{"63 hex digits", admitReq{method: "PUT", path: "/sig/k", cl: "1", payload: emptySHA[:63]},
		admitWant{err: errInvalidContentSHA256, op: opPutObject}},
	{"unsigned-payload in lower case", admitReq{method: "PUT", path: "/sig/k", cl: "1", payload: "unsigned-payload"},
		admitWant{err: errInvalidContentSHA256, op: opPutObject}},
	{"garbage payload on auth none", admitReq{method: "PUT", path: "/open/k", cl: "1", payload: "zzz", noSign: true},
		admitWant{err: errInvalidContentSHA256, op: opPutObject}},
	{"aws-chunked without decoded length", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked"}},
		admitWant{err: errDecodedLengthRequired, op: opPutObject}},
	{"aws-chunked with a malformed decoded length", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 10x0"}},
		admitWant{err: errInvalidDecodedLength, op: opPutObject}},
	{"aws-chunked with a negative decoded length", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: -1"}},
		admitWant{err: errInvalidDecodedLength, op: opPutObject}},
	{"aws-chunked with a huge decoded length", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 99999999999999999999"}},
		admitWant{err: errInvalidDecodedLength, op: opPutObject}},
	{"aws-chunked decoded over 5 GiB", admitReq{method: "PUT", path: "/sig/k", cl: "1100", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: " + n64(5*gib+1)}},
		admitWant{err: errEntityTooLarge, op: opPutObject}},
	{"aws-chunked above the auto-chunk threshold", admitReq{method: "PUT", path: "/chunky/k", cl: n64(autoThreshold + 200), payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: " + n64(autoThreshold+1)}},
		admitWant{verdict: verdictAutoChunk, op: opPutObject, bodyLen: autoThreshold + 200, size: autoThreshold + 1, principal: sigv4}},
	{"signed aws-chunked above the auto-chunk threshold", admitReq{method: "PUT", path: "/chunky/k", cl: n64(autoThreshold + 20000), payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: " + n64(autoThreshold+1)}},
		admitWant{verdict: verdictAutoChunk, op: opPutObject, bodyLen: autoThreshold + 20000, size: autoThreshold + 1, principal: sigv4}},
	{"aws-chunked above the auto-chunk threshold, unknown trailer", admitReq{method: "PUT", path: "/chunky/k", cl: n64(autoThreshold + 200), payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: " + n64(autoThreshold+1), "X-Amz-Trailer: x-amz-meta-x"}},
		admitWant{err: errTrailerHeader, op: opPutObject}},
	// Transfer-Encoding: chunked (tecoding.go): aws-chunked inside is streamed (copy path) or
	// auto-chunked by its decoded length; with no decoded length the length is unknown: 411.
	{"chunked aws-chunked", admitReq{method: "PUT", path: "/sig/k", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Transfer-Encoding: chunked", "Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000", "X-Amz-Trailer: x-amz-checksum-crc32"}},
		admitWant{verdict: verdictStream, op: opPutObject, bodyLen: -1, size: 1000, principal: sigv4}},
	{"chunked signed aws-chunked UploadPart", admitReq{method: "PUT", path: "/sig/k", query: "partNumber=2&uploadId=x", payload: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
		hdr: []string{"Transfer-Encoding: chunked", "Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000"}},
		admitWant{verdict: verdictStream, op: opUploadPart, bodyLen: -1, size: 1000, principal: sigv4, part: 2, uploadID: "x"}},
	{"chunked aws-chunked above the auto-chunk threshold", admitReq{method: "PUT", path: "/chunky/k", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Transfer-Encoding: chunked", "Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: " + n64(autoThreshold+1)}},
		admitWant{verdict: verdictAutoChunk, op: opPutObject, bodyLen: -1, size: autoThreshold + 1, principal: sigv4}},
	{"chunked aws-chunked with an unknown trailer", admitReq{method: "PUT", path: "/sig/k", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Transfer-Encoding: chunked", "Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1000", "X-Amz-Trailer: x-amz-meta-x"}},
		admitWant{err: errTrailerHeader, op: opPutObject}},
	{"chunked UploadPart over 5 GiB", admitReq{method: "PUT", path: "/sig/k", query: "partNumber=2&uploadId=x", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Transfer-Encoding: chunked", "Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: " + n64(5*gib+1)}},
		admitWant{err: errEntityTooLarge, op: opUploadPart}},
	{"chunked UNSIGNED-PAYLOAD", admitReq{method: "PUT", path: "/sig/k", payload: "UNSIGNED-PAYLOAD", hdr: []string{"Transfer-Encoding: chunked"}},
		admitWant{err: errMissingContentLength, op: opPutObject}},
	{"chunked hex sha256 under aws-chunked encoding", admitReq{method: "PUT", path: "/sig/k", payload: "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9",
		hdr: []string{"Transfer-Encoding: chunked", "Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 11"}},
		admitWant{err: errMissingContentLength, op: opPutObject}},
	{"chunked Complete", admitReq{method: "POST", path: "/sig/k", query: "uploadId=x", payload: "UNSIGNED-PAYLOAD", hdr: []string{"Transfer-Encoding: chunked"}},
		admitWant{err: errMissingContentLength, op: opCompleteMultipartUpload}},
	// Content-Encoding: aws-chunked with a plain payload hash is an ordinary body, as S3 takes it.
	{"aws-chunked encoding without a STREAMING payload above the auto-chunk threshold", admitReq{method: "PUT", path: "/chunky/k", cl: n64(autoThreshold + 200), payload: "UNSIGNED-PAYLOAD",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: " + n64(autoThreshold+1)}},
		admitWant{verdict: verdictAutoChunk, op: opPutObject, bodyLen: autoThreshold + 200, size: autoThreshold + 200, principal: sigv4}},
	{"aws-chunked below the auto-chunk threshold", admitReq{method: "PUT", path: "/chunky/k", cl: n64(autoThreshold - 10), payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: " + n64(autoThreshold-1000)}},
		admitWant{verdict: verdictStream, op: opPutObject, bodyLen: autoThreshold - 10, size: autoThreshold - 1000, principal: sigv4}},

	// Authentication.
	{"second credential", admitReq{method: "PUT", path: "/sig/k", cl: "1", ak: admitAK2, sk: admitSK2},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 1, principal: Principal{ID: admitAK2, Method: "sigv4"}}},
	{"wrong secret", admitReq{method: "PUT", path: "/sig/k", cl: "1", sk: "not-the-secret"},
		admitWant{err: errSignatureDoesNotMatch, authErr: true, op: opPutObject}},
	{"secret of another key", admitReq{method: "PUT", path: "/sig/k", cl: "1", ak: admitAK, sk: admitSK2},
		admitWant{err: errSignatureDoesNotMatch, authErr: true, op: opPutObject}},
	{"tampered header", admitReq{method: "PUT", path: "/sig/k", cl: "1", hdr: []string{"Content-Type: text/plain"}, post: replace("Content-Type", "text/html")},
		admitWant{err: errSignatureDoesNotMatch, authErr: true, op: opPutObject}},
	{"unknown access key", admitReq{method: "PUT", path: "/sig/k", cl: "1", ak: "AKIDNOBODY", sk: "x"},
		admitWant{err: errInvalidAccessKeyID, authErr: true, op: opPutObject}},
	{"date an hour old", admitReq{method: "PUT", path: "/sig/k", cl: "1", skew: -time.Hour},
		admitWant{err: errRequestTimeTooSkewed, authErr: true, op: opPutObject}},
	{"date 16 minutes ahead", admitReq{method: "PUT", path: "/sig/k", cl: "1", skew: 16 * time.Minute},
		admitWant{err: errRequestTimeTooSkewed, authErr: true, op: opPutObject}},
	{"date 14 minutes old", admitReq{method: "PUT", path: "/sig/k", cl: "1", skew: -14 * time.Minute},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 1, principal: sigv4}},
	{"no Authorization", admitReq{method: "PUT", path: "/sig/k", cl: "1", noSign: true},
		admitWant{err: errAnonymous, authErr: true, op: opPutObject}},
	{"no x-amz-date", admitReq{method: "PUT", path: "/sig/k", cl: "1", post: without("X-Amz-Date")},
		admitWant{err: errMissingDate, authErr: true, op: opPutObject}},
	{"no x-amz-content-sha256", admitReq{method: "PUT", path: "/sig/k", cl: "1", post: without("X-Amz-Content-Sha256")},
		admitWant{err: errMissingContentSHA256, authErr: true, op: opPutObject}},
	{"SigV2", admitReq{method: "PUT", path: "/sig/k", cl: "1", noSign: true, hdr: []string{"Authorization: AWS " + admitAK + ":frJIUN8DYpKDtOLCwo//yllqDzg="}},
		admitWant{err: errUnsupportedAuth, authErr: true, op: opPutObject}},
	{"malformed Authorization", admitReq{method: "PUT", path: "/sig/k", cl: "1", post: replace("Authorization", "AWS4-HMAC-SHA256 Credential=nonsense")},
		admitWant{err: errAuthHeaderMalformed, authErr: true, op: opPutObject}},
	{"presigned", admitReq{method: "PUT", path: "/sig/k", cl: "1", noSign: true,
		query: "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + admitAK + "%2F20250601%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250601T120000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=" + emptySHA},
		admitWant{err: errSignatureDoesNotMatch, authErr: true, op: opPutObject}},
	{"auth none", admitReq{method: "PUT", path: "/open/k", cl: "1", noSign: true},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 1, principal: Principal{Method: "none"}}},
	{"auth none ignores a signature", admitReq{method: "PUT", path: "/open/k", cl: "1", sk: "wrong"},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 1, principal: Principal{Method: "none"}}},
	{"auth none Create", admitReq{method: "POST", path: "/open/k", query: "uploads", noSign: true},
		admitWant{verdict: verdictInline, op: opCreateMultipartUpload, principal: Principal{Method: "none"}}},
	{"own Authenticator", admitReq{method: "PUT", path: "/custom/k", cl: "1", noSign: true, hdr: []string{"X-Test-Token: " + tokenOK}},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 1, principal: Principal{ID: "token-user", Method: "token"}}},
	{"own Authenticator refuses", admitReq{method: "PUT", path: "/custom/k", cl: "1", hdr: []string{"X-Test-Token: guess"}},
		admitWant{err: errBadToken, authErr: true, op: opPutObject}},

	// Verdicts.
	{"body of InlineBodyMax", admitReq{method: "PUT", path: "/sig/k", cl: n64(64 << 10)},
		admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 64 << 10, principal: sigv4}},
	{"body over InlineBodyMax", admitReq{method: "PUT", path: "/sig/k", cl: n64(64<<10 + 1)},
		admitWant{verdict: verdictStream, op: opPutObject, bodyLen: 64<<10 + 1, principal: sigv4}},
	{"Complete over InlineBodyMax", admitReq{method: "POST", path: "/sig/k", query: "uploadId=x", cl: n64(1 * mib)},
		admitWant{verdict: verdictInline, op: opCompleteMultipartUpload, bodyLen: 1 * mib, principal: sigv4, uploadID: "x"}},
	{"Authorizer, small", admitReq{method: "PUT", path: "/authz/k", cl: "100"},
		admitWant{verdict: verdictAwait, next: verdictInline, op: opPutObject, bodyLen: 100, principal: sigv4}},
	{"Authorizer, large", admitReq{method: "PUT", path: "/authz/k", cl: n64(10 * mib)},
		admitWant{verdict: verdictAwait, next: verdictStream, op: opPutObject, bodyLen: 10 * mib, principal: sigv4}},
	{"Authorizer, Complete", admitReq{method: "POST", path: "/authz/k", query: "uploadId=x", cl: n64(1 * mib)},
		admitWant{verdict: verdictAwait, next: verdictInline, op: opCompleteMultipartUpload, bodyLen: 1 * mib, principal: sigv4, uploadID: "x"}},
	{"Authorizer, Abort", admitReq{method: "DELETE", path: "/authz/k", query: "uploadId=x"},
		admitWant{verdict: verdictAwait, next: verdictInline, op: opAbortMultipartUpload, principal: sigv4, uploadID: "x"}},
	{"Authorizer, bad signature", admitReq{method: "PUT", path: "/authz/k", cl: "100", sk: "wrong"},
		admitWant{err: errSignatureDoesNotMatch, authErr: true, op: opPutObject}},
	{"Authorizer, refused route", admitReq{method: "GET", path: "/authz/k"},
		admitWant{err: errMethodNotAllowed}},
}

// parseHead parses a complete request head with the engine's limits.
func parseHead(tb testing.TB, e *Engine, wire []byte) *httpparse.Request {
	tb.Helper()
	var p httpparse.Parser
	req := new(httpparse.Request)
	if err := p.Parse(wire, e.limits, req); err != nil {
		tb.Fatalf("parse %q: %v", wire, err)
	}
	return req
}

func TestAdmit(t *testing.T) {
	e := newAdmitEngine(t)
	for _, tt := range admitTests {
		t.Run(tt.name, func(t *testing.T) {
			wire := tt.req.wire(t)
			req := parseHead(t, e, wire)
			h := Head{req: req, buf: wire}
			d := e.admit(&h)
			checkDecision(t, &h, &d, tt.want)
		})
	}
}

func errString(e *s3Error) string {
	if e == nil {
		return "<nil>"
	}
	return strconv.Itoa(e.Status) + " " + e.Code + " (" + e.Message + ")"
}

func checkDecision(t *testing.T, h *Head, d *decision, w admitWant) {
	t.Helper()
	if w.err != nil {
		if d.verdict != verdictRefuse || d.err != w.err {
			t.Fatalf("admit = %v, %s; want refuse, %s", d.verdict, errString(d.err), errString(w.err))
		}
		if d.err.Code != w.err.Code || d.err.Status != w.err.Status {
			t.Errorf("err = %d %s; want %d %s", d.err.Status, d.err.Code, w.err.Status, w.err.Code)
		}
		if d.authErr != w.authErr {
			t.Errorf("authErr = %v; want %v", d.authErr, w.authErr)
		}
		if w.op != opNone && d.rt.op != w.op {
			t.Errorf("op = %v; want %v", d.rt.op, w.op)
		}
		if d.principal.ID != "" || d.principal.Method != "" || d.principal.Claims != nil {
			t.Errorf("principal = %+v; want none for a refusal", d.principal)
		}
		return
	}
	if d.verdict != w.verdict || d.err != nil {
		t.Fatalf("admit = %v, %s; want %v", d.verdict, errString(d.err), w.verdict)
	}
	if d.verdict == verdictAwait && d.next != w.next {
		t.Errorf("next = %v; want %v", d.next, w.next)
	}
	if d.authErr {
		t.Errorf("authErr set on an accepted request")
	}
	if d.rt.op != w.op {
		t.Errorf("op = %v; want %v", d.rt.op, w.op)
	}
	size := w.size
	if size == 0 {
		size = w.bodyLen
	}
	if d.bodyLen != w.bodyLen || d.size != size {
		t.Errorf("bodyLen, size = %d, %d; want %d, %d", d.bodyLen, d.size, w.bodyLen, size)
	}
	if d.principal.ID != w.principal.ID || d.principal.Method != w.principal.Method {
		t.Errorf("principal = %q/%q; want %q/%q", d.principal.ID, d.principal.Method, w.principal.ID, w.principal.Method)
	}
	path := h.Path()
	bucket, key, _ := strings.Cut(string(path[1:]), "/")
	if d.rt.bucket == nil || d.rt.bucket.name != bucket {
		t.Errorf("bucket = %v; want %q", d.rt.bucket, bucket)
	}
	if got := string(path[d.rt.keyStart:d.rt.keyEnd]); got != key {
		t.Errorf("key = %q; want %q", got, key)
	}
	if d.rt.partNum != w.part {
		t.Errorf("partNumber = %d; want %d", d.rt.partNum, w.part)
	}
	if w.uploadID != "" {
		// The client sent the token for w.uploadID (admitReq.wire): it opens to it.
		want, _ := url.PathUnescape(w.uploadID)
		got := h.Query()[d.rt.uploadID[0]:d.rt.uploadID[1]]
		key, _ := url.PathUnescape(string(h.Path()[d.rt.keyStart:]))
		id, err := openTestToken(d.principal.ID, d.rt.bucket.name, key, got)
		if !d.rt.hasID || err != nil || id != want {
			t.Errorf("uploadId = %v %q (opens to %q, %v); want the token for %q", d.rt.hasID, got, id, err, want)
		}
	}
}

// TestAdmitHeadBuffer checks that admit reads the head only: the body bytes buffered behind it
// (here a whole inline body, and bytes of a next pipelined request) change nothing.
func TestAdmitHeadBuffer(t *testing.T) {
	e := newAdmitEngine(t)
	r := admitReq{method: "PUT", path: "/sig/k", cl: "5"}
	head := r.wire(t)
	buf := append(append(append([]byte(nil), head...), "hello"...), "PUT /sig/next HTTP/1.1\r\n"...)
	req := parseHead(t, e, buf)
	if req.HeadLen != len(head) {
		t.Fatalf("HeadLen = %d; want %d", req.HeadLen, len(head))
	}
	h := Head{req: req, buf: buf}
	d := e.admit(&h)
	checkDecision(t, &h, &d, admitWant{verdict: verdictInline, op: opPutObject, bodyLen: 5, principal: sigv4})
}

// TestAdmitAuthzInput checks what an await decision hands the Authorizer.
func TestAdmitAuthzInput(t *testing.T) {
	e := newAdmitEngine(t)
	r := admitReq{method: "PUT", path: "/authz/dir/a%20b", query: "partNumber=7&uploadId=up%2Fid", cl: "100",
		hdr: []string{"Content-Type: text/plain"}}
	wire := r.wire(t)
	h := Head{req: parseHead(t, e, wire), buf: wire}
	d := e.admit(&h)
	if d.verdict != verdictAwait || d.next != verdictInline {
		t.Fatalf("admit = %v (next %v), %s; want await (next inline)", d.verdict, d.next, errString(d.err))
	}
	in := newAuthzInput(&h, &d, []byte("REQ"), "192.0.2.1:1234")
	want := AuthzInput{RequestID: "REQ", Remote: "192.0.2.1:1234", Principal: sigv4, Operation: "UploadPart",
		Bucket: "authz", Key: "dir/a b", UploadID: testToken(t, admitAK, r.path, "up/id"), PartNumber: 7, Size: 100, ContentType: "text/plain"}
	if !reflect.DeepEqual(*in, want) {
		t.Errorf("AuthzInput = %+v; want %+v", *in, want)
	}
}

// FuzzAdmit assembles a request head from a method, a path, a query and a header block; when
// httpparse accepts it, admit must not panic and its decision must be consistent (checkInvariants).
// An admitted request must also give an Authorizer input and an upstream head that parses back
// with the same Content-Length. Seeded with the table's requests, signed at the engine's fixed
// clock, so the fuzzer starts from heads that authenticate.
func FuzzAdmit(f *testing.F) {
	e := newAdmitEngine(f)
	// Bucket "open" has CORS rules (cors.go): preflights are admitted there.
	c, err := cors.New([]cors.Rule{{AllowedOrigins: []string{"https://*.example"}, AllowedMethods: []string{"PUT", "POST"},
		AllowedHeaders: []string{"x-amz-*", "authorization"}, ExposeHeaders: []string{"ETag"}}})
	if err != nil {
		f.Fatal(err)
	}
	e.lookupBucket([]byte("open")).cors = c
	f.Add("OPTIONS", "/open/k", "uploads", true, "Host: h\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: POST\r\n"+
		"Access-Control-Request-Headers: authorization, x-amz-date\r\n")
	f.Add("PUT", "/open/k", "", false, "Host: h\r\nContent-Length: 0\r\nOrigin: https://b.example\r\n")
	for _, tt := range admitTests {
		wire := tt.req.wire(f)
		line, rest, _ := bytes.Cut(wire, []byte("\r\n"))
		method, target, _ := strings.Cut(string(line), " ")
		target = strings.TrimSuffix(target, " HTTP/1.1")
		path, query, hasQuery := strings.Cut(target, "?")
		f.Add(method, path, query, hasQuery, string(rest[:len(rest)-2]))
	}
	for _, s := range postObjectSeeds {
		f.Add(s[0], s[1], s[2], s[3] != "", s[4])
	}
	f.Fuzz(func(t *testing.T, method, path, query string, hasQuery bool, headers string) {
		b := make([]byte, 0, len(method)+len(path)+len(query)+len(headers)+16)
		b = append(append(append(b, method...), ' '), path...)
		if hasQuery {
			b = append(append(b, '?'), query...)
		}
		b = append(append(append(b, " HTTP/1.1\r\n"...), headers...), "\r\n"...)
		var p httpparse.Parser
		req := new(httpparse.Request)
		if p.Parse(b, e.limits, req) != nil {
			return
		}
		h := Head{req: req, buf: b}
		d := e.admit(&h)
		checkInvariants(t, e, &h, &d)
		checkCORS(t, e, &h, &d)
		if d.verdict != verdictRefuse && d.verdict != verdictPreflight && d.rt.op != opPostObject {
			checkAdmitted(t, e, &h, &d)
		}
	})
}

// checkCORS checks a decision's CORS side: a preflight is admitted only for OPTIONS to a bucket
// with CORS rules, without a principal; the header lines every answer gets are well formed (no
// header of the request can inject a line).
func checkCORS(t *testing.T, e *Engine, h *Head, d *decision) {
	t.Helper()
	if d.verdict == verdictPreflight {
		if !d.preflight || string(h.Method()) != "OPTIONS" || d.rt.bucket == nil || d.rt.bucket.cors == nil || d.principal.ID != "" || d.principal.Method != "" {
			t.Fatalf("preflight admitted: method %q, bucket %v, principal %+v", h.Method(), d.rt.bucket != nil, d.principal)
		}
	}
	out := string(e.appendCORS(nil, h, d))
	for _, line := range strings.SplitAfter(out, "\r\n") {
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(strings.TrimSuffix(line, "\r\n"), ": ")
		if !ok || !strings.HasSuffix(line, "\r\n") || strings.ContainsAny(name+value, "\r\n") || !strings.HasPrefix(name, "Access-Control-") && name != "Vary" {
			t.Fatalf("CORS header line %q in %q", line, out)
		}
	}
}

// checkInvariants checks what holds for every decision.
func checkInvariants(t *testing.T, e *Engine, h *Head, d *decision) {
	t.Helper()
	if int(d.verdict) >= len(verdictNames) || int(d.next) >= len(verdictNames) {
		t.Fatalf("verdict %d, next %d out of range", d.verdict, d.next)
	}
	if (d.verdict == verdictRefuse) != (d.err != nil) {
		t.Fatalf("verdict %v with err %s", d.verdict, errString(d.err))
	}
	if d.authErr && d.verdict != verdictRefuse {
		t.Fatalf("authErr on verdict %v", d.verdict)
	}
	if d.verdict != verdictAwait && d.next != verdictRefuse {
		t.Fatalf("next = %v on verdict %v", d.next, d.verdict)
	}
	if d.verdict == verdictPreflight {
		return // checkCORS
	}
	if d.verdict == verdictRefuse {
		if d.err.Status < 400 || d.err.Status > 599 || d.err.Code == "" {
			t.Fatalf("refused with %s", errString(d.err))
		}
		if d.principal.ID != "" || d.principal.Method != "" {
			t.Fatalf("refused with principal %+v", d.principal)
		}
		return
	}
	if d.rt.bucket == nil {
		t.Fatalf("admitted (%v) without a bucket", d.verdict)
	}
	if d.rt.op == opPostObject {
		checkPostObject(t, h, d) // postobject_internal_test.go
		return
	}
	checkAdmittedRoute(t, e, h, d)
	checkAdmittedVerdict(t, e, h, d)
}

// checkAdmittedRoute checks an admitted request's route (op, key and query spans) and body
// length against its head.
func checkAdmittedRoute(t *testing.T, e *Engine, h *Head, d *decision) {
	t.Helper()
	rt, b := &d.rt, d.rt.bucket
	path, query := h.Path(), h.Query()
	if rt.op == opNone || rt.op >= numOps {
		t.Fatalf("admitted (%v) with op %d", d.verdict, rt.op)
	}
	if rt.keyStart < 2 || rt.keyStart > rt.keyEnd || rt.keyEnd > len(path) || path[rt.keyStart-1] != '/' {
		t.Fatalf("key span [%d:%d] in path %q", rt.keyStart, rt.keyEnd, path)
	}
	if rt.keyStart == rt.keyEnd {
		t.Fatalf("admitted an empty key in %q", path)
	}
	if got := string(path[1 : rt.keyStart-1]); got != b.name {
		t.Fatalf("bucket %q routed from path %q", b.name, path)
	}
	for _, s := range [][2]int{rt.uploadID, rt.maxParts, rt.partMark, rt.encType} {
		if s[0] < 0 || s[0] > s[1] || s[1] > len(query) {
			t.Fatalf("query span %v out of %q", s, query)
		}
	}
	wantLen := max(h.req.ContentLength, 0)
	if h.req.Chunked {
		wantLen = -1 // unknown: the size is x-amz-decoded-content-length (tecoding.go)
		if d.chunks.mode == chunksNone || rt.op != opPutObject && rt.op != opUploadPart {
			t.Fatalf("%v admitted a chunked body that is not aws-chunked", rt.op)
		}
	}
	if d.bodyLen != wantLen || d.size < 0 {
		t.Fatalf("bodyLen, size = %d, %d; Content-Length %d", d.bodyLen, d.size, h.req.ContentLength)
	}
	if !rt.op.hasBody() && d.bodyLen != 0 {
		t.Fatalf("%v with a body of %d", rt.op, d.bodyLen)
	}
	switch rt.op {
	case opPutObject:
		if h.req.ContentLength < 0 && !h.req.Chunked {
			t.Fatalf("PutObject without Content-Length")
		}
		if d.size > e.opts.MaxObjectSize {
			t.Fatalf("PutObject of %d over MaxObjectSize", d.size)
		}
	case opUploadPart:
		if rt.partNum < 1 || rt.partNum > maxParts || !rt.hasID || h.req.ContentLength < 0 && !h.req.Chunked {
			t.Fatalf("UploadPart with part %d, uploadId %v, Content-Length %d", rt.partNum, rt.hasID, h.req.ContentLength)
		}
	case opCompleteMultipartUpload, opAbortMultipartUpload, opListParts:
		if !rt.hasID || rt.uploadID[0] == rt.uploadID[1] {
			t.Fatalf("%v without an uploadId", rt.op)
		}
	}
	if rt.op != opUploadPart && rt.partNum != 0 {
		t.Fatalf("%v with part %d", rt.op, rt.partNum)
	}
}

// checkAdmittedVerdict checks how an admitted request's body moves (inline, streamed,
// auto-chunked, after an Authorizer) and who it was admitted as.
func checkAdmittedVerdict(t *testing.T, e *Engine, h *Head, d *decision) {
	t.Helper()
	rt, b := &d.rt, d.rt.bucket
	if (d.verdict == verdictAwait) != (b.authz != nil) {
		t.Fatalf("verdict %v for a bucket with Authorizer %v", d.verdict, b.authz != nil)
	}
	v := d.verdict
	if v == verdictAwait {
		v = d.next
	}
	switch v {
	case verdictInline:
		if d.bodyLen > int64(e.opts.InlineBodyMax) && rt.op != opCompleteMultipartUpload {
			t.Fatalf("%v of %d inline", rt.op, d.bodyLen)
		}
		if rt.op == opCompleteMultipartUpload && d.bodyLen > maxCompleteBody {
			t.Fatalf("Complete of %d inline", d.bodyLen)
		}
	case verdictStream:
		signed := d.chunks.mode == chunksSigned || d.chunks.mode == chunksSignedTrailer
		if d.bodyLen <= int64(e.opts.InlineBodyMax) && !signed && !h.req.Chunked || rt.op == opCompleteMultipartUpload {
			t.Fatalf("%v of %d streamed", rt.op, d.bodyLen) // signed chunks are streamed at any size
		}
	case verdictAutoChunk:
		if rt.op != opPutObject || !b.autoChunks(d.bodyLen) && !b.autoChunks(d.size) {
			t.Fatalf("%v of %d auto-chunked", rt.op, d.bodyLen)
		}
	default:
		t.Fatalf("await with next %v", d.next)
	}
	if rt.op == opPutObject && d.size > maxSinglePut && v != verdictAutoChunk {
		t.Fatalf("PutObject of %d as %v: above S3's single-PUT limit", d.size, v)
	}
	switch b.auth.(type) {
	case *sigv4Auth:
		if d.principal.ID == "" || d.principal.Method != "sigv4" {
			t.Fatalf("SigV4 bucket admitted principal %+v", d.principal)
		}
	case noneAuth:
		if d.principal.ID != "" || d.principal.Method != "none" {
			t.Fatalf("auth none admitted principal %+v", d.principal)
		}
	}
}

// checkAdmitted builds what an admitted request goes on to: the Authorizer's input and the
// upstream head, which must parse and carry the client's Content-Length.
func checkAdmitted(t *testing.T, e *Engine, h *Head, d *decision) {
	t.Helper()
	_ = newAuthzInput(h, d, []byte("0123456789ABCDEF"), "192.0.2.1:1")
	st := &connState{req: h.req, rt: d.rt, bodyLen: d.bodyLen, principal: d.principal, keepAlive: h.req.KeepAlive, chunks: d.chunks}
	e.newRequestID(&st.reqID)
	j := e.newJob(st, h.Path(), sideLoop)
	defer j.release()
	if err := e.buildUpstreamHead(j, st, j.bucket, h.buf); err != nil {
		return // answered 400 InvalidURI
	}
	var p httpparse.Parser
	up := new(httpparse.Request)
	if err := p.Parse(j.out, httpparse.Limits{MaxHeadBytes: 1 << 20, MaxTargetBytes: 1 << 20}, up); err != nil {
		t.Fatalf("upstream head %q: %v", j.out, err)
	}
	if up.HeadLen != len(j.out) || up.HeadLen != j.headLen {
		t.Fatalf("upstream head %q: HeadLen %d, headLen %d, len %d", j.out, up.HeadLen, j.headLen, len(j.out))
	}
	switch cl := h.req.ContentLength; {
	case d.verdict == verdictAutoChunk || d.next == verdictAutoChunk:
		// Auto-chunked: each part's head carries its own length (autochunk.go).
	case d.chunks.mode != chunksNone:
		// Decoded by the proxy: the length it forwards (plain, or re-framed with the checksum).
		if up.ContentLength != d.chunks.upstreamLength() || up.Chunked {
			t.Fatalf("upstream Content-Length %d, chunked %v; want %d", up.ContentLength, up.Chunked, d.chunks.upstreamLength())
		}
	case cl >= 0 && up.ContentLength != cl:
		t.Fatalf("upstream Content-Length %d; client sent %d", up.ContentLength, cl)
	case cl < 0 && up.ContentLength > 0:
		t.Fatalf("upstream Content-Length %d; client sent none", up.ContentLength)
	}
	if string(up.Method.Bytes(j.out)) != string(h.Method()) {
		t.Fatalf("upstream method %q; client sent %q", up.Method.Bytes(j.out), h.Method())
	}
	if n := up.HeaderCount(j.out, "authorization"); n != 1 {
		t.Fatalf("upstream head has %d Authorization headers: %q", n, j.out)
	}
}

// TestAdmitUploadIDBinding: a request naming an upload must bring the token its Create returned
// to the same principal for the same bucket and key; anything else is 404 NoSuchUpload, decided
// in admit, so nothing goes upstream.
func TestAdmitUploadIDBinding(t *testing.T) {
	e := newAdmitEngine(t)
	const path = "/sig/dir/a%20b.bin"
	good := testToken(t, admitAK, path, "2~upstream.ID_1")
	altered := []byte(good)
	altered[len(altered)/2] ^= 'A' ^ 'B'
	if altered[len(altered)/2] == good[len(good)/2] {
		t.Fatal("no alteration")
	}
	type tc struct {
		name string
		r    admitReq
		err  *s3Error
	}
	var tests []tc
	for _, op := range []struct{ method, query, cl string }{
		{"PUT", "partNumber=1&uploadId=", "1"},
		{"POST", "uploadId=", "10"},
		{"DELETE", "uploadId=", ""},
		{"GET", "uploadId=", ""},
	} {
		req := func(path, token, ak, sk string) admitReq {
			return admitReq{method: op.method, path: path, query: op.query + token, cl: op.cl, ak: ak, sk: sk, rawID: true}
		}
		tests = append(tests,
			tc{op.method + " own token", req(path, good, "", ""), nil},
			tc{op.method + " own token, escaped", req(path, strings.ReplaceAll(good, "A", "%41"), "", ""), nil},
			tc{op.method + " other principal", req(path, good, admitAK2, admitSK2), errNoSuchUpload},
			tc{op.method + " other key", req("/sig/dir/a%20c.bin", good, "", ""), errNoSuchUpload},
			tc{op.method + " other bucket", req("/authz/dir/a%20b.bin", good, "", ""), errNoSuchUpload},
			tc{op.method + " altered", req(path, string(altered), "", ""), errNoSuchUpload},
			tc{op.method + " truncated", req(path, good[:len(good)-1], "", ""), errNoSuchUpload},
			tc{op.method + " upstream id itself", req(path, "2~upstream.ID_1", "", ""), errNoSuchUpload},
			tc{op.method + " garbage, escaped", req(path, "%41%42C", "", ""), errNoSuchUpload},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := tt.r.wire(t)
			h := Head{req: parseHead(t, e, wire), buf: wire}
			d := e.admit(&h)
			if d.err != tt.err {
				t.Fatalf("admit = %v, %s; want %s", d.verdict, errString(d.err), errString(tt.err))
			}
			if tt.err != nil {
				if d.authErr {
					t.Error("counted as an authentication failure")
				}
				return
			}
			st := &connState{req: h.req, rt: d.rt, principal: d.principal}
			j := new(job)
			if err := e.buildUpstreamHead(j, st, d.rt.bucket, wire); err != nil {
				t.Fatal(err)
			}
			if q := string(j.query); !strings.Contains(q, "uploadId=2~upstream.ID_1") || strings.Contains(q, good) {
				t.Errorf("upstream query %q; want the upstream id, not the token", q)
			}
		})
	}
}
