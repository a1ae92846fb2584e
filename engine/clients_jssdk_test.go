package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// The AWS SDK for JavaScript v3 (@aws-sdk/client-s3, lib-storage, s3-request-presigner at the
// versions scripts/node/package-lock.json locks) run with node by s3test.RunNode, with the SDK's
// defaults (requestChecksumCalculation WHEN_SUPPORTED: CRC32 on every upload) unless a test says
// otherwise.

// jsPrelude is prepended to every JS test script. client(opts) builds an S3Client for
// MIZUCHI_ENDPOINT, path-style and without retries unless opts says otherwise, that records every
// request as sent on the wire (after signing) in `sent`. main(fn) runs fn and prints one JSON line
// {"result": …, "sent": […]} on success; on failure it prints the error to stderr and exits 1.
const jsPrelude = `
"use strict";
const fs = require("fs");
const http = require("http");
const { S3Client, PutObjectCommand } = require("@aws-sdk/client-s3");
const sent = [];
function record(s3) {
  s3.middlewareStack.add((next) => async (args) => {
    const r = args.request;
    sent.push({ method: r.method, host: r.hostname, path: r.path, query: r.query, headers: r.headers });
    return next(args);
  }, { step: "deserialize", priority: "low", name: "mizuchiRecordRequest" });
  return s3;
}
function client(opts) {
  return record(new S3Client({ endpoint: process.env.MIZUCHI_ENDPOINT, forcePathStyle: true, maxAttempts: 1, ...opts }));
}
function main(fn) {
  fn().then((result) => {
    console.log(JSON.stringify({ result, sent }));
  }, (e) => {
    console.error((e && e.stack) || String(e));
    console.error(JSON.stringify({ error: e && e.name, status: e && e.$metadata && e.$metadata.httpStatusCode, sent }));
    process.exit(1);
  });
}
`

// jsSent is one request a JS script sent, as its recording middleware saw it.
type jsSent struct {
	Method  string            `json:"method"`
	Host    string            `json:"host"`
	Path    string            `json:"path"`
	Query   map[string]any    `json:"query"`
	Headers map[string]string `json:"headers"`
}

// header returns the value of a header the SDK sent (the JS SDK sends lower-case names).
func (s jsSent) header(name string) string {
	for k, v := range s.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func (s jsSent) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s%s", s.Method, s.Host, s.Path)
	for _, h := range []string{"content-length", "content-encoding", "x-amz-content-sha256", "x-amz-decoded-content-length",
		"x-amz-trailer", "x-amz-checksum-crc32", "x-amz-checksum-algorithm", "x-amz-sdk-checksum-algorithm", "expect"} {
		if v := s.header(h); v != "" {
			fmt.Fprintf(&b, " %s=%s", h, v)
		}
	}
	return b.String()
}

