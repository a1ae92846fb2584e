package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/s3sig"
	"github.com/mizuchi/uploadr/transfer"
)

// Headers of the client's PutObject that do not go on CreateMultipartUpload: they describe the
// body (verified by the proxy itself) or the write condition (sent with Complete).
var notOnCreate = [...]string{"content-length", "content-md5", "x-amz-sdk-checksum-algorithm",
	"x-amz-decoded-content-length", "x-amz-trailer", "if-match", "if-none-match"}

func isNotOnCreate(name []byte) bool {
	if len(name) > len("x-amz-checksum-") && equalFoldASCII(name[:len("x-amz-checksum-")], "x-amz-checksum-") {
		return true
	}
	for _, h := range notOnCreate {
		if len(name) == len(h) && equalFoldASCII(name, h) {
			return true
		}
	}
	return false
}

// copyHeaders copies the client's end-to-end headers out of gnet's buffer into j.hdrs: those it
// signed and those S3 accepts unsigned (forwardHeader; signed is nil without a SigV4 signature).
func (j *job) copyHeaders(req *httpparse.Request, buf, signed []byte) {
	j.hdrBuf = j.hdrBuf[:0]
	type span struct{ n0, n1, v1 int }
	var spans [128]span
	ns := 0
	for i := 0; i < req.NumHeaders && ns < len(spans); i++ {
		h := req.Headers[i]
		name := h.Name.Bytes(buf)
		if isHopHeader(name) && !(len(name) == len("x-amz-content-sha256") && equalFoldASCII(name, "x-amz-content-sha256")) ||
			!forwardHeader(name, signed) || j.trace.span != nil && isTraceHeader(name) {
			continue
		}
		value := h.Value.Bytes(buf)
		if isContentEncoding(name) {
			// Parts carry plain bytes: no aws-chunked coding goes upstream (withoutAWSChunked).
			if value = withoutAWSChunked(&j.enc, value); len(value) == 0 {
				continue
			}
		}
		n0 := len(j.hdrBuf)
		j.hdrBuf = append(j.hdrBuf, name...)
		n1 := len(j.hdrBuf)
		j.hdrBuf = append(j.hdrBuf, value...)
		spans[ns] = span{n0, n1, len(j.hdrBuf)}
		ns++
	}
	j.hdrs = j.hdrs[:0]
	for _, s := range spans[:ns] {
		j.hdrs = append(j.hdrs, ownedHeader{name: j.hdrBuf[s.n0:s.n1], value: j.hdrBuf[s.n1:s.v1]})
	}
}

// partSizeFor picks the part size: the configured one, grown (in whole MiB) so that no object needs
// more than 10,000 parts.
func partSizeFor(total, configured int64) int64 {
	ps := configured
	if ps < minPartSize {
		ps = minPartSize
	}
	if total > ps*maxParts {
		ps = (total + maxParts - 1) / maxParts
		ps = (ps + (1 << 20) - 1) &^ ((1 << 20) - 1)
	}
	return ps
}

// chunkedPut is one auto-chunked PutObject in progress.
type chunkedPut struct {
	j        *job
	client   net.Conn
	uploadID []byte // URI-encoded
	etags    []string
	moved    transfer.Result
	src      partSource      // an aws-chunked body (parts are cut from its decoded bytes), a form's file
	ctx      context.Context // ends when a part fails (or at the drain deadline)
	cancel   context.CancelFunc

	mu         sync.Mutex
	failed     bool
	status     int
	s3err      *s3Error // the proxy's own answer; nil when an upstream answer was relayed into j.resp
	clientGone bool

	parts []Span // a recorded request's part spans (trace.go); nil otherwise
}

// fail records the first failure of the upload (later ones are ignored) and stops the other parts.
// relay, when set, renders an upstream answer into j.resp and returns its status.
func (p *chunkedPut) fail(s3err *s3Error, relay func() int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed {
		return
	}
	p.failed = true
	if relay != nil {
		p.status = relay()
	} else {
		p.s3err, p.status = s3err, s3err.Status
	}
	p.cancel()
}

