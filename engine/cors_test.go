package engine_test

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/cors"
	"github.com/mizuchi/uploadr/engine"
)

const (
	appOrigin  = "https://app.example.com"
	wildOrigin = "https://x.cdn.example"
)

// testCORS is the CORS configuration of the tests: the app's origin with credentials and exposed
// headers, then any origin for PUT with a short list of headers.
func testCORS(t testing.TB) *cors.Config {
	t.Helper()
	c, err := cors.New([]cors.Rule{{
		AllowedOrigins: []string{appOrigin, "https://*.cdn.example"},
		AllowedMethods: []string{"PUT", "POST", "GET", "DELETE"},
		AllowedHeaders: []string{"*"},
		ExposeHeaders:  []string{"ETag", "x-amz-version-id", "x-amz-checksum-crc32"},
		MaxAgeSeconds:  3000,
	}, {
		AllowedOrigins: []string{"*"},
		AllowedMethods: []string{"PUT"},
		AllowedHeaders: []string{"content-type"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func withCORS(c *cors.Config) proxyOpt {
	return func(o *engine.Options) { o.Buckets[0].CORS = c }
}

const varyCORS = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"

// preflightWant is what TestCORSPreflight expects of an answer.
type preflightWant struct {
	status                             int
	code                               string // S3 error code, for refusals
	allowOrigin, allowHeaders, methods string
	creds                              bool
}

// preflightCases are TestCORSPreflight's preflights; /B in a path is the proxy's bucket.
var preflightCases = []struct {
	name, path string
	hdr        []string // name, value pairs
	want       preflightWant
}{
	{"app origin, PUT with headers", "/B/k/ey.bin", []string{"Origin", appOrigin, "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "authorization,content-type,x-amz-meta-a"},
		preflightWant{status: 200, allowOrigin: appOrigin, allowHeaders: "authorization,content-type,x-amz-meta-a", methods: "PUT, POST, GET, DELETE", creds: true}},
	{"wildcard origin, UploadPart", "/B/k?partNumber=1&uploadId=abc", []string{"Origin", wildOrigin, "Access-Control-Request-Method", "PUT"},
		preflightWant{status: 200, allowOrigin: wildOrigin, methods: "PUT, POST, GET, DELETE", creds: true}},
	{"bucket-level POST (form upload)", "/B", []string{"Origin", appOrigin, "Access-Control-Request-Method", "POST"},
		preflightWant{status: 200, allowOrigin: appOrigin, methods: "PUT, POST, GET, DELETE", creds: true}},
	{"any origin: the \"*\" rule", "/B/k", []string{"Origin", "https://elsewhere.test", "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "Content-Type"},
		preflightWant{status: 200, allowOrigin: "*", allowHeaders: "Content-Type", methods: "PUT"}},
	{"any origin, header not allowed", "/B/k", []string{"Origin", "https://elsewhere.test", "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "authorization"}, preflightWant{status: 403, code: "AccessForbidden"}},
	{"any origin, method not allowed", "/B/k", []string{"Origin", "https://elsewhere.test", "Access-Control-Request-Method", "POST"},
		preflightWant{status: 403, code: "AccessForbidden"}},
	{"method HEAD nowhere allowed", "/B/k", []string{"Origin", appOrigin, "Access-Control-Request-Method", "HEAD"},
		preflightWant{status: 403, code: "AccessForbidden"}},
	{"no Origin", "/B/k", []string{"Access-Control-Request-Method", "PUT"}, preflightWant{status: 400, code: "BadRequest"}},
	{"no Access-Control-Request-Method", "/B/k", []string{"Origin", appOrigin}, preflightWant{status: 400, code: "BadRequest"}},
	{"bucket without CORS rules", "/no-cors/k", []string{"Origin", appOrigin, "Access-Control-Request-Method", "PUT"},
		preflightWant{status: 403, code: "AccessForbidden"}},
	{"unknown bucket", "/other-bucket/k", []string{"Origin", appOrigin, "Access-Control-Request-Method", "PUT"},
		preflightWant{status: 403, code: "AccessDenied"}},
}

// checkPreflightAnswer checks the answer to the preflight named name against w: a refusal is the
// S3 error without CORS headers, an allowed one 200 with S3's CORS headers and no body.
func checkPreflightAnswer(t *testing.T, name string, resp *http.Response, body []byte, w preflightWant) {
	t.Helper()
	h := resp.Header
	if w.status != 200 {
		wantS3Error(t, resp, body, w.status, w.code)
		if h.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: refused preflight carries Access-Control-Allow-Origin %q", name, h.Get("Access-Control-Allow-Origin"))
		}
		if w.code == "AccessForbidden" && name != "bucket without CORS rules" && !strings.Contains(string(body), "CORSResponse: This CORS request is not allowed.") {
			t.Errorf("%s: body %s; want S3's CORSResponse message", name, body)
		}
		return
	}
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("%s: %d %s; want 200 and no body", name, resp.StatusCode, body)
		return
	}
	got := preflightWant{status: 200, allowOrigin: h.Get("Access-Control-Allow-Origin"), allowHeaders: h.Get("Access-Control-Allow-Headers"),
		methods: h.Get("Access-Control-Allow-Methods"), creds: h.Get("Access-Control-Allow-Credentials") == "true"}
	if got != w {
		t.Errorf("%s: got %+v; want %+v", name, got, w)
	}
	if v := h.Get("Vary"); v != varyCORS {
		t.Errorf("%s: Vary %q; want %q", name, v, varyCORS)
	}
	if w.creds && (h.Get("Access-Control-Max-Age") != "3000" || h.Get("Access-Control-Expose-Headers") != "ETag, x-amz-version-id, x-amz-checksum-crc32") {
		t.Errorf("%s: Max-Age %q, Expose-Headers %q", name, h.Get("Access-Control-Max-Age"), h.Get("Access-Control-Expose-Headers"))
	}
	if h.Get("X-Amz-Request-Id") == "" {
		t.Errorf("%s: no x-amz-request-id", name)
	}
}

// Preflights are answered by the proxy from the bucket's rules, without authentication and
// without contacting the upstream, on keep-alive connections of both transports (gnet and
// Engine.Serve): allowed ones 200 with S3's headers, the rest 400 or 403 as S3 answers.
func TestCORSPreflight(t *testing.T) {
	tw := startTripwire(t)
	p := startProxy(t, withCORS(testCORS(t)), func(o *engine.Options) {
		o.Buckets[0].Upstream.Endpoint = tw.Endpoint
		o.Buckets = append(o.Buckets, engine.Bucket{Name: "no-cors", Upstream: o.Buckets[0].Upstream, AuthNone: true})
	})
	served := serveOn(t, lastEngine, p)
	allowedBefore := max(metricValue(t, `mizuchi_cors_preflights_total{result="allowed"}`), 0)
	refusedBefore := max(metricValue(t, `mizuchi_cors_preflights_total{result="refused"}`), 0)
	okSeries := `mizuchi_requests_total{bucket="` + p.Bucket + `",operation="Preflight",status="200"}`
	okBefore := max(metricValue(t, okSeries), 0)

	for _, srv := range []*proxy{p, served} {
		conn, err := net.DialTimeout("tcp", srv.Addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for _, tc := range preflightCases {
			var b strings.Builder
			b.WriteString("OPTIONS " + strings.Replace(tc.path, "/B", "/"+p.Bucket, 1) + " HTTP/1.1\r\nHost: " + srv.Addr + "\r\n")
			for i := 0; i < len(tc.hdr); i += 2 {
				b.WriteString(tc.hdr[i] + ": " + tc.hdr[i+1] + "\r\n")
			}
			b.WriteString("\r\n")
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write([]byte(b.String())); err != nil {
				t.Fatal(err)
			}
			resp, body := readResponse(t, br) // one keep-alive connection for all: each answer is framed
			checkPreflightAnswer(t, tc.name, resp, body, tc.want)
		}
	}
	if n := tw.conns.Load(); n != 0 {
		t.Errorf("preflights reached the upstream: %d connections", n)
	}
	// Per transport: 4 allowed; 5 refused by CORS (400 and 403), and the unknown bucket's.
	if got := metricValue(t, `mizuchi_cors_preflights_total{result="allowed"}`) - allowedBefore; got != 8 {
		t.Errorf("allowed preflights counted: %v; want 8", got)
	}
	if got := metricValue(t, `mizuchi_cors_preflights_total{result="refused"}`) - refusedBefore; got != 14 {
		t.Errorf("refused preflights counted: %v; want 14", got)
	}
	// In the requests counted by operation, preflights are "Preflight", not the "Unknown" of
	// refused non-upload requests.
	if got := metricValue(t, okSeries) - okBefore; got != 8 {
		t.Errorf("%s rose by %v; want 8 (the allowed preflights)", okSeries, got)
	}
}

// corsHeaders is what a test reads of an answer's CORS headers.
type corsHeaders struct {
	AllowOrigin, Expose, Vary string
	Creds                     bool
}

func corsOf(h http.Header) corsHeaders {
	return corsHeaders{h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Expose-Headers"), strings.Join(h.Values("Vary"), ", "),
		h.Get("Access-Control-Allow-Credentials") == "true"}
}

var appCORS = corsHeaders{AllowOrigin: appOrigin, Expose: "ETag, x-amz-version-id, x-amz-checksum-crc32", Vary: varyCORS, Creds: true}

// Every answer to a request with an allowed Origin carries the rule's headers — relayed upstream
// answers of all six operations and the proxy's own S3 errors (authentication, routing) alike —
// on both transports; a request with an origin no rule allows gets Vary alone, and one without
// an Origin nothing.
func TestCORSActualResponses(t *testing.T) {
	p := startProxy(t, withCORS(testCORS(t)))
	served := serveOn(t, lastEngine, p)
	for _, srv := range []*proxy{p, served} {
		origin := http.Header{"Origin": {appOrigin}}
		send := func(r rawReq) (*http.Response, []byte) {
			t.Helper()
			return srv.do(t, r.bytes(t, srv.Addr))
		}
		check := func(what string, resp *http.Response, body []byte, status int, want corsHeaders) {
			t.Helper()
			if resp.StatusCode != status {
				t.Errorf("%s: status %d; want %d (%s)", what, resp.StatusCode, status, body)
			}
			if got := corsOf(resp.Header); got != want {
				t.Errorf("%s: CORS headers %+v; want %+v", what, got, want)
			}
		}
		key := "/" + p.Bucket + "/cors/obj"
		resp, body := send(rawReq{Method: "PUT", Path: key, Header: origin.Clone(), Body: []byte("hello")})
		check("PutObject", resp, body, 200, appCORS)
		if resp.Header.Get("ETag") == "" {
			t.Errorf("PutObject: no ETag")
		}
		resp, body = send(rawReq{Method: "PUT", Path: key, Header: origin.Clone(), Body: []byte("hello"), SK: "wrong", AK: clientAK})
		check("bad signature", resp, body, 403, appCORS)
		wantS3Error(t, resp, body, 403, "SignatureDoesNotMatch")
		resp, body = send(rawReq{Method: "GET", Path: key, Header: origin.Clone()})
		check("GetObject (refused by the proxy)", resp, body, 405, appCORS)
		resp, body = send(rawReq{Method: "PUT", Path: key, Header: http.Header{"Origin": {"https://evil.test"}}, Body: []byte("x")})
		check("origin only the \"*\" rule allows", resp, body, 200,
			corsHeaders{AllowOrigin: "*", Vary: varyCORS})
		resp, body = send(rawReq{Method: "POST", Path: key, Query: "uploads", Header: http.Header{"Origin": {"https://evil.test"}}})
		check("method no rule allows for that origin", resp, body, 200, corsHeaders{Vary: varyCORS})
		resp, body = send(rawReq{Method: "PUT", Path: key, Body: []byte("x")})
		check("no Origin", resp, body, 200, corsHeaders{})

		// Multipart: every call's answer, ListParts and Complete included.
		resp, body = send(rawReq{Method: "POST", Path: key, Query: "uploads", Header: origin.Clone()})
		check("CreateMultipartUpload", resp, body, 200, appCORS)
		var created struct{ UploadId string }
		if err := xml.Unmarshal(body, &created); err != nil || created.UploadId == "" {
			t.Fatalf("CreateMultipartUpload: %v %s", err, body)
		}
		q := "uploadId=" + created.UploadId
		part := bytes.Repeat([]byte("p"), 1000)
		resp, body = send(rawReq{Method: "PUT", Path: key, Query: "partNumber=1&" + q, Header: origin.Clone(), Body: part})
		check("UploadPart", resp, body, 200, appCORS)
		etag := resp.Header.Get("ETag")
		resp, body = send(rawReq{Method: "GET", Path: key, Query: q, Header: origin.Clone()})
		check("ListParts", resp, body, 200, appCORS)
		doc := "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>" + etag + "</ETag></Part></CompleteMultipartUpload>"
		resp, body = send(rawReq{Method: "POST", Path: key, Query: q, Header: origin.Clone(), Body: []byte(doc)})
		check("CompleteMultipartUpload", resp, body, 200, appCORS)
		resp, body = send(rawReq{Method: "DELETE", Path: key, Query: q, Header: origin.Clone()})
		check("AbortMultipartUpload (after Complete: NoSuchUpload)", resp, body, 404, appCORS)
	}
}

// The "*" entry's rules serve every bucket it serves: a preflight and a PutObject to a bucket
// only the "*" entry knows.
func TestCORSWildcardBucket(t *testing.T) {
	p := startProxy(t, withCORS(testCORS(t)), withWildcard(map[string]string{clientAK: clientSK}))
	name := fmt.Sprintf("wild-cors-%d", bucketSeq.Add(1))
	upstream.CreateBucket(t, name)
	resp, body := p.do(t, []byte("OPTIONS /"+name+"/k HTTP/1.1\r\nHost: "+p.Addr+"\r\nOrigin: "+appOrigin+
		"\r\nAccess-Control-Request-Method: PUT\r\n\r\n"))
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != appOrigin {
		t.Fatalf("preflight to a \"*\" bucket: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	r := rawReq{Method: "PUT", Path: "/" + name + "/k", Header: http.Header{"Origin": {appOrigin}}, Body: []byte("wild")}
	resp, body = p.do(t, r.bytes(t, p.Addr))
	if resp.StatusCode != 200 || corsOf(resp.Header) != appCORS {
		t.Fatalf("PutObject to a \"*\" bucket: %d %+v %s", resp.StatusCode, corsOf(resp.Header), body)
	}
	if got, _ := upstream.GetObject(t, name, "k"); string(got) != "wild" {
		t.Errorf("stored %q", got)
	}
}

// A request refused by a client limit before it was routed still carries its bucket's CORS
// headers, so the page's script reads the 503 SlowDown (and retries) instead of a network error.
func TestCORSOnLimitRefusal(t *testing.T) {
	p := startProxy(t, withCORS(testCORS(t)), func(o *engine.Options) {
		o.Limits.RequestsPerSecondPerIP, o.Limits.BurstPerIP = 0.001, 1
	})
	var last *http.Response
	var body []byte
	for range 2 {
		r := rawReq{Method: "PUT", Path: "/" + p.Bucket + "/limited", Header: http.Header{"Origin": {appOrigin}}, Body: []byte("x")}
		last, body = p.do(t, r.bytes(t, p.Addr))
	}
	wantS3Error(t, last, body, 503, "SlowDown")
	if got := corsOf(last.Header); got != appCORS {
		t.Errorf("503 SlowDown of the per-IP limit: CORS headers %+v; want %+v", got, appCORS)
	}
}
