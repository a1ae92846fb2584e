package engine

import (
	"strings"
	"testing"
)

// PostObject heads: what admit decides before any body byte is read.
func TestAdmitPostObject(t *testing.T) {
	e := newAdmitEngine(t)
	const form = "Content-Type: multipart/form-data; boundary=----WebKitFormBoundaryXyZ"
	cases := []struct {
		name, head string
		op         op
		verdict    verdict
		code       string
	}{
		{"path style", "POST /sig HTTP/1.1\r\nHost: x\r\n" + form + "\r\nContent-Length: 500\r\n", opPostObject, verdictStream, ""},
		{"trailing slash", "POST /sig/ HTTP/1.1\r\nHost: x\r\n" + form + "\r\nContent-Length: 500\r\n", opPostObject, verdictStream, ""},
		{"authorizer decides later", "POST /authz HTTP/1.1\r\nHost: x\r\n" + form + "\r\nContent-Length: 5\r\n", opPostObject, verdictStream, ""},
		{"chunked", "POST /sig HTTP/1.1\r\nHost: x\r\n" + form + "\r\nTransfer-Encoding: chunked\r\n", opPostObject, verdictRefuse, "MissingContentLength"},
		{"no length", "POST /sig HTTP/1.1\r\nHost: x\r\n" + form + "\r\n", opPostObject, verdictRefuse, "MissingContentLength"},
		{"no boundary", "POST /sig HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\nContent-Length: 5\r\n", opPostObject, verdictRefuse, "MalformedPOSTRequest"},
		{"too large", "POST /sig HTTP/1.1\r\nHost: x\r\n" + form + "\r\nContent-Length: 999999999999\r\n", opPostObject, verdictRefuse, "EntityTooLarge"},
		{"subresource", "POST /sig?delete HTTP/1.1\r\nHost: x\r\n" + form + "\r\nContent-Length: 5\r\n", opPostObject, verdictRefuse, "NotImplemented"},
		// A key in the path: CreateMultipartUpload of an object typed multipart/form-data (unsigned here).
		{"object typed form-data", "POST /sig/k?uploads HTTP/1.1\r\nHost: x\r\n" + form + "\r\n", opCreateMultipartUpload, verdictRefuse, "AccessDenied"},
		{"unknown bucket", "POST /nope HTTP/1.1\r\nHost: x\r\n" + form + "\r\nContent-Length: 5\r\n", opNone, verdictRefuse, "AccessDenied"},
		{"not a form", "POST /sig HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n", opNone, verdictRefuse, "MethodNotAllowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire := []byte(tc.head + "\r\n")
			h := Head{req: parseHead(t, e, wire), buf: wire}
			d := e.admit(&h)
			if d.rt.op != tc.op || d.verdict != tc.verdict || tc.code != "" && (d.err == nil || d.err.Code != tc.code) {
				t.Fatalf("admit = %v %v %s; want %v %v %s", d.rt.op, d.verdict, errString(d.err), tc.op, tc.verdict, tc.code)
			}
			checkInvariants(t, e, &h, &d)
		})
	}
}

// postObjectSeeds are FuzzAdmit seeds: PostObject heads (method, path, query, hasQuery, headers).
var postObjectSeeds = [][5]string{
	{"POST", "/sig", "", "", "Host: x\r\nContent-Type: multipart/form-data; boundary=abc\r\nContent-Length: 200\r\n"},
	{"POST", "/", "", "", "Host: sig.s3.example.com\r\nContent-Type: Multipart/Form-Data; boundary=\"a b\"\r\nContent-Length: 9\r\n"},
}

// checkPostObject checks an admitted PostObject: a bucket-level path, a Content-Length, streamed
// (the form is read off the loop, where authentication happens: no principal yet).
func checkPostObject(t *testing.T, h *Head, d *decision) {
	t.Helper()
	if d.verdict != verdictStream || d.principal.ID != "" || d.principal.Method != "" || d.rt.bucket == nil {
		t.Fatalf("PostObject admitted as %v, principal %+v", d.verdict, d.principal)
	}
	if h.req.ContentLength < 0 || h.req.Chunked || d.bodyLen != h.req.ContentLength {
		t.Fatalf("PostObject with Content-Length %d, bodyLen %d", h.req.ContentLength, d.bodyLen)
	}
	if p := string(h.Path()); p != "/" && strings.Trim(p, "/") != d.rt.bucket.name {
		t.Fatalf("PostObject on path %q for bucket %q", p, d.rt.bucket.name)
	}
}
