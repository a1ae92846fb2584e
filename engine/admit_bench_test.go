package engine

import (
	"strings"
	"testing"
)

// admitBenchCases are the requests BenchmarkAdmit and BenchmarkRoute decide: an accepted signed
// PutObject and UploadPart, an accepted unsigned one, and refusals at routing and at
// authentication.
var admitBenchCases = []struct {
	name string
	req  admitReq
}{
	{"SignedPut", admitReq{method: "PUT", path: "/sig/photos/2025/cat.jpg", query: "x-id=PutObject", cl: "1024",
		payload: "UNSIGNED-PAYLOAD", hdr: []string{"Content-Type: image/jpeg", "X-Amz-Meta-Owner: tests"}}},
	{"SignedUploadPart", admitReq{method: "PUT", path: "/sig/big/file.bin", query: "partNumber=3&uploadId=up1&x-id=UploadPart",
		cl: "1048576", payload: "UNSIGNED-PAYLOAD"}},
	{"OpenPut", admitReq{method: "PUT", path: "/open/a/b/c.txt", cl: "10", noSign: true}},
	{"RefusedSubresource", admitReq{method: "PUT", path: "/sig/k", query: "acl", noSign: true}},
	{"RefusedSignature", admitReq{method: "PUT", path: "/sig/k", cl: "0", sk: "wrong-secret"}},
}

// BenchmarkAdmit is admit alone (routing, payload checks, SigV4 with a warm key cache) on
// parsed heads.
func BenchmarkAdmit(b *testing.B) {
	e := newAdmitEngine(b)
	for _, c := range admitBenchCases {
		b.Run(c.name, func(b *testing.B) {
			wire := c.req.wire(b)
			h := Head{req: parseHead(b, e, wire), buf: wire}
			if d := e.admit(&h); (d.verdict == verdictRefuse) != strings.HasPrefix(c.name, "Refused") {
				b.Fatalf("admit = %v, %s", d.verdict, errString(d.err))
			}
			b.ReportAllocs()
			for b.Loop() {
				e.admit(&h)
			}
		})
	}
}

// BenchmarkRoute is routeRequest alone on the same heads.
func BenchmarkRoute(b *testing.B) {
	e := newAdmitEngine(b)
	for _, c := range admitBenchCases {
		b.Run(c.name, func(b *testing.B) {
			wire := c.req.wire(b)
			req := parseHead(b, e, wire)
			_, copySrc := req.Lookup(wire, "x-amz-copy-source")
			b.ReportAllocs()
			for b.Loop() {
				e.routeRequest(req.Method.Bytes(wire), req.Host.Bytes(wire), req.Path.Bytes(wire), req.Query.Bytes(wire), req.HasQuery, copySrc)
			}
		})
	}
}
