//go:build !race

package engine

import "testing"

// Routing allocates nothing: path style and virtual-hosted, named buckets and the "*" entry's
// cached names.
func TestAllocRouteBucket(t *testing.T) {
	e := routeEngine(t, true)
	b := e.lookupBucket([]byte("photos"))
	b.pending.promote(b)
	for _, tt := range []struct{ host, path string }{
		{"127.0.0.1:8080", "/named/a/b"},
		{"named.s3.example.test:8080", "/a/b"},
		{"127.0.0.1:8080", "/photos/a/b"},
		{"Photos.S3.example.test:8080", "/a/b"},
	} {
		host, path, query := []byte(tt.host), []byte(tt.path), []byte("x-id=PutObject")
		n := testing.AllocsPerRun(100, func() {
			if rt, s3err := e.routeRequest([]byte("PUT"), host, path, query, true, false); s3err != nil || rt.bucket.pending != nil {
				t.Fatalf("routeRequest: %v, %+v", s3err, rt.bucket)
			}
		})
		if n != 0 {
			t.Errorf("Host %s %s: %v allocations; want 0", tt.host, tt.path, n)
		}
	}
}
