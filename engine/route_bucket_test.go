package engine

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

func TestValidBucketName(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"abc", true},
		{"my.bucket", true},
		{"my-bucket-2", true},
		{"a-b.c-d", true},
		{"123", true},
		{"1.2.3", true},
		{"0123456789012345678901234567890123456789012345678901234567890ab", true}, // 63
		{"ab", false},
		{"", false},
		{"0123456789012345678901234567890123456789012345678901234567890abc", false}, // 64
		{"Abc", false},
		{"a_b", false},
		{"-ab", false},
		{"ab-", false},
		{".ab", false},
		{"ab.", false},
		{"a..b", false},
		{"192.168.5.4", false},
		{"a b", false},
		{"a/b", false},
		{"a%62c", false},
		{"*", false},
	} {
		if got := validBucketName(tt.name); got != tt.want {
			t.Errorf("validBucketName(%q) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestVirtualHostBucket(t *testing.T) {
	suffixes := hostSuffixes([]string{"S3.Example.Test", "eu.s3.example.test", "s3.example.test"})
	if fmt.Sprint(suffixes) != "[eu.s3.example.test s3.example.test]" {
		t.Fatalf("hostSuffixes = %q; want longest first, lowercased, no duplicate", suffixes)
	}
	long := "0123456789012345678901234567890123456789012345678901234567890abc" // 64
	for _, tt := range []struct {
		host   string
		name   string
		vhost  bool
		suffix []string // nil = suffixes
	}{
		{"photos.s3.example.test", "photos", true, nil},
		{"photos.s3.example.test:8080", "photos", true, nil},
		{"PHOTOS.S3.Example.TEST:1", "photos", true, nil},
		{"my.bucket.s3.example.test", "my.bucket", true, nil},
		{"photos.eu.s3.example.test", "photos", true, nil}, // the longest suffix wins
		{"eu.s3.example.test", "eu", true, nil},            // bucket "eu" on the shorter suffix
		{"photos.s3.example.test.", "photos", true, nil},
		{long + ".s3.example.test", "", true, nil}, // too long for a bucket: refused by the caller
		{"s3.example.test", "", false, nil},        // exactly a suffix: path style
		{"s3.example.test:8080", "", false, nil},
		{".s3.example.test", "", false, nil},
		{"photos.xs3.example.test", "", false, nil},
		{"photos.s3.example.test.evil", "", false, nil},
		{"127.0.0.1:8080", "", false, nil},
		{"[::1]:8080", "", false, nil},
		{"", "", false, nil},
		{"photos.s3.example.test", "", false, []string{}}, // no suffix configured
	} {
		sfx := suffixes
		if tt.suffix != nil {
			sfx = tt.suffix
		}
		var dst [63]byte
		name, ok := virtualHostBucket([]byte(tt.host), sfx, &dst)
		if ok != tt.vhost || string(name) != tt.name {
			t.Errorf("virtualHostBucket(%q) = %q, %v; want %q, %v", tt.host, name, ok, tt.name, tt.vhost)
		}
	}
}

// routeEngine has named buckets, a "*" entry and virtual host suffixes.
func routeEngine(tb testing.TB, wild bool) *Engine {
	tb.Helper()
	up := Upstream{Endpoint: "http://127.0.0.1:9", Bucket: "up-named", AccessKey: "UPAK", SecretKey: "up-secret"}
	bs := []Bucket{
		{Name: "named", Upstream: up, AuthNone: true},
		{Name: "my.bucket", Upstream: up, AuthNone: true},
	}
	if wild {
		wup := up
		wup.Bucket = ""
		wup.Endpoint = "http://127.0.0.1:10"
		bs = append(bs, Bucket{Name: WildcardBucket, Upstream: wup, Credentials: map[string]string{"AK": "SK"}})
	}
	e, err := New(Options{Address: "127.0.0.1:0", EventLoops: 1, Logger: slog.New(slog.DiscardHandler),
		Buckets: bs, VirtualHostSuffixes: []string{"s3.example.test", "eu.s3.example.test"}})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func TestRouteBucket(t *testing.T) {
	type want struct {
		bucket, upBucket, key string
		err                   *s3Error
	}
	tests := []struct {
		host, path string
		wild       want // with a "*" entry
		none       want // without
	}{
		// Path style: any Host that is not <bucket>.<suffix>.
		{"127.0.0.1:8080", "/named/a/b", want{"named", "up-named", "a/b", nil}, want{"named", "up-named", "a/b", nil}},
		{"s3.example.test", "/named/k", want{"named", "up-named", "k", nil}, want{"named", "up-named", "k", nil}},
		{"s3.example.test:9000", "/other/k", want{"other", "other", "k", nil}, want{err: errUnknownBucket}},
		{"127.0.0.1", "/Bad_Name/k", want{err: errInvalidBucketName}, want{err: errUnknownBucket}},
		{"127.0.0.1", "/ab/k", want{err: errInvalidBucketName}, want{err: errUnknownBucket}},
		{"127.0.0.1", "/other/", want{"other", "other", "", errMethodNotAllowed}, want{err: errUnknownBucket}},
		{"127.0.0.1", "/", want{err: errMethodNotAllowed}, want{err: errMethodNotAllowed}},
		// Virtual-hosted style: the key is the whole path.
		{"named.s3.example.test:8080", "/a/b", want{"named", "up-named", "a/b", nil}, want{"named", "up-named", "a/b", nil}},
		{"NAMED.S3.EXAMPLE.TEST", "/k", want{"named", "up-named", "k", nil}, want{"named", "up-named", "k", nil}},
		{"my.bucket.s3.example.test", "/k", want{"my.bucket", "up-named", "k", nil}, want{"my.bucket", "up-named", "k", nil}},
		{"my.bucket.eu.s3.example.test", "/k", want{"my.bucket", "up-named", "k", nil}, want{"my.bucket", "up-named", "k", nil}},
		{"named.s3.example.test", "/named/k", want{"named", "up-named", "named/k", nil}, want{"named", "up-named", "named/k", nil}},
		{"other.bucket.s3.example.test", "/k", want{"other.bucket", "other.bucket", "k", nil}, want{err: errUnknownBucket}},
		{"named.s3.example.test", "/", want{"named", "up-named", "", errMethodNotAllowed}, want{"named", "up-named", "", errMethodNotAllowed}},
		{"x_y.s3.example.test", "/k", want{err: errInvalidBucketName}, want{err: errUnknownBucket}},
		{"a..b.s3.example.test", "/k", want{err: errInvalidBucketName}, want{err: errUnknownBucket}},
	}
	for _, wild := range []bool{true, false} {
		e := routeEngine(t, wild)
		for _, tt := range tests {
			w := tt.none
			if wild {
				w = tt.wild
			}
			b, keyStart, s3err := e.routeBucket([]byte(tt.host), []byte(tt.path))
			name, upName, key := "", "", ""
			if b != nil {
				name, upName = b.name, b.up.Bucket
			}
			if s3err == nil {
				key = tt.path[keyStart:]
			}
			if s3err != w.err || name != w.bucket || upName != w.upBucket || key != w.key {
				t.Errorf("wild=%v Host %q %s: got bucket %q (upstream %q), key %q, %v; want %q (%q), %q, %v",
					wild, tt.host, tt.path, name, upName, key, s3err, w.bucket, w.upBucket, w.key, w.err)
			}
		}
	}
}

// The "*" entry's state carries the entry's endpoint, credentials and authentication, the
// request's bucket name as the upstream bucket, and the "*" metrics label; it is cached only once
// promoted (after authentication), at most wildCacheMax names.
func TestWildcardCache(t *testing.T) {
	e := routeEngine(t, true)
	tbl := e.table.Load()
	b := e.lookupBucket([]byte("photos"))
	if b == nil || b.pending == nil || b.label != wildLabel || b.up.Bucket != "photos" || b.pool != tbl.wild.pool ||
		b.auth != tbl.wild.auth || b.cred != tbl.wild.cred {
		t.Fatalf("state for photos = %+v; want the * entry's, upstream bucket photos, pending, label *", b)
	}
	if e.lookupBucket([]byte("photos")) == b {
		t.Fatal("an unauthenticated name was cached")
	}
	b.pending.promote(b)
	c := e.lookupBucket([]byte("photos"))
	if c == nil || c.pending != nil || c.name != "photos" || c.up.Bucket != "photos" {
		t.Fatalf("cached state = %+v", c)
	}
	if e.lookupBucket([]byte("photos")) != c {
		t.Fatal("the cached state is not reused")
	}
	b.pending.promote(b) // again: no-op
	for i := 0; i < wildCacheMax+10; i++ {
		s := e.lookupBucket(fmt.Appendf(nil, "bucket-%d", i))
		s.pending.promote(s)
	}
	if n := len(*tbl.wildCache.m.Load()); n != wildCacheMax {
		t.Fatalf("cache holds %d names; want the bound %d", n, wildCacheMax)
	}
	if s := e.lookupBucket([]byte("bucket-2000")); s == nil || s.pending == nil || s.up.Bucket != "bucket-2000" {
		t.Fatalf("past the bound: %+v; want a per-request state", s)
	}
	// A reload starts a new table: nothing cached, named entries still first.
	if err := e.UpdateBuckets(e.opts.Buckets); err != nil {
		t.Fatal(err)
	}
	if s := e.lookupBucket([]byte("photos")); s.pending == nil {
		t.Fatal("the cache survived a reload")
	}
}

func TestValidateWildcardAndSuffixes(t *testing.T) {
	up := Upstream{Endpoint: "http://127.0.0.1:9", AccessKey: "UPAK", SecretKey: "up-secret"}
	for _, tt := range []struct {
		name     string
		bucket   Bucket
		suffixes []string
		ok       bool
	}{
		{"wild empty upstream", Bucket{Name: "*", Upstream: up, AuthNone: true}, nil, true},
		{"wild star upstream", Bucket{Name: "*", Upstream: Upstream{Endpoint: up.Endpoint, Bucket: "*", AccessKey: "a", SecretKey: "b"}, AuthNone: true}, nil, true},
		{"wild named upstream", Bucket{Name: "*", Upstream: Upstream{Endpoint: up.Endpoint, Bucket: "x", AccessKey: "a", SecretKey: "b"}, AuthNone: true}, nil, false},
		{"star upstream for a named bucket", Bucket{Name: "n", Upstream: Upstream{Endpoint: up.Endpoint, Bucket: "*", AccessKey: "a", SecretKey: "b"}, AuthNone: true}, nil, false},
		{"suffixes", Bucket{Name: "*", Upstream: up, AuthNone: true}, []string{"s3.example.com", "S3.local"}, true},
		{"suffix with port", Bucket{Name: "*", Upstream: up, AuthNone: true}, []string{"s3.example.com:80"}, false},
		{"suffix with scheme", Bucket{Name: "*", Upstream: up, AuthNone: true}, []string{"http://s3.example.com"}, false},
		{"suffix leading dot", Bucket{Name: "*", Upstream: up, AuthNone: true}, []string{".s3.example.com"}, false},
		{"suffix empty", Bucket{Name: "*", Upstream: up, AuthNone: true}, []string{""}, false},
	} {
		o := Options{Buckets: []Bucket{tt.bucket}, VirtualHostSuffixes: tt.suffixes}
		o.withDefaults()
		if err := o.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v; want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// FuzzRouteRequest: routing never panics; an accepted route has a bucket, a non-empty key span
// inside the path without dot segments, and a "*" entry's bucket only for a valid bucket name.
func FuzzRouteRequest(f *testing.F) {
	for _, s := range [][3]string{
		{"127.0.0.1:8080", "/named/a/b", "x-id=PutObject"},
		{"named.s3.example.test:8080", "/a/b", "uploadId=x&partNumber=1"},
		{"My.Bucket.S3.Example.Test", "/k", "uploads"},
		{"photos.eu.s3.example.test.", "/a/../b", ""},
		{"s3.example.test", "/other/k", "uploadId=u"},
		{"x.s3.example.test:", "/", ""},
		{"[::1]:80", "//k", ""},
	} {
		f.Add("PUT", s[0], s[1], s[2])
	}
	e := routeEngine(f, true)
	f.Fuzz(func(t *testing.T, method, host, path, query string) {
		rt, s3err := e.routeRequest([]byte(method), []byte(host), []byte(path), []byte(query), query != "", false)
		if s3err != nil {
			return
		}
		if rt.bucket == nil || rt.keyStart < 1 || rt.keyEnd != len(path) || rt.keyStart >= rt.keyEnd {
			t.Fatalf("Host %q %q: route %+v", host, path, rt)
		}
		if hasDotSegment([]byte(path[rt.keyStart:rt.keyEnd])) {
			t.Fatalf("Host %q %q: dot segment accepted", host, path)
		}
		if rt.bucket.label == wildLabel && !validBucketName(rt.bucket.name) {
			t.Fatalf("Host %q %q: \"*\" entry took invalid name %q", host, path, rt.bucket.name)
		}
	})
}

// admit caches a "*" entry's bucket only once a request for it authenticated.
func TestAdmitPromotesWildcardAfterAuthentication(t *testing.T) {
	up := Upstream{Endpoint: "http://127.0.0.1:9", AccessKey: "UPAK", SecretKey: "up-secret"}
	e, err := New(Options{Address: "127.0.0.1:0", EventLoops: 1, Logger: slog.New(slog.DiscardHandler),
		Now:     func() time.Time { return admitNow },
		Buckets: []Bucket{{Name: WildcardBucket, Upstream: up, Credentials: map[string]string{admitAK: admitSK}}}})
	if err != nil {
		t.Fatal(err)
	}
	run := func(r admitReq) decision {
		wire := r.wire(t)
		h := Head{req: parseHead(t, e, wire), buf: wire}
		return e.admit(&h)
	}
	cached := func() bool { return e.table.Load().wildCache.get([]byte("photos")) != nil }

	d := run(admitReq{method: "PUT", path: "/photos/k", cl: "0", sk: "wrong"})
	if d.err != errSignatureDoesNotMatch || cached() {
		t.Fatalf("bad signature: %v, cached %v; want SignatureDoesNotMatch, not cached", d.err, cached())
	}
	d = run(admitReq{method: "PUT", path: "/photos/k", cl: "0"})
	if d.err != nil || d.rt.bucket.up.Bucket != "photos" || !cached() {
		t.Fatalf("good signature: %v, %+v, cached %v", d.err, d.rt.bucket, cached())
	}
	if d = run(admitReq{method: "PUT", path: "/photos/k2", cl: "0"}); d.rt.bucket.pending != nil {
		t.Fatal("second request did not use the cached state")
	}
}
