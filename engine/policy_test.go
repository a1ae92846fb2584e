package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/policy"
	"github.com/mizuchi/uploadr/s3sig"
)

// Bucket policy in admit and in the upstream head, without a server.

// newPolicyEngine returns an Engine (not running) with the buckets of newAdmitEngine's kind:
//
//	pol    SigV4; admins (claim group=admins, via x-test-token) may do anything, others: keys
//	       under users/<access key>/, at most 1 MiB, image/* or application/pdf, STANDARD, a
//	       crc32c or sha256 digest, parts 1..5, no overwrite
//	tok    tokenAuth-style with claims, the same policy
func newPolicyEngine(tb testing.TB) *Engine {
	tb.Helper()
	pol, err := policy.Compile([]policy.RuleSet{
		{When: policy.When{Claims: map[string]string{"group": "admins"}}},
		{
			MaxObjectSize:         1 << 20,
			AllowedContentTypes:   []string{"image/*", "application/pdf"},
			KeyTemplate:           "users/{principal}/*",
			NoOverwrite:           true,
			RequireChecksum:       []string{"crc32c", "sha256"},
			AllowedStorageClasses: []string{"STANDARD"},
			MaxParts:              5,
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	claimsAuth := AuthenticatorFunc(func(h *Head) (Principal, *Error) {
		switch v, _ := h.Header("x-test-token"); string(v) {
		case "admin":
			return Principal{ID: "root", Method: "token", Claims: adminClaims}, nil
		case "user":
			return Principal{ID: "u1", Method: "token", Claims: userClaims}, nil
		}
		return Principal{}, errBadToken
	})
	up := Upstream{Endpoint: "http://127.0.0.1:9", Bucket: "upstream", AccessKey: "UPSTREAMAK", SecretKey: "upstream-secret"}
	e, err := New(Options{
		Address:       "127.0.0.1:0",
		EventLoops:    1,
		MaxObjectSize: admitMaxObj,
		Logger:        slog.New(slog.DiscardHandler),
		Now:           nowFunc,
		Buckets: []Bucket{
			{Name: "pol", Upstream: up, Credentials: map[string]string{admitAK: admitSK}, Policy: pol},
			{Name: "tok", Upstream: up, Authenticator: claimsAuth, Policy: pol},
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func nowFunc() time.Time { return admitNow }

// The claims of the test's token principals (made once: the authenticator must not allocate).
var (
	adminClaims = map[string]any{"group": []any{"admins"}}
	userClaims  = map[string]any{"group": "users"}
)

const crc32cHdr = "x-amz-checksum-crc32c: AAAAAA=="

func TestAdmitPolicy(t *testing.T) {
	e := newPolicyEngine(t)
	own := "/pol/users/" + admitAK + "/"
	img := "Content-Type: image/png"
	cases := []struct {
		name        string
		req         admitReq
		err         *s3Error
		noOverwrite bool
	}{
		{"put ok, hex sha256", admitReq{method: "PUT", path: own + "a.png", cl: "0", hdr: []string{img}}, nil, true},
		{"put ok, crc32c", admitReq{method: "PUT", path: own + "a%20b.png", cl: "10", payload: "UNSIGNED-PAYLOAD", hdr: []string{img, crc32cHdr}}, nil, true},
		{"put ok, trailer", admitReq{method: "PUT", path: own + "t.png", cl: "100", payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			hdr: []string{img, "Content-Encoding: aws-chunked", "x-amz-decoded-content-length: 10", "x-amz-trailer: x-amz-checksum-crc32c"}}, nil, true},
		{"put other key", admitReq{method: "PUT", path: "/pol/users/someone/a.png", cl: "0", hdr: []string{img}}, errPolicyKey, false},
		{"put longer principal", admitReq{method: "PUT", path: "/pol/users/" + admitAK + "X/a.png", cl: "0", hdr: []string{img}}, errPolicyKey, false},
		{"put too large", admitReq{method: "PUT", path: own + "a.png", cl: n64(1<<20 + 1), hdr: []string{img}}, errPolicySize, false},
		{"put decoded too large", admitReq{method: "PUT", path: own + "a.png", cl: n64(1<<20 + 1000), payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			hdr: []string{img, "Content-Encoding: aws-chunked", "x-amz-decoded-content-length: " + n64(1<<20+1), "x-amz-trailer: x-amz-checksum-crc32c"}}, errPolicySize, false},
		{"put text", admitReq{method: "PUT", path: own + "a.txt", cl: "0", hdr: []string{"Content-Type: text/plain"}}, errPolicyContentType, false},
		{"put no type", admitReq{method: "PUT", path: own + "a", cl: "0"}, errPolicyContentType, false},
		{"put glacier", admitReq{method: "PUT", path: own + "a.png", cl: "0", hdr: []string{img, "x-amz-storage-class: GLACIER"}}, errPolicyStorageClass, false},
		{"put no checksum", admitReq{method: "PUT", path: own + "a.png", cl: "3", payload: "UNSIGNED-PAYLOAD", hdr: []string{img}}, errPolicyChecksum, false},
		{"put md5 only", admitReq{method: "PUT", path: own + "a.png", cl: "3", payload: "UNSIGNED-PAYLOAD", hdr: []string{img, "Content-MD5: 1B2M2Y8AsgTpgAmY7PhCfg=="}}, errPolicyChecksum, false},
		{"create ok", admitReq{method: "POST", path: own + "big.png", query: "uploads=", hdr: []string{img}}, nil, false},
		{"create bad type", admitReq{method: "POST", path: own + "big.html", query: "uploads=", hdr: []string{"Content-Type: text/html"}}, errPolicyContentType, false},
		{"part ok", admitReq{method: "PUT", path: own + "big.png", query: "partNumber=5&uploadId=abc", cl: "10"}, nil, false},
		{"part 6", admitReq{method: "PUT", path: own + "big.png", query: "partNumber=6&uploadId=abc", cl: "10"}, errPolicyMaxParts, false},
		{"part too large", admitReq{method: "PUT", path: own + "big.png", query: "partNumber=1&uploadId=abc", cl: n64(1<<20 + 1)}, errPolicySize, false},
		{"part no checksum", admitReq{method: "PUT", path: own + "big.png", query: "partNumber=1&uploadId=abc", cl: "1", payload: "UNSIGNED-PAYLOAD"}, errPolicyChecksum, false},
		{"complete ok", admitReq{method: "POST", path: own + "big.png", query: "uploadId=abc", cl: "10"}, nil, true},
		{"complete other key", admitReq{method: "POST", path: "/pol/big.png", query: "uploadId=abc", cl: "10"}, errPolicyKey, false},
		{"abort other key", admitReq{method: "DELETE", path: "/pol/big.png", query: "uploadId=abc"}, errPolicyKey, false},
		{"list parts ok", admitReq{method: "GET", path: own + "big.png", query: "uploadId=abc"}, nil, false},
		{"list parts other key", admitReq{method: "GET", path: "/pol/x", query: "uploadId=abc"}, errPolicyKey, false},
		{"admin claim anything", admitReq{method: "PUT", path: "/tok/anything", cl: "0", noSign: true, hdr: []string{"x-test-token: admin"}}, nil, false},
		{"user claim own key", admitReq{method: "PUT", path: "/tok/users/u1/a.pdf", cl: "0", noSign: true, payload: emptySHA,
			hdr: []string{"x-test-token: user", "Content-Type: application/pdf"}}, nil, true},
		{"user claim other key", admitReq{method: "PUT", path: "/tok/anything", cl: "0", noSign: true, hdr: []string{"x-test-token: user"}}, errPolicyKey, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire := tc.req.wire(t)
			h := Head{req: parseHead(t, e, wire), buf: wire}
			d := e.admit(&h)
			if d.err != tc.err || d.noOverwrite != tc.noOverwrite {
				t.Errorf("admit = %v, %s, noOverwrite %v; want %s, noOverwrite %v", d.verdict, errString(d.err), d.noOverwrite, errString(tc.err), tc.noOverwrite)
			}
			if d.err != nil && d.verdict != verdictRefuse {
				t.Errorf("verdict %v with an error", d.verdict)
			}
		})
	}
}

// TestPolicyUpstreamHead: no_overwrite replaces the client's If-None-Match with "*" on PutObject
// and Complete, and signs it; other operations carry none.
func TestPolicyUpstreamHead(t *testing.T) {
	e := newPolicyEngine(t)
	own := "/pol/users/" + admitAK + "/"
	cases := []struct {
		name string
		req  admitReq
		want bool
	}{
		{"put", admitReq{method: "PUT", path: own + "a.png", cl: "0", hdr: []string{"Content-Type: image/png", `If-None-Match: "abc"`}}, true},
		{"complete", admitReq{method: "POST", path: own + "a.png", query: "uploadId=abc", cl: "0"}, true},
		{"create", admitReq{method: "POST", path: own + "a.png", query: "uploads=", hdr: []string{"Content-Type: image/png"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wire := tc.req.wire(t)
			st := &connState{req: parseHead(t, e, wire)}
			st.head = Head{req: st.req, buf: wire}
			d := e.admit(&st.head)
			if d.err != nil {
				t.Fatalf("admit: %s", errString(d.err))
			}
			st.rt, st.bodyLen, st.principal, st.signed, st.noOverwrite = d.rt, d.bodyLen, d.principal, d.signed, d.noOverwrite
			j := e.newJob(st, st.req.Path.Bytes(wire), sideLoop)
			defer j.release()
			if err := e.buildUpstreamHead(j, st, j.bucket, wire); err != nil {
				t.Fatal(err)
			}
			head := string(j.out[:j.headLen])
			n := strings.Count(strings.ToLower(head), "\r\nif-none-match:")
			_, auth, _ := strings.Cut(head, "Authorization: ")
			signed := strings.Contains(auth, "if-none-match")
			switch {
			case tc.want && (n != 1 || !strings.Contains(head, "if-none-match: *\r\n") || !signed):
				t.Errorf("head %q: want one signed if-none-match: *", head)
			case !tc.want && (n != 0 || signed):
				t.Errorf("head %q: want no if-none-match", head)
			}
		})
	}
}

// FuzzAdmitPolicy: hostile heads that pass authentication on "tok" as u1 (x-test-token: user)
// are admitted only for keys under users/u1/, and no_overwrite is set only on admitted PutObject
// and Complete.
func FuzzAdmitPolicy(f *testing.F) {
	e := newPolicyEngine(f)
	for _, s := range [][3]string{
		{"PUT", "/tok/users/u1/a.pdf", "Content-Length: 0\r\nContent-Type: application/pdf\r\nx-amz-content-sha256: " + emptySHA + "\r\n"},
		{"PUT", "/tok/users/u1%2Fa.png", "Content-Length: 3\r\nContent-Type: image/png\r\nx-amz-checksum-crc32c: AAAAAA==\r\n"},
		{"PUT", "/tok/users/u1/../u2/a.png", "Content-Length: 3\r\nContent-Type: image/png\r\nx-amz-checksum-crc32c: AAAAAA==\r\n"},
		{"POST", "/tok/users/u1/a.png?uploadId=x", "Content-Length: 0\r\n"},
		{"PUT", "/tok/users/u1/a.png?partNumber=2&uploadId=x", "Content-Length: 10\r\nx-amz-trailer: x-amz-checksum-crc32c\r\nContent-Encoding: aws-chunked\r\nx-amz-decoded-content-length: 5\r\nx-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\n"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, method, target, headers string) {
		b := []byte(method + " " + target + " HTTP/1.1\r\nHost: proxy.test\r\nx-test-token: user\r\n" + headers + "\r\n")
		var p httpparse.Parser
		req := new(httpparse.Request)
		if p.Parse(b, e.limits, req) != nil {
			return
		}
		h := Head{req: req, buf: b}
		d := e.admit(&h)
		if d.verdict == verdictRefuse {
			if d.noOverwrite {
				t.Fatalf("refused with noOverwrite")
			}
			return
		}
		if d.rt.bucket.name != "tok" {
			return
		}
		key, err := s3sig.AppendPercentDecode(nil, h.Path()[d.rt.keyStart:d.rt.keyEnd])
		if err != nil || !bytes.HasPrefix(key, []byte("users/u1/")) {
			t.Fatalf("admitted %s key %q (%v) for u1", d.rt.op, key, err)
		}
		if d.noOverwrite != (d.rt.op == opPutObject || d.rt.op == opCompleteMultipartUpload) {
			t.Fatalf("%s: noOverwrite %v", d.rt.op, d.noOverwrite)
		}
	})
}
