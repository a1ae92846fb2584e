package engine

import (
	"sync"
	"sync/atomic"
)

// Bucket lookup: named buckets, the any-bucket entry ("*") and virtual-hosted-style hosts.
//
// A request names its bucket in the path (path style, /<bucket>/<key>) or in the Host header
// (virtual-hosted style, <bucket>.<suffix>[:port], for a configured Options.VirtualHostSuffixes
// suffix). Named buckets are looked up first; a name no entry has goes to the "*" entry, when
// there is one, as the same-named upstream bucket, and is refused otherwise (403 AccessDenied).
//
// The "*" entry's per-name state (a bucketState whose name and upstream bucket are the request's
// bucket) is cached per bucket table, and only for names a request was authenticated for: an
// unauthenticated client sending hostile names cannot fill it. The cache holds at most
// wildCacheMax names; past that a per-name state is made per request (one small allocation), so
// memory stays bounded whatever the names. A reload (UpdateBuckets) starts a new table and so a
// new cache.

// wildCacheMax bounds the names the "*" entry caches per bucket table.
const wildCacheMax = 1024

// wildLabel is the metrics label of every request routed by the "*" entry: a label per bucket
// name would let clients create time series at will.
const wildLabel = "*"

// wildCache is the "*" entry's per-name states: an immutable map replaced on insert (copy on
// write: reads take no lock and do not allocate; inserts are rare and bounded).
type wildCache struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]*bucketState]
}

func (c *wildCache) get(name []byte) *bucketState {
	if m := c.m.Load(); m != nil {
		return (*m)[string(name)]
	}
	return nil
}

// promote caches b (a state made for one request by forName) once a request for it was
// authenticated. It is a no-op when the name is cached already or the cache is full.
func (c *wildCache) promote(b *bucketState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	n := 0
	if old != nil {
		if _, ok := (*old)[b.name]; ok {
			return
		}
		n = len(*old)
	}
	if n >= wildCacheMax {
		return
	}
	m := make(map[string]*bucketState, n+1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	cached := *b
	cached.pending = nil
	m[b.name] = &cached
	c.m.Store(&m)
}

// forName returns the "*" entry's state for bucket name: the cached one, else a new one that
// admit promotes into the cache once the request authenticated (bucketState.pending).
func (t *bucketTable) forName(name []byte) *bucketState {
	if b := t.wildCache.get(name); b != nil {
		return b
	}
	b := *t.wild
	b.name = string(name)
	b.up.Bucket = b.name
	b.pending = &t.wildCache
	return &b
}

// findBucket returns the bucket a request names: a named entry, else the "*" entry's state for
// that name. It refuses a name no entry serves (403 AccessDenied) and, where the "*" entry would
// take it, a name that is not a valid S3 bucket name (400 InvalidBucketName). name is borrowed.
func (e *Engine) findBucket(name []byte) (*bucketState, *s3Error) {
	t := e.table.Load()
	for i := range t.buckets {
		if string(name) == t.buckets[i].name {
			return &t.buckets[i], nil
		}
	}
	if t.wild == nil {
		return nil, errUnknownBucket
	}
	if !validBucketName(name) {
		return nil, errInvalidBucketName
	}
	return t.forName(name), nil
}

// lookupBucket is findBucket without the reason.
func (e *Engine) lookupBucket(name []byte) *bucketState {
	b, _ := e.findBucket(name)
	return b
}

// validBucketName reports whether name follows S3's rules for general purpose buckets ("Bucket
// naming rules"): 3 to 63 characters; lowercase letters, digits, dots and hyphens; beginning and
// ending with a letter or digit; no two adjacent periods; not formatted as an IPv4 address.
func validBucketName[T string | []byte](name T) bool {
	if len(name) < 3 || len(name) > 63 {
		return false
	}
	digitsAndDots, dots := true, 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z':
			digitsAndDots = false
		case '0' <= c && c <= '9':
		case c == '.':
			if i == 0 || i == len(name)-1 || name[i-1] == '.' {
				return false
			}
			dots++
		case c == '-':
			digitsAndDots = false
			if i == 0 || i == len(name)-1 {
				return false
			}
		default:
			return false
		}
	}
	return !(digitsAndDots && dots == 3)
}

// virtualHostBucket returns the bucket label of a virtual-hosted-style Host header value
// (<bucket>.<suffix>[:port], suffix one of suffixes, matched case-insensitively; the longest
// matching suffix wins: suffixes is sorted longest first), lowercased into dst. ok is false for a
// Host that is path style: no suffix matches, or it is exactly a suffix. A bucket label longer
// than dst cannot be a bucket name: it is returned as ok with an invalid name (empty), which the
// caller refuses. host and dst are borrowed; it does not allocate.
func virtualHostBucket(host []byte, suffixes []string, dst *[63]byte) (name []byte, ok bool) {
	if len(suffixes) == 0 || len(host) == 0 || host[0] == '[' {
		return nil, false // no suffix configured, no Host, or an IPv6 literal
	}
	// RFC 9110 7.2: Host = uri-host [ ":" port ]; a port is digits only.
	for i := len(host) - 1; i >= 0; i-- {
		if c := host[i]; c == ':' {
			host = host[:i]
			break
		} else if c < '0' || c > '9' {
			break
		}
	}
	if n := len(host); n > 0 && host[n-1] == '.' {
		host = host[:n-1] // an absolute name ("bucket.s3.example.com.")
	}
	for _, s := range suffixes {
		n := len(host) - len(s)
		if n < 2 || host[n-1] != '.' || !equalFoldASCII(host[n:], s) {
			continue
		}
		label := host[:n-1]
		if len(label) > len(dst) {
			return dst[:0], true
		}
		for i, c := range label {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst[i] = c
		}
		return dst[:len(label)], true
	}
	return nil, false
}
