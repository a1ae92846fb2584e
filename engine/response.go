package engine

import (
	"strconv"

	"github.com/mizuchi/uploadr/httpparse"
)

// errorResponse fills j.resp with an S3 error document and returns its status.
func (e *Engine) errorResponse(j *job, s3err *s3Error, closeConn bool) int {
	j.resp = appendErrorResponse(j.resp[:0], s3err, j.resource, j.reqID[:], j.cors, closeConn)
	return s3err.Status
}

// selfAnswer renders into st.scratch an answer the proxy gives itself: the S3 error s3err (counted
// as a refusal), or for a nil s3err the 200 answer to an allowed CORS preflight (cors.go). Either
// carries the request's CORS header lines. It returns the status and the access log's mode.
func (e *Engine) selfAnswer(st *connState, s3err *s3Error, resource []byte, closeConn bool) (status int, mode string) {
	if s3err == nil {
		st.scratch = appendPreflightResponse(st.scratch[:0], st.cors, st.reqID[:], closeConn)
		return 200, "none"
	}
	st.scratch = appendErrorResponse(st.scratch[:0], s3err, resource, st.reqID[:], st.cors, closeConn)
	// Counted before the answer goes out: a client that reads it finds the counters moved.
	e.metrics.refusal(s3err)
	return s3err.Status, "refused"
}

// relayResponse copies the upstream's response into j.resp for the client: status line, end-to-end
// headers (ETag, x-amz-version-id, x-amz-checksum-*, …) and the body framed as the upstream framed
// it; hop-by-hop headers are dropped and Connection: close added when closing.
func (e *Engine) relayResponse(j *job, u *upConn, resp *upResponse, closeConn bool) int {
	return e.relay(j, u.rbuf, &resp.head, resp.total, closeConn)
}

// relay renders the response held in buf (head parsed into h, head and body buf[:total]) into j.resp.
// The client gets the proxy's request id (the one in the access log); the upstream's first
// x-amz-request-id goes in x-mizuchi-upstream-request-id and the log (a repeated one is dropped).
func (e *Engine) relay(j *job, buf []byte, h *httpparse.Response, total int, closeConn bool) int {
	j.upStatus = h.Status
	if rewritesUploadID(j, h.Status) {
		return e.relayUploadID(j, buf, h, total, closeConn)
	}
	out := e.relayHead(j, j.resp[:0], buf, h, false)
	if closeConn {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	out = append(out, buf[h.HeadLen:total]...)
	j.resp = out
	return h.Status
}

// relayHead appends the status line and headers of the response in buf to out, up to but not
// including Connection and the blank line; reframe drops the upstream's Content-Length and
// Transfer-Encoding (the caller frames a body of its own).
func (e *Engine) relayHead(j *job, out, buf []byte, h *httpparse.Response, reframe bool) []byte {
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(h.Status), 10)
	out = append(out, ' ')
	if r := h.Reason.Bytes(buf); len(r) > 0 {
		out = append(out, r...)
	} else {
		out = append(out, statusText(h.Status)...)
	}
	out = append(out, "\r\n"...)
	j.upReqID = j.upReqID[:0]
	seenID := false
	for i := 0; i < h.NumHeaders; i++ {
		name := h.Headers[i].Name.Bytes(buf)
		if isResponseHopHeader(name) || reframe && isFramingHeader(name) || isAccessControlHeader(name) {
			continue
		}
		value := h.Headers[i].Value.Bytes(buf)
		if len(name) == len("x-amz-request-id") && equalFoldASCII(name, "x-amz-request-id") {
			if seenID {
				continue
			}
			seenID = true
			j.upReqID = append(j.upReqID, value...)
			out = append(out, upstreamIDHeader...)
		} else {
			out = append(out, name...)
		}
		out = append(out, ": "...)
		out = append(out, value...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "x-amz-request-id: "...)
	out = append(out, j.reqID[:]...)
	out = append(out, "\r\n"...)
	return appendCORSHeaders(out, j)
}

// isFramingHeader reports Content-Length and Transfer-Encoding.
func isFramingHeader(name []byte) bool {
	return len(name) == len("content-length") && equalFoldASCII(name, "content-length") ||
		len(name) == len("transfer-encoding") && equalFoldASCII(name, "transfer-encoding")
}

// upstreamIDHeader carries the upstream's x-amz-request-id to the client.
const upstreamIDHeader = "x-mizuchi-upstream-request-id"

var responseHopHeaders = [...]string{"connection", "keep-alive", "proxy-connection", "upgrade", "te"}

func isResponseHopHeader(name []byte) bool {
	for _, h := range responseHopHeaders {
		if len(name) == len(h) && equalFoldASCII(name, h) {
			return true
		}
	}
	return false
}