// autoChunk performs the multipart upload for j and writes the client's answer: createUpload,
// sendParts, completeUpload. On any failure the upload is aborted upstream so no object and no
// orphaned upload remain.
func (e *Engine) autoChunk(j *job, client net.Conn) (status int, reuse bool, moved transfer.Result) {
	digests, s3err := parseWholeDigests(j.hdrs)
	if s3err != nil {
		return e.answer(j, client, s3err), false, moved
	}
	uploadID, status, s3err := e.createUpload(j)
	switch {
	case s3err != nil:
		return e.answer(j, client, s3err), false, moved
	case uploadID == nil: // the upstream refused: its answer is in j.resp
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return status, false, moved
	}
	p := &chunkedPut{j: j, client: client, uploadID: uploadID}
	p.ctx, p.cancel = context.WithCancel(e.killCtx)
	defer p.cancel()
	if j.expect100 && j.remaining != 0 && !writeAll(client, continueResponse, e.opts.BodyStallTimeout) {
		e.abortUploadRetrying(j.bucket, j.path, uploadID, j.reqID, j.trace.span)
		return 499, false, moved
	}
	if ci := &j.chunked.info; ci.mode != chunksNone {
		cs := getChunkState(j, client, e.opts.BodyStallTimeout)
		cs.cr.signed = ci.mode != chunksUnsignedTrailer
		defer cs.release()
		defer client.SetReadDeadline(time.Time{})
		defer func() { j.chunked = chunkJob{} }() // the seed holds a signing key
		p.src = &chunkSource{cs: cs, ci: ci}
	}
	if j.post != nil && j.post.src != nil {
		p.src = j.post.src // a PostObject's file (postobject_autochunk.go)
	}
	e.sendParts(p, digests)
	if !p.failed && p.src != nil {
		// The final chunk and the trailer: signatures and the trailing checksum, before Complete.
		if s3err := p.src.finish(); s3err != nil {
			p.fail(s3err, nil)
		}
	}
	if !p.failed && digests != nil {
		if s3err := digests.verify(); s3err != nil {
			p.fail(s3err, nil)
		}
	}
	if p.failed {
		e.abortUploadRetrying(j.bucket, j.path, uploadID, j.reqID, j.trace.span)
		if p.s3err != nil {
			status = e.answer(j, client, p.s3err)
			if p.clientGone && status == 499 {
				return 499, false, p.moved
			}
			return status, false, p.moved
		}
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return p.status, false, p.moved
	}
	status, ok := e.completeUpload(p)
	if !ok {
		e.abortUploadRetrying(j.bucket, j.path, uploadID, j.reqID, j.trace.span)
	}
	if !writeAll(client, j.resp, e.opts.BodyStallTimeout) || !ok {
		return status, false, p.moved
	}
	return status, j.keepAlive, p.moved
}

