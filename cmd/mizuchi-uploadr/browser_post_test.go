package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mizuchi/uploadr/internal/browsertest"
)

// (b) Browser form uploads (PostObject) from a page on another origin, with a POST policy the
// test signs (its backend's job): a FormData fetch (a CORS "simple request": no preflight; the
// script reads the 201 document because the answer carries Access-Control-Allow-Origin), a real
// HTML <form> submitted by the browser and redirected back to the page's origin, and a file above
// the policy's content-length-range refused with nothing stored.

// browserPostFields signs a policy for keys under prefix, files of at most maxSize bytes, and
// returns the form's fields (auth fields included) in order, the file excepted.
func browserPostFields(t *testing.T, prefix string, maxSize int, extra [][2]string) [][2]string {
	t.Helper()
	now := time.Now().UTC()
	date, amzDate := now.Format("20060102"), now.Format("20060102T150405Z")
	cred := clientAK + "/" + date + "/us-east-1/s3/aws4_request"
	conds := []any{
		map[string]string{"bucket": "uploads"},
		[]any{"starts-with", "$key", prefix},
		[]any{"starts-with", "$Content-Type", ""},
		[]any{"content-length-range", 1, maxSize},
		map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256"},
		map[string]string{"x-amz-credential": cred},
		map[string]string{"x-amz-date": amzDate},
	}
	for _, f := range extra {
		conds = append(conds, []any{"eq", "$" + f[0], f[1]})
	}
	doc, err := json.Marshal(map[string]any{"expiration": now.Add(10 * time.Minute).Format("2006-01-02T15:04:05.000Z"), "conditions": conds})
	if err != nil {
		t.Fatal(err)
	}
	policy := base64.StdEncoding.EncodeToString(doc)
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	k := mac(mac(mac(mac([]byte("AWS4"+clientSK), date), "us-east-1"), "s3"), "aws4_request")
	fields := [][2]string{{"key", prefix + "${filename}"}, {"Content-Type", "image/png"}}
	fields = append(fields, extra...)
	return append(fields, [][2]string{{"x-amz-algorithm", "AWS4-HMAC-SHA256"}, {"x-amz-credential", cred},
		{"x-amz-date", amzDate}, {"policy", policy}, {"x-amz-signature", hex.EncodeToString(mac(k, policy))}}...)
}

// jsFields renders fields as a JavaScript array of [name, value] pairs.
func jsFields(fields [][2]string) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

// formDataScript POSTs a FormData of fields and a file of n bytes bt.bytes(n, seed) named name.
func formDataScript(action string, fields [][2]string, name string, n int, seed uint32) string {
	return "const fd = new FormData();\nfor (const [k, v] of " + jsFields(fields) + ") fd.append(k, v);\n" +
		"fd.append(\"file\", new Blob([bt.bytes(" + strconv.Itoa(n) + ", " + strconv.Itoa(int(seed)) + ")], {type: \"image/png\"}), " + strconv.Quote(name) + ");\n" +
		"return bt.attempt(async () => bt.result(await fetch(" + strconv.Quote(action) + ", {method: \"POST\", body: fd})));"
}

