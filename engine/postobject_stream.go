package engine

import (
	"io"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/postform"
	"github.com/mizuchi/uploadr/s3sig"
)

// streamPost sends the PutObject head upstream, copies the file (pre, then the socket) and
// answers the client as S3 answers a PostObject.
func (e *Engine) streamPost(j *job, client net.Conn, sr *stallReader, pre []byte, up *postUpload) outcome {
	read := func() int64 { return j.post.bodyLen - sr.n }
	j.traceUpstream(upstreamNames[opPutObject], nil) // the head names it
	head, err := e.postUpstreamHead(j, up)
	if err != nil {
		j.endUpstream(0, errInternal)
		return e.postFailed(j, client, errInternal, read())
	}
	u, s3err := e.sendHead(j, head)
	if s3err != nil {
		j.endUpstream(0, s3err)
		return e.postFailed(j, client, s3err, read())
	}
	w := watchResponse(e.killCtx, u, e.limits)
	cerr, forwardFailed := e.copyPostFile(j, u, w, &prefixReader{pre: pre, r: sr}, up.size)
	switch {
	case forwardFailed:
		// The upstream answered early or stopped reading: relay its answer.
		_ = u.c.SetReadDeadline(time.Now().Add(lingerTime))
		return e.postAnswer(j, client, u, w, up, false, read())
	case cerr != nil:
		u.reset() // the upstream sees an error, never a clean end of a short body: nothing is stored
		<-w.done
		w.cancel()
		return e.postFailed(j, client, cerr, read())
	}
	_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
	return e.postAnswer(j, client, u, w, up, true, read())
}

// postFailed answers a PostObject that failed once it had been accepted (the connection closes).
func (e *Engine) postFailed(j *job, client net.Conn, s3err *s3Error, read int64) outcome {
	j.trace.refused(s3err)
	e.errorResponse(j, s3err, true)
	status := s3err.Status
	if !writeAll(client, j.resp, e.opts.BodyStallTimeout) && s3err == errIncompleteBody {
		status = 499
	}
	return outcome{status: status, bodyBytes: read, mode: "copy", closeClient: true}
}

// postUpstreamHead builds and signs the upstream PutObject: the form's key in the upstream bucket,
// Content-Length the file's length, the forwarded fields as headers, UNSIGNED-PAYLOAD (the proxy
// checks the framing; a checksum field, when sent, is verified by the upstream).
func (e *Engine) postUpstreamHead(j *job, up *postUpload) ([]byte, error) {
	b := j.bucket
	if err := j.setUpstreamPath(b, up.encKey); err != nil {
		return nil, err
	}
	j.query = j.query[:0]
	hs := e.baseHeaders(j, b, unsignedPayload)
	j.num = strconv.AppendInt(j.num[:0], up.size, 10)
	hs = append(hs, s3sig.Header{Name: contentLengthName, Value: j.num})
	hs = append(hs, up.headers...)
	if up.noOverwrite {
		hs = append(hs, s3sig.Header{Name: ifNoneMatchName, Value: anyETag})
	}
	j.sigHdrs = hs
	return e.appendSignedHead(nil, j, b, []byte("PUT"), hs, unsignedPayload, "")
}

// copyPostFile copies size file bytes from r to the upstream through a pooled buffer, scanning
// them for the multipart delimiter, then reads the closing delimiter and checks it before the
// file's last byte goes. cerr is the client's failure; forwardFailed reports that the upstream
// answered early or stopped reading.
func (e *Engine) copyPostFile(j *job, u *upConn, w *watcher, r io.Reader, size int64) (cerr *s3Error, forwardFailed bool) {
	lent := e.mover.Borrow() // within copy_memory_max (past it, a 16 KiB overflow buffer)
	defer e.mover.Return(lent)
	buf := lent.Bytes()
	defer u.c.SetWriteDeadline(time.Time{})
	write := func(p []byte) bool {
		if w.ctx.Err() != nil {
			return false
		}
		_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
		_, err := u.c.Write(p)
		return err == nil
	}
	if j.post.whole {
		// The body was read and checked whole (postWholeMax): r holds exactly the file's bytes.
		for left := size; left > 0; {
			n, err := r.Read(buf[:min(int64(len(buf)), left)])
			if n == 0 {
				return postReadError(err), false
			}
			if !write(buf[:n]) {
				return nil, true
			}
			left -= int64(n)
		}
		return nil, false
	}
	sc := postform.NewScanner(j.post.boundary)
	hold := min(size, 1) // the file's last byte waits for the closing delimiter
	for left := size - hold; left > 0; {
		if e.killCtx.Err() != nil {
			return errShuttingDown, false
		}
		n, err := r.Read(buf[:min(int64(len(buf)), left)])
		if n > 0 {
			if sc.Write(buf[:n]) {
				return errPostTail, false // more parts follow the file
			}
			if !write(buf[:n]) {
				return nil, true
			}
			left -= int64(n)
		}
		if err != nil && left > 0 {
			return postReadError(err), false
		}
	}
	tail := postform.Tail(j.post.boundary)
	last := buf[:hold+int64(len(tail))]
	if _, err := io.ReadFull(r, last); err != nil {
		return postReadError(err), false
	}
	if hold > 0 && sc.Write(last[:1]) || string(last[hold:]) != tail {
		return errPostTail, false
	}
	if hold > 0 && !write(last[:1]) {
		return nil, true
	}
	return nil, false
}