// createUpload sends CreateMultipartUpload with the object's headers. It returns the upload id
// (URI-encoded), or nil with the upstream's refusal relayed into j.resp, or an S3 error.
func (e *Engine) createUpload(j *job) ([]byte, int, *s3Error) {
	b := j.bucket
	hs := e.baseHeaders(j, b, []byte(s3sig.UnsignedPayload))
	for _, h := range j.hdrs {
		if j.chunked.info.mode != chunksNone && len(h.name) == len("content-encoding") && equalFoldASCII(h.name, "content-encoding") &&
			len(bytes.TrimSpace(h.value)) == len("aws-chunked") && equalFoldASCII(bytes.TrimSpace(h.value), "aws-chunked") {
			continue // the framing of the client's body, not a property of the object
		}
		if !isNotOnCreate(h.name) && !(len(h.name) == len("x-amz-content-sha256") && equalFoldASCII(h.name, "x-amz-content-sha256")) {
			hs = append(hs, s3sig.Header{Name: h.name, Value: h.value})
		}
	}
	j.query = append(j.query[:0], "uploads="...)
	j.traceUpstream(upstreamNames[opCreateMultipartUpload], nil)
	head, err := e.appendSignedHead(j.tmp2[:0], j, b, []byte("POST"), hs, []byte(s3sig.UnsignedPayload), "Content-Length: 0\r\n")
	j.tmp2 = head
	if err != nil {
		return nil, 0, errInternal
	}
	u, resp, s3err := e.roundTrip(j, head, nil)
	j.endUpstream(resp.head.Status, s3err)
	if s3err != nil {
		return nil, 0, s3err
	}
	if resp.head.Status != 200 {
		status := e.relayResponse(j, u, &resp, true)
		u.release(resp.keepAlive)
		return nil, status, nil
	}
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	xerr := xml.Unmarshal(u.rbuf[resp.head.HeadLen:resp.total], &created)
	u.release(resp.keepAlive)
	if xerr != nil || created.UploadID == "" {
		return nil, 0, errBadGateway
	}
	e.metrics.mpStarted.Inc()
	return s3sig.AppendURIEncode(nil, []byte(created.UploadID), false), 0, nil
}

// sendParts moves the body as parts: each part's body is spliced (or, with a whole-body digest,
// copied through the hashes) from the client socket, one after the other, with up to
// ConcurrentParts awaiting their upstream answer.
func (e *Engine) sendParts(p *chunkedPut, digests *wholeDigests) {
	j := p.j
	b := j.bucket
	partSize := partSizeFor(j.total, b.upload.PartSize)
	nparts := int((j.total + partSize - 1) / partSize)
	p.etags = make([]string, nparts)
	p.traceAutoChunk(nparts)
	var tee io.Writer
	if digests != nil {
		tee = digests.writer()
	}
	sem := make(chan struct{}, b.upload.ConcurrentParts)
	var wg sync.WaitGroup
	prefix := j.out
	if p.src != nil {
		prefix = nil // the decoder reads the buffered prefix itself
	}
	remaining := j.total
	for i := 0; i < nparts; i++ {
		select {
		case sem <- struct{}{}:
		case <-p.ctx.Done():
		}
		if p.ctx.Err() != nil {
			break
		}
		partLen := min(partSize, remaining)
		p.tracePart(i+1, partLen)
		u, s3err := e.sendPartHead(j, p.uploadID, i+1, partLen)
		if s3err != nil {
			p.endPart(i+1, 0, s3err)
			<-sem
			p.fail(s3err, nil)
			break
		}
		pre := prefix[:min(int64(len(prefix)), partLen)]
		prefix = prefix[len(pre):]
		w := watchResponse(p.ctx, u, e.limits)
		var res transfer.Result
		var err error
		if p.src != nil {
			res, err = e.movePart(w.ctx, u, p.src, partLen, tee)
		} else {
			res, err = e.moveBody(w.ctx, u, p.client, pre, partLen-int64(len(pre)), i == nparts-1, tee)
		}
		p.moved.Spliced += res.Spliced
		p.moved.Copied += res.Copied
		p.moved.PipeTooSmall = p.moved.PipeTooSmall || res.PipeTooSmall
		p.moved.Mode = res.Mode
		if err != nil {
			e.partBodyFailed(p, u, w, err)
			p.endPart(i+1, 0, p.failure())
			<-sem
			break
		}
		e.metrics.partsSent.Inc()
		remaining -= partLen
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			e.partAnswered(p, i, u, w)
		}(i)
	}
	wg.Wait()
	if !p.failed && remaining != 0 {
		if e.killCtx.Err() != nil {
			p.fail(errShuttingDown, nil)
		} else {
			p.fail(errInternal, nil)
		}
	}
}