func TestBrowserFormPost(t *testing.T) {
	be := startBrowserEnv(t, "")
	preflights := be.Preflights(t, "allowed")

	// A FormData fetch, 201: the script reads the PostResponse document and the exposed ETag.
	const n, seed = 700_000, 6
	fields := browserPostFields(t, "browser/form/", 1<<20, [][2]string{{"success_action_status", "201"}})
	got := browsertest.Eval[fetchResult](t, be.Browser, be.Page.URL+"/", formDataScript(be.Endpoint+"/uploads", fields, "photo.png", n, seed))
	if got.Status != 201 || !strings.Contains(got.Body, "<Key>browser/form/photo.png</Key>") || got.Headers["etag"] == "" {
		t.Fatalf("FormData POST from the page: %+v", got)
	}
	be.checkStored(t, "browser/form/photo.png", n, seed)
	_, head := be.Up.GetObject(t, be.UpBucket, "browser/form/photo.png")
	if got.Headers["etag"] != aws.ToString(head.ETag) || aws.ToString(head.ContentType) != "image/png" {
		t.Errorf("ETag the script read %q, stored %q, Content-Type %q", got.Headers["etag"], aws.ToString(head.ETag), aws.ToString(head.ContentType))
	}

	// A real <form> submitted by the browser (a navigation, not a script's fetch) into an iframe,
	// redirected with 303 to the page's origin with bucket, key and etag in the query: the page
	// reads the query from the (then same-origin) frame.
	be.Page.Handle("/uploaded", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("uploaded"))
	}))
	const fn, fseed = 300_000, 7
	fields = browserPostFields(t, "browser/html/", 1<<20, [][2]string{{"success_action_redirect", be.Page.URL + "/uploaded"}})
	script := `const frame = document.createElement("iframe");
frame.name = "target";
document.body.appendChild(frame);
const f = document.createElement("form");
f.method = "POST"; f.enctype = "multipart/form-data"; f.target = "target"; f.action = ` + strconv.Quote(be.Endpoint+"/uploads") + `;
for (const [k, v] of ` + jsFields(fields) + `) {
  const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i);
}
const fi = document.createElement("input"); fi.type = "file"; fi.name = "file";
const dt = new DataTransfer();
dt.items.add(new File([bt.bytes(` + strconv.Itoa(fn) + `, ` + strconv.Itoa(fseed) + `)], "page.png", {type: "image/png"}));
fi.files = dt.files;
f.appendChild(fi);
document.body.appendChild(f);
const landed = new Promise((resolve, reject) => {
  frame.onload = () => {
    try {
      if (frame.contentWindow.location.pathname === "/uploaded") resolve(frame.contentWindow.location.search);
    } catch (e) { /* a cross-origin document: the proxy's answer was not the redirect */ }
  };
  setTimeout(() => reject(new Error("the form's answer did not redirect to /uploaded")), 30000);
});
f.submit();
return Object.fromEntries(new URLSearchParams(await landed));`
	q := browsertest.Eval[map[string]string](t, be.Browser, be.Page.URL+"/", script)
	if q["bucket"] != "uploads" || q["key"] != "browser/html/page.png" || q["etag"] == "" {
		t.Fatalf("redirect query %v", q)
	}
	be.checkStored(t, "browser/html/page.png", fn, fseed)

	// Neither form upload was preflighted (multipart/form-data POSTs are simple requests).
	if after := be.Preflights(t, "allowed"); after != preflights {
		t.Errorf("allowed preflights: %v more; want 0", after-preflights)
	}
}

// Negative: a file above the policy's content-length-range is refused (the script reads S3's
// EntityTooLarge) and nothing is stored.
func TestBrowserFormPostOversize(t *testing.T) {
	be := startBrowserEnv(t, "")
	fields := browserPostFields(t, "browser/big/", 100_000, nil)
	got := browsertest.Eval[fetchResult](t, be.Browser, be.Page.URL+"/", formDataScript(be.Endpoint+"/uploads", fields, "big.png", 100_001, 8))
	if got.Status != 400 || !strings.Contains(got.Body, "<Code>EntityTooLarge</Code>") {
		t.Fatalf("oversize FormData POST: %+v; want 400 EntityTooLarge readable by the script", got)
	}
	if be.Up.ObjectExists(t, be.UpBucket, "browser/big/big.png") {
		t.Fatal("an oversize file was stored")
	}
	// At the limit it is stored: the refusal was the size's.
	got = browsertest.Eval[fetchResult](t, be.Browser, be.Page.URL+"/", formDataScript(be.Endpoint+"/uploads", fields, "big.png", 100_000, 8))
	if got.Status != 204 {
		t.Fatalf("FormData POST at the limit: %+v", got)
	}
	be.checkStored(t, "browser/big/big.png", 100_000, 8)
}
