package engine

import (
	"net/url"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/httpparse"
)

// Edge cases of admit where a declaration (aws-chunked sizes, the payload hash, dot segments in
// a key) could make the proxy do something else than what it checked.

// TestAdmitChunkedBodyWithinLimits: an aws-chunked PutObject declares the object's size in
// x-amz-decoded-content-length, but what crosses the proxy is Content-Length bytes. A body far
// larger than the declared object (here decoded 1 byte, Content-Length above MaxObjectSize and
// above S3's 5 GiB single-PUT limit, on a bucket without auto-chunking) must be refused before the
// first body byte, as the same PutObject without aws-chunked is.
func TestAdmitChunkedBodyWithinLimits(t *testing.T) {
	e := newAdmitEngine(t)
	for _, cl := range []int64{admitMaxObj + 1, 100 * gib} {
		r := admitReq{method: "PUT", path: "/sig/k", cl: n64(cl), payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			hdr: []string{"Content-Encoding: aws-chunked", "X-Amz-Decoded-Content-Length: 1"}}
		wire := r.wire(t)
		h := Head{req: parseHead(t, e, wire), buf: wire}
		d := e.admit(&h)
		if d.verdict != verdictRefuse || d.err.Status != 400 {
			t.Errorf("aws-chunked PutObject, Content-Length %d, decoded 1: admit = %v, %s; want a 400 refusal (EntityTooLarge)",
				cl, d.verdict, errString(d.err))
		}
	}
}

// removeDotSegments is RFC 3986 5.2.4 on a decoded absolute path, as HTTP servers and proxies in
// front of an S3 upstream (nginx, fasthttp's default path normalizing) apply it.
func removeDotSegments(p string) string {
	var out []string
	segs := strings.Split(p, "/")[1:]
	for i, s := range segs {
		switch s {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
			continue
		}
		if i == len(segs)-1 {
			out = append(out, "") // a trailing dot segment leaves the directory
		}
	}
	return "/" + strings.Join(out, "/")
}

// TestAdmitUpstreamPathInBucket: the upstream path of an admitted request names the bucket's
// upstream bucket and the client's key, even for an upstream that removes dot segments. A key
// with "." or ".." segments (raw or percent-encoded) must be refused, or sent so that it cannot
// reach another bucket (or the bucket itself: PUT /upstream is CreateBucket) with the proxy's
// upstream credentials. (AWS S3 takes such keys literally; an upstream behind a path-normalizing
// front end does not.)
func TestAdmitUpstreamPathInBucket(t *testing.T) {
	e := newAdmitEngine(t)
	for _, key := range []string{
		"../other/k", "%2E%2E/other/k", "%2e%2e%2Fother%2Fk", "a/../../other/k", "./../other/k",
		"a/..", "..", "a/.", ".", "a/%2E%2E",
		"ok/..k", "ok/k..", "ok/...", "ok/.k", // not dot segments: fine either way
	} {
		r := admitReq{method: "PUT", path: "/open/" + key, cl: "1", noSign: true} // auth none: no signature to get wrong
		wire := r.wire(t)
		var p httpparse.Parser
		req := new(httpparse.Request)
		if err := p.Parse(wire, e.limits, req); err != nil {
			continue // refused before admit
		}
		h := Head{req: req, buf: wire}
		d := e.admit(&h)
		if d.verdict == verdictRefuse {
			continue
		}
		st := &connState{req: req, rt: d.rt, bodyLen: d.bodyLen, principal: d.principal}
		j := e.newJob(st, h.Path(), sideLoop)
		if err := e.buildUpstreamHead(j, st, j.bucket, wire); err != nil {
			j.release()
			continue // 400 InvalidURI
		}
		upPath := string(j.path)
		j.release()
		dec, err := url.PathUnescape(upPath)
		if err != nil {
			t.Errorf("key %q: upstream path %q does not decode: %v", key, upPath, err)
			continue
		}
		if got := removeDotSegments(dec); !strings.HasPrefix(got, "/upstream/") || got == "/upstream/" {
			t.Errorf("key %q: admitted (%v) and sent upstream as %q, which a normalizing upstream reads as %q: not an object of bucket \"upstream\"",
				key, d.verdict, upPath, got)
		}
	}
}

// TestAdmitStreamingPayloadAutoChunkedDecoded: x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER
// says the body is aws-chunked framed, whatever Content-Encoding says. Above the auto-chunk
// threshold such a body must never be cut into parts as raw bytes (the object would hold the chunk
// framing and the trailer): it is auto-chunked with its framing decoded.
func TestAdmitStreamingPayloadAutoChunkedDecoded(t *testing.T) {
	e := newAdmitEngine(t)
	r := admitReq{method: "PUT", path: "/chunky/k", cl: n64(autoThreshold + 200), payload: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		hdr: []string{"X-Amz-Decoded-Content-Length: " + n64(autoThreshold+1), "X-Amz-Trailer: x-amz-checksum-crc32"}}
	wire := r.wire(t)
	h := Head{req: parseHead(t, e, wire), buf: wire}
	d := e.admit(&h)
	if d.verdict != verdictAutoChunk || d.chunks.mode != chunksUnsignedTrailer || d.chunks.trailer != checksumCRC32 || d.chunks.decoded != autoThreshold+1 {
		t.Errorf("STREAMING-UNSIGNED-PAYLOAD-TRAILER body without Content-Encoding: aws-chunked: admit = %v, %+v; want auto-chunk with the framing decoded",
			d.verdict, d.chunks)
	}
}