// runJS runs jsPrelude+script with node against the proxy and decodes its report into result.
func runJS(t *testing.T, e s3test.ClientEnv, result any, script string, args ...string) []jsSent {
	t.Helper()
	out, errOut, err := s3test.RunNode(t, e, jsPrelude+script, args...)
	if err != nil {
		t.Fatalf("node: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var rep struct {
		Result json.RawMessage `json:"result"`
		Sent   []jsSent        `json:"sent"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("node report: %v\nstdout: %s\nstderr: %s", err, out, errOut)
	}
	if result != nil {
		if err := json.Unmarshal(rep.Result, result); err != nil {
			t.Fatalf("node result %s: %v", rep.Result, err)
		}
	}
	for _, s := range rep.Sent {
		t.Logf("js sent: %s", s)
	}
	return rep.Sent
}

// wantCRC32 fails the test unless the request carried the SDK's default CRC32, as a header or as a
// trailer of an aws-chunked body.
func wantCRC32(t *testing.T, s jsSent) {
	t.Helper()
	if s.header("x-amz-checksum-crc32") == "" && s.header("x-amz-trailer") != "x-amz-checksum-crc32" {
		t.Errorf("%s: no CRC32 (header or trailer): are the SDK's default checksums off?", s)
	}
}

const jsPutObject = `
main(async () => {
  const [bucket, key, file, mode] = process.argv.slice(1);
  const s3 = client({});
  const Body = mode === "stream" ? fs.createReadStream(file) : fs.readFileSync(file);
  const r = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body,
    ContentType: "application/x-js", Metadata: { via: "js-sdk" } }));
  return { ETag: r.ETag, ChecksumCRC32: r.ChecksumCRC32 };
});
`

// jsPutResult is what jsPutObject prints.
type jsPutResult struct {
	ETag          string
	ChecksumCRC32 string
}

// wantJSObject checks the object a JS upload stored upstream against body and the ETag the SDK got.
func wantJSObject(t *testing.T, p *proxy, key string, body []byte, etag string) {
	t.Helper()
	got, head := upstream.GetObject(t, p.UpBucket, key)
	if !bytes.Equal(got, body) {
		t.Fatalf("%s: stored object differs (%d of %d bytes)", key, len(got), len(body))
	}
	if etag != aws.ToString(head.ETag) {
		t.Errorf("%s: the SDK got ETag %s; upstream has %s", key, etag, aws.ToString(head.ETag))
	}
}

// jsPutCases runs jsPutObject for each size with the body given as mode ("buffer" or "stream").
func jsPutCases(t *testing.T, p *proxy, mode string, sizes ...int) {
	t.Helper()
	for i, size := range sizes {
		t.Run(fmt.Sprintf("%s-%d", mode, size), func(t *testing.T) {
			body := s3test.RandomBytes(size, int64(100+i))
			key := fmt.Sprintf("js/put ключ-%s-%d", mode, size)
			var res jsPutResult
			sent := runJS(t, p.clientEnv(), &res, jsPutObject, p.Bucket, key, s3test.TempFile(t, body), mode)
			if len(sent) != 1 {
				t.Fatalf("the SDK sent %d requests; want 1", len(sent))
			}
			wantCRC32(t, sent[0])
			wantJSObject(t, p, key, body, res.ETag)
			_, head := upstream.GetObject(t, p.UpBucket, key)
			if aws.ToString(head.ContentType) != "application/x-js" || head.Metadata["via"] != "js-sdk" {
				t.Errorf("headers: Content-Type %q, metadata %v", aws.ToString(head.ContentType), head.Metadata)
			}
		})
	}
}

// PutObject with the JS SDK's defaults, path-style, from a Buffer: signed hex SHA-256 and an
// x-amz-checksum-crc32 header. (A file-stream body goes out as aws-chunked with Transfer-Encoding:
// chunked: TestJSPutObjectStream.)
func TestJSPutObject(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		jsPutCases(t, p, "buffer", 0, 5000, 1<<20+17)
	})
}

// The JS SDK's PutObject of a file stream: aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER with a
// CRC32 trailer, Transfer-Encoding: chunked instead of Content-Length (tecoding.go).
func TestJSPutObjectStream(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		jsPutCases(t, p, "stream", 5000, 3<<20+5)
	})
}

const jsUpload = `
const { Upload } = require("@aws-sdk/lib-storage");
main(async () => {
  const [bucket, key, file, mode] = process.argv.slice(1);
  const s3 = client({});
  const Body = mode === "stream" ? fs.createReadStream(file) : fs.readFileSync(file);
  const up = new Upload({ client: s3, params: { Bucket: bucket, Key: key, Body, ContentType: "application/x-js-mp" },
    partSize: 5 * 1024 * 1024, queueSize: 4, leavePartsOnError: false });
  const r = await up.done();
  return { ETag: r.ETag };
});
`

// lib-storage Upload with the SDK's defaults, path-style: 12 MiB in 5 MiB parts (three parts, four
// at once), from a Buffer and from a file stream.
func TestJSMultipartUpload(t *testing.T) {
	p := startProxy(t)
	for i, mode := range []string{"buffer", "stream"} {
		t.Run(mode, func(t *testing.T) {
			body := s3test.RandomBytes(12<<20+3, int64(200+i))
			key := "js/upload-" + mode
			var res jsPutResult
			sent := runJS(t, p.clientEnv(), &res, jsUpload, p.Bucket, key, s3test.TempFile(t, body), mode)
			parts := 0
			for _, s := range sent {
				if _, ok := s.Query["partNumber"]; ok && s.Method == "PUT" {
					parts++
					wantCRC32(t, s)
				}
			}
			if parts != 3 {
				t.Errorf("the SDK sent %d UploadPart requests; want 3", parts)
			}
			wantJSObject(t, p, key, body, res.ETag)
			wantMultipartObject(t, p, key, body)
		})
	}
}

// jsVirtualHosted makes client() address buckets virtual-hosted style at MIZUCHI_VHOST_ENDPOINT
// (http://s3.example.test:PORT) and resolves every *.s3.example.test name to 127.0.0.1 in the
// client's own http.Agent (the machine's resolver and /etc/hosts are left alone).
const jsVirtualHosted = `
const dns = require("dns");
function lookup(hostname, options, cb) {
  if (typeof options === "function") { cb = options; options = {}; }
  if (hostname !== "s3.example.test" && !hostname.endsWith(".s3.example.test")) return dns.lookup(hostname, options, cb);
  if (options && options.all) return cb(null, [{ address: "127.0.0.1", family: 4 }]);
  cb(null, "127.0.0.1", 4);
}
const vhostAgent = new http.Agent({ keepAlive: true, lookup });
const plainClient = client;
client = (opts) => plainClient({ endpoint: process.env.MIZUCHI_VHOST_ENDPOINT, forcePathStyle: false,
  requestHandler: { httpAgent: vhostAgent }, ...opts });