// sendPartHead signs and sends the head of UploadPart number n.
func (e *Engine) sendPartHead(j *job, uploadID []byte, n int, partLen int64) (*upConn, *s3Error) {
	hs := e.baseHeaders(j, j.bucket, []byte(s3sig.UnsignedPayload))
	j.num = strconv.AppendInt(j.num[:0], partLen, 10)
	hs = append(hs, s3sig.Header{Name: []byte("content-length"), Value: j.num})
	j.query = append(j.query[:0], "partNumber="...)
	j.query = strconv.AppendInt(j.query, int64(n), 10)
	j.query = append(j.query, "&uploadId="...)
	j.query = append(j.query, uploadID...)
	head, err := e.appendSignedHead(j.tmp2[:0], j, j.bucket, []byte("PUT"), hs, []byte(s3sig.UnsignedPayload), "")
	j.tmp2 = head
	if err != nil {
		return nil, errInternal
	}
	return e.sendHead(j, head)
}

// partBodyFailed settles a part whose body did not move completely.
func (e *Engine) partBodyFailed(p *chunkedPut, u *upConn, w *watcher, err error) {
	defer w.cancel()
	var te *transfer.Error
	switch {
	case e.killCtx.Err() == nil && !errors.Is(err, errBodyTooLong) && p.ctx.Err() == nil &&
		(w.ctx.Err() != nil || errors.As(err, &te) && te.Side == transfer.SideDst):
		// The upstream answered early or stopped reading: relay its answer if one comes.
		_ = u.c.SetReadDeadline(time.Now().Add(lingerTime))
		a := <-w.done
		if a.err == nil && a.resp.head.Status != 200 {
			p.fail(nil, func() int { return e.relayResponse(p.j, u, &a.resp, true) })
		} else {
			p.fail(errBadGateway, nil)
		}
		u.close()
		return
	case p.ctx.Err() != nil && e.killCtx.Err() == nil:
		u.reset() // another part failed
		<-w.done
		return
	}
	u.reset()
	<-w.done
	s3err := clientFailure(err, e.killCtx.Err() != nil)
	if s3err == errIncompleteBody && !errors.Is(err, errBodyTooLong) {
		p.mu.Lock()
		p.clientGone = true
		p.mu.Unlock()
	}
	p.fail(s3err, nil)
}

// partAnswered waits for part i's upstream answer and keeps its ETag.
func (e *Engine) partAnswered(p *chunkedPut, i int, u *upConn, w *watcher) {
	defer w.cancel()
	_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
	a := <-w.done
	if p.parts != nil {
		p.traceAnswer(i, &a)
	}
	switch {
	case a.err != nil:
		u.close()
		if isTimeout(a.err) {
			p.fail(errUpstreamTimeout, nil)
		} else {
			p.fail(errBadGateway, nil)
		}
	case a.resp.head.Status != 200:
		p.fail(nil, func() int { return e.relayResponse(p.j, u, &a.resp, true) })
		u.release(a.resp.keepAlive)
	default:
		etag, _ := a.resp.head.Lookup(u.rbuf, "etag")
		p.etags[i] = string(etag.Bytes(u.rbuf))
		u.release(a.resp.keepAlive)
		if p.etags[i] == "" {
			p.fail(errBadGateway, nil)
		}
	}
}

