//go:build !race

package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/cors"
)

// corsEngine is newAdmitEngine with CORS rules on bucket "sig".
func corsEngine(tb testing.TB) *Engine {
	tb.Helper()
	e := newAdmitEngine(tb)
	c, err := cors.New([]cors.Rule{{
		AllowedOrigins: []string{"https://app.example.com"},
		AllowedMethods: []string{"PUT", "POST"},
		AllowedHeaders: []string{"*"},
		ExposeHeaders:  []string{"ETag", "x-amz-version-id"},
		MaxAgeSeconds:  3000,
	}})
	if err != nil {
		tb.Fatal(err)
	}
	e.lookupBucket([]byte("sig")).cors = c
	return e
}

// corsPut is smallPut with more header lines.
func corsPut(tb testing.TB, bodyLen int, extra ...string) []byte {
	tb.Helper()
	body := bytes.Repeat([]byte{'c'}, bodyLen)
	sum := sha256.Sum256(body)
	r := admitReq{method: "PUT", path: "/sig/photos/2025/cat.jpg", query: "x-id=PutObject", cl: n64(int64(bodyLen)),
		payload: hex.EncodeToString(sum[:]), hdr: append([]string{"Content-Type: image/jpeg"}, extra...)}
	return append(r.wire(tb), body...)
}

// A small PutObject through the loop's own code allocates nothing on a bucket with CORS rules,
// with an allowed Origin (the answer carries the rule's headers) and without one (nothing is
// added: the request costs one header lookup more).
func TestAllocInlineLoopCORS(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"allowed origin", []string{"Origin: https://app.example.com"}, "Access-Control-Allow-Origin: https://app.example.com\r\n"},
		{"other origin", []string{"Origin: https://other.example"}, cors.Vary},
		{"no origin", nil, ""},
	} {
		p := newLoopRequest(t, corsEngine(t), corsPut(t, 1024, tc.extra...))
		p.run(t)
		if tc.want != "" && !bytes.Contains(p.client.out, []byte(tc.want)) || tc.want == "" && bytes.Contains(p.client.out, []byte("Vary")) {
			t.Fatalf("%s: answer %q; want %q in it", tc.name, p.client.out, tc.want)
		}
		for range 2 {
			p.run(t)
		}
		if n := testing.AllocsPerRun(100, func() { p.run(t) }); n != 0 {
			t.Errorf("%s: %v allocs per request; want 0", tc.name, n)
		}
	}
}

// A preflight answered by the loop (process, admit, the 200 answer, keep-alive) allocates
// nothing, and neither does a refused one.
func TestAllocPreflight(t *testing.T) {
	e := corsEngine(t)
	for _, tc := range []struct{ wire, want string }{
		{"OPTIONS /sig/photos/cat.jpg?uploadId=x&partNumber=2 HTTP/1.1\r\nHost: proxy.test\r\nOrigin: https://app.example.com\r\n" +
			"Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: authorization,content-type\r\n\r\n",
			"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: https://app.example.com\r\n"},
		{"OPTIONS /sig/photos/cat.jpg HTTP/1.1\r\nHost: proxy.test\r\nOrigin: https://evil.example\r\n" +
			"Access-Control-Request-Method: PUT\r\n\r\n", "HTTP/1.1 403 Forbidden\r\n"},
	} {
		client := &fakeConn{in: []byte(tc.wire)}
		st := &connState{conn: client, remote: "192.0.2.1:40000"}
		st.idleSince.Store(e.now())
		run := func() {
			client.reset()
			if a := e.process(client, st); a != gnet.None || !bytes.HasPrefix(client.out, []byte(tc.want)) {
				t.Fatalf("process = %v, answer %q; want %q", a, client.out, tc.want)
			}
		}
		for range 3 {
			run()
		}
		if n := testing.AllocsPerRun(100, run); n != 0 {
			t.Errorf("preflight %q: %v allocs; want 0", tc.want, n)
		}
	}
}
