package engine

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mizuchi/uploadr/cors"
	"github.com/mizuchi/uploadr/policy"
	"github.com/mizuchi/uploadr/transfer"
	"github.com/mizuchi/uploadr/uploadid"
)

// Options configure an Engine. Zero values take the documented defaults (see withDefaults).
type Options struct {
	// Address is the listen address, "host:port".
	Address string
	// NoPlainListener runs no event loops and listens on nothing: Run only keeps the engine's
	// housekeeping going (timeouts, idle upstream connections) for connections handed to Serve
	// (the https listener). Address is ignored.
	NoPlainListener bool
	// ReusePort sets SO_REUSEPORT on the listener (one per event loop), so that a new process can
	// join the address of a running one for a zero-downtime upgrade; Shutdown then closes the
	// listeners at once, so that the kernel hands new connections to the other process only.
	// Without it a second listener on Address fails with EADDRINUSE.
	ReusePort bool
	// EventLoops is the number of gnet event loops; 0 = GOMAXPROCS: one per CPU the process may use
	// (the CPU count, or less: a container's CPU limit, the GOMAXPROCS variable).
	EventLoops int
	// MaxHeadBytes bounds a request head (request line + headers); larger heads get 431. 0 = 64 KiB.
	MaxHeadBytes int
	// MaxURIBytes bounds the request-target; longer gets 414. 0 = 16 KiB.
	MaxURIBytes int
	// HeadTimeout is how long a client may take to send a complete head once it started; 0 = 30 s.
	HeadTimeout time.Duration
	// IdleTimeout closes keep-alive connections with no request in progress; 0 = 60 s.
	IdleTimeout time.Duration
	// BodyStallTimeout aborts a body transfer that moves no byte for this long; 0 = 60 s.
	BodyStallTimeout time.Duration
	// ResponseTimeout bounds the wait for the upstream's response once the body was sent; 0 = 5 min.
	ResponseTimeout time.Duration
	// AuthorizeTimeout bounds a bucket Authorizer's decision; a request whose decision does not
	// come in time gets 503 SlowDown. 0 = 5 s.
	AuthorizeTimeout time.Duration
	// NoLoopUpstream sends small (inline) requests from a goroutine with a blocking upstream
	// connection instead of on connections owned by the event loop (a fallback and test switch).
	NoLoopUpstream bool
	// InlineBodyMax is the largest body handled inside the event loop, never detached: up to
	// 64 KiB buffered whole, above that streamed to a loop-owned upstream connection as it arrives
	// (inline_stream.go; an https upstream or NoLoopUpstream detaches those). Larger bodies are
	// detached and spliced. It bounds what a connection holds in user space when the upstream is
	// slow (gnet has no backpressure). 0 = 1 MiB.
	InlineBodyMax int
	// MaxObjectSize is the largest object a PutObject may create, checked before the first body byte
	// is read; 0 = 5 TiB (S3's limit). A single upstream PUT is limited to 5 GiB by S3: larger
	// bodies are accepted only where auto-chunking (Bucket.Upload) cuts them into parts.
	MaxObjectSize int64
	// CompleteBodyBudget bounds the bytes of CompleteMultipartUpload documents (each up to 4 MiB,
	// buffered whole before they are checked and sent) held at once by the whole engine. A Complete
	// whose declared Content-Length does not fit in what is left gets 503 SlowDown before its body
	// is read. Each document in flight costs about three times its size in buffers (the
	// event loop's, the checked copy, the upstream request). 0 = 32 MiB; at least 4 MiB.
	CompleteBodyBudget int64
	// UploadIDSecrets key the upload ids CreateMultipartUpload returns to clients (uploadid.go):
	// each is a token binding the upstream's upload id to the principal, bucket and key, and
	// UploadPart, Complete, Abort and ListParts with a token made for anything else get 404
	// NoSuchUpload before anything goes upstream. The first secret seals, every one opens (key
	// rotation: put the new secret first, keep the previous one until its uploads are done). Each
	// is at least 16 bytes (32 random bytes recommended). Empty: each bucket uses a key derived
	// from its upstream secret key (HKDF-SHA256), so nodes sharing a configuration agree.
	UploadIDSecrets [][]byte
	// Transfer configures the body mover (pipe size, copy path, ...).
	Transfer transfer.Options
	// Upstream configures the upstream connection pools.
	Upstream UpstreamOptions
	// Buckets are the buckets clients may upload to. One entry may be named "*" (WildcardBucket):
	// it serves every bucket name no other entry has, as the same-named upstream bucket.
	Buckets []Bucket
	// VirtualHostSuffixes enable virtual-hosted-style requests: a request whose Host is
	// <bucket>.<suffix>[:port] for one of these suffixes (compared case-insensitively; the
	// longest matching suffix wins) addresses bucket <bucket>, and its whole path after the
	// leading '/' is the key. A Host that matches none, or is exactly a suffix, is path style.
	// Each is a DNS name such as "s3.example.com": no scheme, port or leading/trailing dot.
	VirtualHostSuffixes []string
	// Logger receives anomalies; nil = slog.Default().
	Logger *slog.Logger
	// AccessLog, when set, receives one line per request (see Engine.accessLog for the fields).
	AccessLog *slog.Logger
	// Limits bound client connections and request rates (limits.go); zero = unlimited.
	Limits Limits
	// Now is the clock (tests); nil = time.Now.
	Now func() time.Time
	// ProxyProtocol requires a PROXY protocol header from trusted balancers on the event loops'
	// listener; the https listener gets it through ProxyListener (proxyproto.go).
	ProxyProtocol ProxyProtocol
	// Tracer records requests as spans (trace.go); nil = tracing off, at the cost of a nil check.
	Tracer Tracer
	// TraceKeys adds the decoded object key to request spans (aws.s3.key).
	TraceKeys bool
}