func postReadError(err error) *s3Error {
	if isTimeout(err) {
		return errRequestTimeout
	}
	return errIncompleteBody
}

// postAnswer waits for the upstream's answer and answers the client: S3's PostObject success
// (204, 200, 201 with a PostResponse document, or 303 to success_action_redirect) for a stored
// object, the upstream's answer relayed otherwise.
func (e *Engine) postAnswer(j *job, client net.Conn, u *upConn, w *watcher, up *postUpload, bodyDone bool, read int64) outcome {
	a := <-w.done
	w.cancel()
	if a.err != nil {
		if bodyDone || !a.started {
			u.reset()
		} else {
			u.close()
		}
		e.metrics.upstreamErrors.Inc()
		s3err := errBadGateway
		if isTimeout(a.err) {
			s3err = errUpstreamTimeout
		}
		j.endUpstream(0, s3err)
		return e.postFailed(j, client, s3err, read)
	}
	closeClient := !bodyDone || !j.keepAlive
	h := &a.resp.head
	j.upStatus = h.Status
	j.endUpstream(h.Status, nil)
	status := h.Status
	if h.Status == 200 && bodyDone {
		status = e.postSuccess(j, u.rbuf, h, closeClient)
	} else {
		e.relayResponse(j, u, &a.resp, closeClient)
	}
	u.release(bodyDone && a.resp.keepAlive)
	if !writeAll(client, j.resp, e.opts.BodyStallTimeout) {
		closeClient = true
	}
	return outcome{status: status, bodyBytes: read, mode: "copy", closeClient: closeClient}
}

// postSuccess renders S3's answer to a stored PostObject into j.resp and returns its status.
func (e *Engine) postSuccess(j *job, buf []byte, h *httpparse.Response, closeClient bool) int {
	var etag, version []byte
	j.upReqID = j.upReqID[:0]
	for i := 0; i < h.NumHeaders; i++ {
		name, value := h.Headers[i].Name.Bytes(buf), h.Headers[i].Value.Bytes(buf)
		switch {
		case len(name) == 4 && equalFoldASCII(name, "etag"):
			etag = value
		case len(name) == len("x-amz-version-id") && equalFoldASCII(name, "x-amz-version-id"):
			version = value
		case len(name) == len("x-amz-request-id") && equalFoldASCII(name, "x-amz-request-id") && len(j.upReqID) == 0:
			j.upReqID = append(j.upReqID, value...)
		}
	}
	return e.renderPostSuccess(j, etag, version, closeClient)
}

// renderPostSuccess renders S3's answer to a stored PostObject (ETag and version as the upstream
// gave them) into j.resp and returns its status: 303 to a valid success_action_redirect, else
// success_action_status 201 (with the PostResponse document), 200, or 204.
func (e *Engine) renderPostSuccess(j *job, etag, version []byte, closeClient bool) int {
	up := j.post.up
	location := j.post.scheme + j.post.host + string(j.resource)
	status, reason := up.status, ""
	var body []byte
	redirect := postRedirect(up.redirect, j.post.bucket, up.key, string(etag))
	switch {
	case redirect != "":
		status, reason, location = 303, "See Other", redirect
	case status == 201:
		reason = "Created"
		body = append(body, `<?xml version="1.0" encoding="UTF-8"?>`+"\n<PostResponse><Location>"...)
		body = appendXMLEscaped(body, []byte(location))
		body = append(body, "</Location><Bucket>"...)
		body = appendXMLEscaped(body, []byte(j.post.bucket))
		body = append(body, "</Bucket><Key>"...)
		body = appendXMLEscaped(body, []byte(up.key))
		body = append(body, "</Key><ETag>"...)
		body = appendXMLEscaped(body, etag)
		body = append(body, "</ETag></PostResponse>"...)
	case status == 200:
		reason = "OK"
	default:
		status, reason = 204, "No Content"
	}
	out := append(j.resp[:0], "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, reason...)
	out = append(out, "\r\n"...)
	if len(etag) > 0 {
		out = append(append(append(out, "ETag: "...), etag...), "\r\n"...)
	}
	if len(version) > 0 {
		out = append(append(append(out, "x-amz-version-id: "...), version...), "\r\n"...)
	}
	out = append(append(append(out, "Location: "...), location...), "\r\n"...)
	if len(j.upReqID) > 0 {
		out = append(append(append(out, upstreamIDHeader+": "...), j.upReqID...), "\r\n"...)
	}
	out = append(append(append(out, "x-amz-request-id: "...), j.reqID[:]...), "\r\n"...)
	out = appendCORSHeaders(out, j) // the bucket's CORS headers for the request's Origin (cors.go)
	if len(body) > 0 {
		out = append(out, "Content-Type: application/xml\r\n"...)
	}
	if status != 204 {
		out = append(strconv.AppendInt(append(out, "Content-Length: "...), int64(len(body)), 10), "\r\n"...)
	}
	if closeClient {
		out = append(out, "Connection: close\r\n"...)
	}
	j.resp = append(append(out, "\r\n"...), body...)
	return status
}

// postRedirect is success_action_redirect with bucket, key and etag added to its query, as S3
// redirects; "" when there is none or it is not an absolute http(s) URL (S3 then answers with the
// status instead).
func postRedirect(raw, bucket, key, etag string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	q := u.Query()
	q.Set("bucket", bucket)
	q.Set("key", key)
	q.Set("etag", etag)
	u.RawQuery = q.Encode()
	if s := u.String(); validHeaderValue(s) {
		return s
	}
	return ""
}