`

// The JS SDK's defaults (forcePathStyle false): PutObject and lib-storage Upload to
// http://<bucket>.s3.example.test:PORT/<key>.
func TestJSVirtualHosted(t *testing.T) {
	p := startProxy(t, func(o *engine.Options) { o.VirtualHostSuffixes = []string{"s3.example.test"} })
	e := p.clientEnv()
	e.Extra = append(e.Extra, "MIZUCHI_VHOST_ENDPOINT=http://s3.example.test:"+p.Addr[strings.LastIndexByte(p.Addr, ':')+1:])
	wantHost := p.Bucket + ".s3.example.test"
	checkSent := func(t *testing.T, sent []jsSent) {
		t.Helper()
		for _, s := range sent {
			if s.Host != wantHost || strings.HasPrefix(s.Path, "/"+p.Bucket+"/") {
				t.Errorf("%s: not virtual-hosted style (want host %s, path without the bucket)", s, wantHost)
			}
		}
	}
	for i, size := range []int{5000, 1<<20 + 17} {
		t.Run(fmt.Sprint("put-", size), func(t *testing.T) {
			body := s3test.RandomBytes(size, int64(400+i))
			key := fmt.Sprintf("js/vhost/put-%d", size)
			var res jsPutResult
			sent := runJS(t, e, &res, jsVirtualHosted+jsPutObject, p.Bucket, key, s3test.TempFile(t, body), "buffer")
			checkSent(t, sent)
			if len(sent) == 1 {
				wantCRC32(t, sent[0])
			}
			wantJSObject(t, p, key, body, res.ETag)
		})
	}
	t.Run("upload", func(t *testing.T) {
		body := s3test.RandomBytes(12<<20, 410)
		var res jsPutResult
		sent := runJS(t, e, &res, jsVirtualHosted+jsUpload, p.Bucket, "js/vhost/upload", s3test.TempFile(t, body), "buffer")
		checkSent(t, sent)
		wantJSObject(t, p, "js/vhost/upload", body, res.ETag)
		wantMultipartObject(t, p, "js/vhost/upload", body)
	})
}

// jsPresignedPut makes a presigned PutObject URL with @aws-sdk/s3-request-presigner, with the
// client's requestChecksumCalculation set to argv[4] unless it is "default", and PUTs the file to it
// with node's fetch.
const jsPresignedPut = `
const { getSignedUrl } = require("@aws-sdk/s3-request-presigner");
main(async () => {
  const [bucket, key, file, calc] = process.argv.slice(1);
  const s3 = client(calc === "default" ? {} : { requestChecksumCalculation: calc });
  const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: bucket, Key: key, ContentType: "application/x-presigned" }),
    { expiresIn: 300 });
  const r = await fetch(url, { method: "PUT", body: fs.readFileSync(file), headers: { "content-type": "application/x-presigned" } });
  return { url, status: r.status, etag: r.headers.get("etag") || "", text: await r.text() };
});
`

type jsPresignResult struct {
	URL    string `json:"url"`
	Status int    `json:"status"`
	ETag   string `json:"etag"`
	Text   string `json:"text"`
}

// A presigned PutObject URL from the JS SDK's presigner, used with fetch. With
// requestChecksumCalculation WHEN_REQUIRED the URL carries no checksum and the upload must work.
// With the SDK's default the presigner bakes the CRC32 of an empty body (AAAAAA==) into the URL:
// the proxy refuses such a hoisted checksum with 400 InvalidRequest (README, "Presigned URLs"),
// and nothing is stored — never an object under a checksum nobody verified.
func TestJSPresignedPut(t *testing.T) {
	p := startProxy(t)
	for i, calc := range []string{"WHEN_REQUIRED", "default"} {
		t.Run(calc, func(t *testing.T) {
			body := s3test.RandomBytes(300000, int64(500+i))
			key := "js/presigned-" + calc
			var res jsPresignResult
			runJS(t, p.clientEnv(), &res, jsPresignedPut, p.Bucket, key, s3test.TempFile(t, body), calc)
			t.Logf("presigned URL %s → %d %s", res.URL, res.Status, res.Text)
			hasCRC := strings.Contains(res.URL, "x-amz-checksum-crc32=")
			if calc == "WHEN_REQUIRED" {
				if hasCRC {
					t.Errorf("WHEN_REQUIRED: the URL carries a checksum: %s", res.URL)
				}
				if res.Status != 200 {
					t.Fatalf("PUT to the presigned URL: %d %s", res.Status, res.Text)
				}
			} else if !hasCRC {
				t.Logf("the presigner baked no checksum into the URL (SDK behaviour changed?)")
			}
			switch res.Status {
			case 200:
				got, head := upstream.GetObject(t, p.UpBucket, key)
				if !bytes.Equal(got, body) {
					t.Fatalf("stored object differs (%d of %d bytes)", len(got), len(body))
				}
				if res.ETag != aws.ToString(head.ETag) {
					t.Errorf("ETag %s; upstream has %s", res.ETag, aws.ToString(head.ETag))
				}
				if ct := aws.ToString(head.ContentType); ct != "application/x-presigned" {
					t.Errorf("Content-Type %q", ct)
				}
			case 400:
				if calc == "WHEN_REQUIRED" || !strings.Contains(res.Text, "<Code>InvalidRequest</Code>") {
					t.Errorf("400 without InvalidRequest: %s", res.Text)
				}
				if upstream.ObjectExists(t, p.UpBucket, key) {
					t.Errorf("an object was stored after a refused upload")
				}
			default:
				t.Fatalf("PUT to the presigned URL: %d %s", res.Status, res.Text)
			}
		})
	}
}