// UpstreamOptions configure the per-endpoint upstream connection pools.
type UpstreamOptions struct {
	DialTimeout time.Duration // 0 = 5 s
	MaxIdle     int           // idle keep-alive connections kept per endpoint; 0 = 64
	IdleTimeout time.Duration // an idle upstream connection older than this is closed; 0 = 30 s
	MaxConns    int           // open connections per endpoint (busy + idle); 0 = unlimited. A request
	// that finds all in use waits up to DialTimeout, then gets 503 SlowDown.

	// AbortRetryFor bounds how long a failed AbortMultipartUpload of an auto-chunked upload is
	// retried in the background (see abort.go); 0 = 10 min. Past it the upload is left to the
	// upstream bucket's AbortIncompleteMultipartUpload lifecycle rule.
	AbortRetryFor time.Duration
	// AbortRetryBackoff is the first delay between abort attempts, doubled after each up to 30 s
	// (each jittered to [d/2, d]); 0 = 1 s.
	AbortRetryBackoff time.Duration
}

// WildcardBucket is the Bucket.Name of the entry that serves any bucket name no other entry has:
// a request for bucket X goes to upstream bucket X on that entry's endpoint, with its upstream
// credentials and its client authentication. Its Upstream.Bucket is empty or "*". Names it
// serves must be valid S3 bucket names (else 400 InvalidBucketName).
const WildcardBucket = "*"

// Bucket is one client-facing bucket and where its objects go.
type Bucket struct {
	// Name is the bucket name clients use (first path segment, or the Host's first labels in
	// virtual-hosted style); WildcardBucket for the entry serving any other name.
	Name string
	// Upstream is where objects are stored.
	Upstream Upstream
	// AuthNone disables client authentication (trusted networks and benchmarks only).
	AuthNone bool
	// Credentials maps client access keys to their secrets (SigV4).
	Credentials map[string]string
	// Authenticator, when set, authenticates the bucket's clients instead of AuthNone. With
	// Credentials set too, the bucket accepts either: requests for which the Authenticator
	// returns ErrNoToken are authenticated by SigV4 against Credentials (TokenAuthenticator).
	Authenticator Authenticator
	// Authorizer, when set, decides on every authenticated request before its body moves (see
	// Authorizer); nil allows every authenticated request.
	Authorizer Authorizer
	// AuthzHeaders names request headers (lower case) whose first value the Authorizer sees in
	// AuthzInput.Headers; a header the request lacks is absent from the map.
	AuthzHeaders []string
	// SigningRegions are the regions a client's signature may name in its credential scope
	// (<key>/<date>/<region>/s3/aws4_request); any other is refused with 400
	// AuthorizationHeaderMalformed, as S3 refuses a signature for another region. Each is 1 to 64
	// letters, digits, '-', '_' or '.'; compared exactly. Empty = the upstream's region.
	SigningRegions []string
	// Upload configures auto-chunking of large PutObjects.
	Upload UploadOptions
	// Policy, when set, holds the upload rules checked on every authenticated request's head,
	// before its body is read (policy.go); nil = none.
	Policy *policy.Policy
	// CORS, when set, holds the bucket's CORS rules (cors.go): preflights are answered from them
	// and answers to requests with an Origin carry their Access-Control-* headers; nil = none (a
	// preflight gets 403, as S3 answers for a bucket without a CORS configuration).
	CORS *cors.Config
}