// completeUpload sends CompleteMultipartUpload (with the client's write condition, If-None-Match: *
// under the bucket policy's no_overwrite) and renders the client's PutObject answer into j.resp.
// ok=false means the upload must be aborted.
func (e *Engine) completeUpload(p *chunkedPut) (status int, ok bool) {
	j := p.j
	b := j.bucket
	doc := appendCompleteXML(j.tmp[:0], p.etags)
	j.tmp = doc
	sum := sha256.Sum256(doc)
	payload := hex.AppendEncode(nil, sum[:])
	hs := e.baseHeaders(j, b, payload)
	j.num = strconv.AppendInt(j.num[:0], int64(len(doc)), 10)
	hs = append(hs, s3sig.Header{Name: []byte("content-length"), Value: j.num},
		s3sig.Header{Name: []byte("content-type"), Value: []byte("application/xml")})
	for _, h := range j.hdrs {
		if len(h.name) == len("if-match") && equalFoldASCII(h.name, "if-match") ||
			isIfNoneMatch(h.name) && !j.noOverwrite {
			hs = append(hs, s3sig.Header{Name: h.name, Value: h.value})
		}
	}
	if j.noOverwrite {
		hs = append(hs, s3sig.Header{Name: ifNoneMatchName, Value: anyETag}) // bucket policy no_overwrite
	}
	j.query = append(j.query[:0], "uploadId="...)
	j.query = append(j.query, p.uploadID...)
	j.traceUpstream(upstreamNames[opCompleteMultipartUpload], nil)
	head, err := e.appendSignedHead(j.tmp2[:0], j, b, []byte("POST"), hs, payload, "")
	j.tmp2 = head
	if err != nil {
		return e.errorResponse(j, errInternal, true), false
	}
	u, resp, s3err := e.roundTrip(j, head, doc)
	j.endUpstream(resp.head.Status, s3err)
	if s3err != nil {
		return e.errorResponse(j, s3err, true), false
	}
	body := u.rbuf[resp.head.HeadLen:resp.total]
	if resp.head.Status != 200 || bytes.Contains(body, []byte("<Error>")) {
		if resp.head.Status == 200 {
			status = e.errorResponse(j, errBadGateway, true)
		} else {
			status = e.relayResponse(j, u, &resp, true)
		}
		u.release(resp.keepAlive)
		return status, false
	}
	var done struct {
		ETag string `xml:"ETag"`
	}
	_ = xml.Unmarshal(body, &done)
	j.upStatus = resp.head.Status
	version, _ := resp.head.Lookup(u.rbuf, "x-amz-version-id")
	status = 200
	if j.post != nil {
		status = e.renderPostSuccess(j, []byte(done.ETag), version.Bytes(u.rbuf), !j.keepAlive) // S3's PostObject answer
	} else {
		j.resp = appendPutObjectOK(j.resp[:0], done.ETag, version.Bytes(u.rbuf), j.reqID[:], !j.keepAlive)
	}
	u.release(resp.keepAlive)
	e.metrics.mpCompleted.Inc()
	return status, true
}

// appendCompleteXML renders the CompleteMultipartUpload document.
func appendCompleteXML(dst []byte, etags []string) []byte {
	dst = append(dst, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`...)
	for i, etag := range etags {
		dst = append(dst, "<Part><PartNumber>"...)
		dst = strconv.AppendInt(dst, int64(i+1), 10)
		dst = append(dst, "</PartNumber><ETag>"...)
		dst = appendXMLEscaped(dst, []byte(etag))
		dst = append(dst, "</ETag></Part>"...)
	}
	return append(dst, "</CompleteMultipartUpload>"...)
}

// appendPutObjectOK renders the PutObject answer for an auto-chunked upload: the multipart ETag the
// upstream computed, untouched (clients that compare ETags with MD5s skip "-N" ETags).
func appendPutObjectOK(dst []byte, etag string, version, reqID []byte, closeConn bool) []byte {
	dst = append(dst, "HTTP/1.1 200 OK\r\nETag: "...)
	dst = append(dst, etag...)
	if len(version) > 0 {
		dst = append(dst, "\r\nx-amz-version-id: "...)
		dst = append(dst, version...)
	}
	dst = append(dst, "\r\nx-amz-request-id: "...)
	dst = append(dst, reqID...)
	dst = append(dst, "\r\nServer: mizuchi-uploadr\r\nContent-Length: 0\r\n"...)
	if closeConn {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}