// UploadOptions configure how a large PutObject is cut into a multipart upload upstream.
type UploadOptions struct {
	// MultipartThreshold: a PutObject body larger than this becomes a multipart upload upstream;
	// 0 disables auto-chunking (bodies up to 5 GiB go up as one PUT).
	MultipartThreshold int64
	// PartSize is the part size (>= 5 MiB); grown when an object would need more than 10,000 parts.
	PartSize int64
	// ConcurrentParts bounds the parts in flight upstream for one object; 0 = 4.
	ConcurrentParts int
}

// Upstream is an S3 endpoint, bucket and the credentials the proxy signs with.
type Upstream struct {
	Endpoint  string // "http://host:port" or "https://host:port"
	Bucket    string
	Region    string // 0 = "us-east-1"
	AccessKey string
	SecretKey string
	// RootCAs verifies an https endpoint's certificate; nil = the system roots.
	RootCAs *x509.CertPool
}

func (o *Options) withDefaults() {
	if o.Address == "" {
		o.Address = "127.0.0.1:8080"
	}
	if o.EventLoops <= 0 {
		o.EventLoops = runtime.GOMAXPROCS(0) // the CPUs the process may use: a container's limit, GOMAXPROCS
	}
	if o.MaxHeadBytes <= 0 {
		o.MaxHeadBytes = 64 << 10
	}
	if o.MaxURIBytes <= 0 {
		o.MaxURIBytes = 16 << 10
	}
	if o.HeadTimeout <= 0 {
		o.HeadTimeout = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.BodyStallTimeout <= 0 {
		o.BodyStallTimeout = 60 * time.Second
	}
	if o.AuthorizeTimeout <= 0 {
		o.AuthorizeTimeout = 5 * time.Second
	}
	if o.ResponseTimeout <= 0 {
		o.ResponseTimeout = 5 * time.Minute
	}
	if o.InlineBodyMax <= 0 {
		o.InlineBodyMax = 1 << 20
	}
	if o.MaxObjectSize <= 0 {
		o.MaxObjectSize = 5 << 40
	}
	if o.CompleteBodyBudget <= 0 {
		o.CompleteBodyBudget = DefaultCompleteBodyBudget
	}
	if o.Upstream.DialTimeout <= 0 {
		o.Upstream.DialTimeout = 5 * time.Second
	}
	if o.Upstream.MaxIdle <= 0 {
		o.Upstream.MaxIdle = 64
	}
	if o.Upstream.IdleTimeout <= 0 {
		o.Upstream.IdleTimeout = 30 * time.Second
	}
	if o.Upstream.AbortRetryFor <= 0 {
		o.Upstream.AbortRetryFor = 10 * time.Minute
	}
	if o.Upstream.AbortRetryBackoff <= 0 {
		o.Upstream.AbortRetryBackoff = time.Second
	}
	if o.Transfer.StallTimeout <= 0 {
		o.Transfer.StallTimeout = o.BodyStallTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	for i := range o.Buckets {
		if o.Buckets[i].Upstream.Region == "" {
			o.Buckets[i].Upstream.Region = "us-east-1"
		}
		if o.Buckets[i].Upload.ConcurrentParts == 0 {
			o.Buckets[i].Upload.ConcurrentParts = 4
		}
		if len(o.Buckets[i].SigningRegions) == 0 {
			o.Buckets[i].SigningRegions = []string{o.Buckets[i].Upstream.Region}
		}
	}
}

// Validate reports every problem in o (after defaults) joined into one error.
func (o *Options) Validate() error {
	var errs []error
	if err := o.ProxyProtocol.validate(); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	for i, b := range o.Buckets {
		if b.Name == "" {
			errs = append(errs, fmt.Errorf("bucket %d: name is empty", i))
		}
		if seen[b.Name] {
			errs = append(errs, fmt.Errorf("bucket %q: defined twice", b.Name))
		}
		seen[b.Name] = true
		if strings.ContainsAny(b.Name, "/?# ") {
			errs = append(errs, fmt.Errorf("bucket %q: name contains '/', '?', '#' or a space", b.Name))
		}
		if _, err := parseEndpoint(b.Upstream.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("bucket %q: %w", b.Name, err))
		}
		switch {
		case b.Name == WildcardBucket:
			if b.Upstream.Bucket != "" && b.Upstream.Bucket != WildcardBucket {
				errs = append(errs, fmt.Errorf("bucket %q: the any-bucket entry forwards to the same-named upstream bucket: its upstream bucket must be empty or %q, not %q", b.Name, WildcardBucket, b.Upstream.Bucket))
			}
		case b.Upstream.Bucket == "":
			errs = append(errs, fmt.Errorf("bucket %q: upstream bucket is empty", b.Name))
		case b.Upstream.Bucket == WildcardBucket:
			errs = append(errs, fmt.Errorf("bucket %q: upstream bucket %q is only for the bucket named %q", b.Name, WildcardBucket, WildcardBucket))
		}
		if b.Upstream.AccessKey == "" || b.Upstream.SecretKey == "" {
			errs = append(errs, fmt.Errorf("bucket %q: upstream access key and secret key are required", b.Name))
		}
		if u := b.Upload; u.MultipartThreshold > 0 {
			if u.PartSize < minPartSize || u.PartSize > maxSinglePut {
				errs = append(errs, fmt.Errorf("bucket %q: part size %d must be between 5 MiB and 5 GiB", b.Name, u.PartSize))
			}
			if u.MultipartThreshold > maxSinglePut {
				errs = append(errs, fmt.Errorf("bucket %q: multipart threshold %d is above S3's 5 GiB single-PUT limit", b.Name, u.MultipartThreshold))
			}
			if u.ConcurrentParts < 0 || u.ConcurrentParts > 64 {
				errs = append(errs, fmt.Errorf("bucket %q: concurrent parts %d: want 1..64", b.Name, u.ConcurrentParts))
			}
		}
		if !b.AuthNone && b.Authenticator == nil && len(b.Credentials) == 0 {
			errs = append(errs, fmt.Errorf("bucket %q: no client credentials (set auth.sigv4.credentials, or auth: none for trusted networks)", b.Name))
		}
		for ak, sk := range b.Credentials {
			if ak == "" || sk == "" {
				errs = append(errs, fmt.Errorf("bucket %q: a client credential has an empty access key or secret", b.Name))
			}
		}
		for _, r := range b.SigningRegions {
			if !isRegion(r) {
				errs = append(errs, fmt.Errorf("bucket %q: signing region %q (auth.sigv4.regions): want 1 to 64 letters, digits, '-', '_' or '.'", b.Name, r))
			}
		}
	}
	if len(o.Buckets) == 0 {
		errs = append(errs, errors.New("no buckets configured"))
	}
	for _, v := range o.VirtualHostSuffixes {
		if !isHostSuffix(v) {
			errs = append(errs, fmt.Errorf("virtual host suffix %q: want a DNS name such as s3.example.com (letters, digits, '-', '.'; no scheme, port or leading/trailing dot)", v))
		}
	}
	if len(o.UploadIDSecrets) > 0 {
		if _, err := uploadid.New(o.UploadIDSecrets...); err != nil {
			errs = append(errs, fmt.Errorf("upload id secrets: each must be at least %d bytes: %w", uploadid.MinKeyLen, err))
		}
	}
	if o.CompleteBodyBudget != 0 && o.CompleteBodyBudget < maxCompleteBody {
		errs = append(errs, fmt.Errorf("complete body budget %d is below one largest CompleteMultipartUpload document (%d)", o.CompleteBodyBudget, maxCompleteBody))
	}
	return errors.Join(errs...)
}

// isHostSuffix reports whether s can be a virtual host suffix: dot-separated DNS labels of
// letters, digits and '-' (RFC 1123 2.1), at most 253 bytes, no empty label.
func isHostSuffix(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// hostSuffixes returns the suffixes lowercased, duplicates dropped, longest first (the longest
// match wins in virtualHostBucket).
func hostSuffixes(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.ToLower(s)
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// isRegion reports whether r can be a credential scope's region: 1 to 64 letters, digits, '-',
// '_' or '.' (AWS's are lowercase letters, digits and '-'; S3-compatible servers use names like
// "auto" or "garage").
func isRegion[T string | []byte](r T) bool {
	if len(r) == 0 || len(r) > 64 {
		return false
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// DefaultCompleteBodyBudget is Options.CompleteBodyBudget's default: 8 largest Complete documents.
const DefaultCompleteBodyBudget = 32 << 20

// S3's limits.
const (
	minPartSize  = 5 << 20
	maxSinglePut = 5 << 30
	maxParts     = 10000
)

// endpoint is a parsed upstream endpoint.
type endpoint struct {
	tls  bool
	addr string // host:port to dial
	host string // Host header value
}

func parseEndpoint(s string) (endpoint, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return endpoint{}, fmt.Errorf("upstream endpoint %q: want http://host:port or https://host:port", s)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return endpoint{}, fmt.Errorf("upstream endpoint %q: must not have a path or query", s)
	}
	ep := endpoint{host: u.Host}
	switch u.Scheme {
	case "http":
		ep.addr = u.Host
		if u.Port() == "" {
			ep.addr += ":80"
		}
	case "https":
		ep.tls = true
		ep.addr = u.Host
		if u.Port() == "" {
			ep.addr += ":443"
		}
	default:
		return endpoint{}, fmt.Errorf("upstream endpoint %q: scheme must be http or https", s)
	}
	return ep, nil
}
