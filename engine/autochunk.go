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

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/s3sig"
	"github.com/mizuchi/uploadr/transfer"
)

// ownedHeader is a client header copied out of gnet's buffer (both slices point into job.hdrBuf).
type ownedHeader struct{ name, value []byte }

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

// detachAutoChunk detaches a PutObject above the bucket's multipart threshold: the goroutine turns
// it into CreateMultipartUpload, UploadPart requests whose bodies are spliced from the client
// socket, and CompleteMultipartUpload, and answers the client like a PutObject.
func (e *Engine) detachAutoChunk(c gnet.Conn, st *connState, buf []byte) gnet.Action {
	req := st.req
	b := st.rt.bucket
	fd, err := c.Dup()
	if err != nil {
		return e.refuse(c, st, errInternal, req.Path.Bytes(buf), true)
	}
	j := e.newJob(st, buf)
	j.el = c.EventLoop()
	j.clientFD = fd
	if err := j.setUpstreamPath(b, req.Path.Bytes(buf)[st.rt.keyStart:st.rt.keyEnd]); err != nil {
		_ = closeFD(fd)
		j.release()
		return e.refuse(c, st, errInvalidURI, req.Path.Bytes(buf), true)
	}
	j.hdrBuf = j.hdrBuf[:0]
	type span struct{ n0, n1, v1 int }
	var spans [128]span
	ns := 0
	for i := 0; i < req.NumHeaders && ns < len(spans); i++ {
		h := req.Headers[i]
		name := h.Name.Bytes(buf)
		if isHopHeader(name) && !(len(name) == len("x-amz-content-sha256") && equalFoldASCII(name, "x-amz-content-sha256")) {
			continue
		}
		n0 := len(j.hdrBuf)
		j.hdrBuf = append(j.hdrBuf, name...)
		n1 := len(j.hdrBuf)
		j.hdrBuf = append(j.hdrBuf, h.Value.Bytes(buf)...)
		spans[ns] = span{n0, n1, len(j.hdrBuf)}
		ns++
	}
	j.hdrs = j.hdrs[:0]
	for _, s := range spans[:ns] {
		j.hdrs = append(j.hdrs, ownedHeader{name: j.hdrBuf[s.n0:s.n1], value: j.hdrBuf[s.n1:s.v1]})
	}
	prefix := buf[req.HeadLen:]
	if int64(len(prefix)) > st.bodyLen {
		prefix = prefix[:st.bodyLen]
	}
	j.out = append(j.out[:0], prefix...)
	j.headLen = 0
	j.total = st.bodyLen
	j.remaining = st.bodyLen - int64(len(prefix))
	st.phase.Store(phaseDetached)
	e.conns.remove(st)
	_, _ = c.Discard(-1)
	e.metrics.detached.Inc()
	e.metrics.autoChunked.Inc()
	go e.runDetached(j, e.autoChunk)
	return gnet.Close
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

// chunkFailure is the first failure of an auto-chunked upload: an S3 error of the proxy's own, or
// an upstream answer to relay (already rendered into job.resp).
type chunkFailure struct {
	set     bool
	status  int
	s3err   *s3Error
	relayed bool
}

// autoChunk performs the multipart upload for j and writes the client's answer. On any failure the
// upload is aborted upstream so no object and no orphaned upload remain.
func (e *Engine) autoChunk(j *job, client net.Conn) (status int, reuse bool, moved transfer.Result) {
	b := j.bucket
	fail := func(s3err *s3Error) (int, bool, transfer.Result) {
		e.errorResponse(j, s3err, true)
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return s3err.Status, false, moved
	}
	digests, s3err := parseWholeDigests(j.hdrs)
	if s3err != nil {
		return fail(s3err)
	}

	// CreateMultipartUpload with the object's headers.
	hs := e.baseHeaders(j, b, []byte(s3sig.UnsignedPayload))
	for _, h := range j.hdrs {
		if !isNotOnCreate(h.name) && !(len(h.name) == len("x-amz-content-sha256") && equalFoldASCII(h.name, "x-amz-content-sha256")) {
			hs = append(hs, s3sig.Header{Name: h.name, Value: h.value})
		}
	}
	j.query = append(j.query[:0], "uploads="...)
	head, err := e.appendSignedHead(j.tmp2[:0], j, b, []byte("POST"), hs, []byte(s3sig.UnsignedPayload), "Content-Length: 0\r\n")
	j.tmp2 = head
	if err != nil {
		return fail(errInternal)
	}
	u, resp, s3err := e.roundTrip(j, head, nil)
	if s3err != nil {
		return fail(s3err)
	}
	if resp.head.Status != 200 {
		status := e.relayResponse(j, u, &resp, true)
		u.release(resp.keepAlive)
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return status, false, moved
	}
	var created struct {
		UploadID string `xml:"UploadId"`
	}
	xerr := xml.Unmarshal(u.rbuf[resp.head.HeadLen:resp.total], &created)
	u.release(resp.keepAlive)
	if xerr != nil || created.UploadID == "" {
		return fail(errBadGateway)
	}
	e.metrics.mpStarted.Inc()
	uploadID := s3sig.AppendURIEncode(nil, []byte(created.UploadID), false)
	abort := func() {
		e.abortUpload(j, uploadID)
	}

	if j.expect100 && j.remaining > 0 && !writeAll(client, continueResponse, e.opts.BodyStallTimeout) {
		abort()
		return 499, false, moved
	}

	// Parts: bodies spliced (or, with a whole-body digest, copied through the hashes) one after the
	// other from the client socket; up to ConcurrentParts awaiting their upstream answer.
	partSize := partSizeFor(j.total, b.upload.PartSize)
	nparts := int((j.total + partSize - 1) / partSize)
	etags := make([]string, nparts)
	var tee io.Writer
	if digests != nil {
		tee = digests.writer()
	}
	ctx, cancel := context.WithCancel(e.killCtx)
	defer cancel()
	var cf chunkFailure
	var cfMu sync.Mutex
	failWith := func(s3err *s3Error, relay func() int) {
		cfMu.Lock()
		defer cfMu.Unlock()
		if cf.set {
			return
		}
		cf.set = true
		if relay != nil {
			cf.status = relay()
			cf.relayed = true
		} else {
			cf.s3err = s3err
			cf.status = s3err.Status
		}
		cancel()
	}
	sem := make(chan struct{}, b.upload.ConcurrentParts)
	var wg sync.WaitGroup
	prefix := j.out
	remaining := j.total
	clientGone := false
parts:
	for i := 0; i < nparts; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break parts
		}
		if ctx.Err() != nil {
			<-sem
			break
		}
		partLen := min(partSize, remaining)
		last := i == nparts-1
		hs := e.baseHeaders(j, b, []byte(s3sig.UnsignedPayload))
		j.num = strconv.AppendInt(j.num[:0], partLen, 10)
		hs = append(hs, s3sig.Header{Name: []byte("content-length"), Value: j.num})
		j.query = append(j.query[:0], "partNumber="...)
		j.query = strconv.AppendInt(j.query, int64(i+1), 10)
		j.query = append(j.query, "&uploadId="...)
		j.query = append(j.query, uploadID...)
		head, err := e.appendSignedHead(j.tmp2[:0], j, b, []byte("PUT"), hs, []byte(s3sig.UnsignedPayload), "")
		j.tmp2 = head
		if err != nil {
			<-sem
			failWith(errInternal, nil)
			break
		}
		u, s3err := e.sendHead(j, head)
		if s3err != nil {
			<-sem
			failWith(s3err, nil)
			break
		}
		p := min(int64(len(prefix)), partLen)
		pre := prefix[:p]
		prefix = prefix[p:]
		n := partLen - p
		hold := last && canPeek && n > 0
		if hold {
			n--
		}
		respCh := make(chan partAnswer, 1)
		pctx, pcancel := context.WithCancel(ctx)
		go func() {
			var a partAnswer
			a.started, a.err = readResponse(u, e.limits, &a.resp)
			respCh <- a
			if a.started || a.err == nil {
				pcancel()
			}
		}()
		var res transfer.Result
		if tee != nil {
			res, err = e.mover.MoveTee(pctx, u.c, client, pre, n, tee)
		} else {
			res, err = e.mover.Move(pctx, u.c, client, pre, n)
		}
		if err == nil && hold {
			var lb int64
			lb, err = e.moveLastByte(client, u.c, tee)
			res.Copied += lb
		}
		moved.Spliced += res.Spliced
		moved.Copied += res.Copied
		moved.PipeTooSmall = moved.PipeTooSmall || res.PipeTooSmall
		moved.Mode = res.Mode
		if err != nil {
			var te *transfer.Error
			answered := false
			switch {
			case e.killCtx.Err() != nil:
				u.reset()
				failWith(errShuttingDown, nil)
			case errors.Is(err, errBodyTooLong):
				u.reset()
				failWith(errIncompleteBody, nil)
			case pctx.Err() != nil && ctx.Err() == nil || errors.As(err, &te) && te.Side == transfer.SideDst:
				// The upstream answered early or stopped reading: relay its answer if one comes.
				_ = u.c.SetReadDeadline(time.Now().Add(lingerTime))
				a := <-respCh
				answered = true
				if a.err == nil && a.resp.head.Status != 200 {
					failWith(nil, func() int { return e.relayResponse(j, u, &a.resp, true) })
				} else {
					failWith(errBadGateway, nil)
				}
				u.close()
			case ctx.Err() != nil:
				u.reset() // another part failed
			default:
				u.reset()
				if errors.Is(err, transfer.ErrStalled) {
					failWith(errRequestTimeout, nil)
				} else {
					clientGone = true
					failWith(errIncompleteBody, nil)
				}
			}
			pcancel()
			if !answered {
				<-respCh
			}
			<-sem
			break
		}
		e.metrics.partsSent.Inc()
		remaining -= partLen
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			defer pcancel()
			_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
			a := <-respCh
			switch {
			case a.err != nil:
				u.close()
				if isTimeout(a.err) {
					failWith(errUpstreamTimeout, nil)
				} else {
					failWith(errBadGateway, nil)
				}
			case a.resp.head.Status != 200:
				failWith(nil, func() int { return e.relayResponse(j, u, &a.resp, true) })
				u.release(a.resp.keepAlive)
			default:
				etag, _ := a.resp.head.Lookup(u.rbuf, "etag")
				etags[i] = string(etag.Bytes(u.rbuf))
				u.release(a.resp.keepAlive)
				if etags[i] == "" {
					failWith(errBadGateway, nil)
				}
			}
		}(i)
	}
	wg.Wait()
	if !cf.set && remaining != 0 {
		if e.killCtx.Err() != nil {
			failWith(errShuttingDown, nil)
		} else {
			failWith(errInternal, nil)
		}
	}
	if !cf.set && digests != nil {
		if s3err := digests.verify(); s3err != nil {
			failWith(s3err, nil)
		}
	}
	if cf.set {
		abort()
		if clientGone {
			return 499, false, moved
		}
		if !cf.relayed {
			e.errorResponse(j, cf.s3err, true)
		}
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return cf.status, false, moved
	}

	// CompleteMultipartUpload; the client's write condition goes here.
	doc := appendCompleteXML(j.tmp[:0], etags)
	j.tmp = doc
	sum := sha256.Sum256(doc)
	payload := hex.AppendEncode(nil, sum[:])
	hs = e.baseHeaders(j, b, payload)
	j.num = strconv.AppendInt(j.num[:0], int64(len(doc)), 10)
	hs = append(hs, s3sig.Header{Name: []byte("content-length"), Value: j.num},
		s3sig.Header{Name: []byte("content-type"), Value: []byte("application/xml")})
	for _, h := range j.hdrs {
		if len(h.name) >= 8 && (equalFoldASCII(h.name, "if-match") && len(h.name) == 8 ||
			len(h.name) == len("if-none-match") && equalFoldASCII(h.name, "if-none-match")) {
			hs = append(hs, s3sig.Header{Name: h.name, Value: h.value})
		}
	}
	j.query = append(j.query[:0], "uploadId="...)
	j.query = append(j.query, uploadID...)
	head, err = e.appendSignedHead(j.tmp2[:0], j, b, []byte("POST"), hs, payload, "")
	j.tmp2 = head
	if err != nil {
		abort()
		return fail(errInternal)
	}
	u, resp, s3err = e.roundTrip(j, head, doc)
	if s3err != nil {
		abort()
		return fail(s3err)
	}
	body := u.rbuf[resp.head.HeadLen:resp.total]
	if resp.head.Status != 200 || bytes.Contains(body, []byte("<Error>")) {
		status := resp.head.Status
		if status == 200 {
			status = e.errorResponse(j, errBadGateway, true)
		} else {
			status = e.relayResponse(j, u, &resp, true)
		}
		u.release(resp.keepAlive)
		abort()
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return status, false, moved
	}
	var done struct {
		ETag string `xml:"ETag"`
	}
	_ = xml.Unmarshal(body, &done)
	j.upStatus = resp.head.Status
	version, _ := resp.head.Lookup(u.rbuf, "x-amz-version-id")
	j.resp = appendPutObjectOK(j.resp[:0], done.ETag, version.Bytes(u.rbuf), j.reqID[:], !j.keepAlive)
	u.release(resp.keepAlive)
	e.metrics.mpCompleted.Inc()
	if !writeAll(client, j.resp, e.opts.BodyStallTimeout) {
		return 200, false, moved
	}
	return 200, j.keepAlive, moved
}

type partAnswer struct {
	resp    upResponse
	started bool
	err     error
}

// baseHeaders returns the three headers every upstream request signs, in j.sigHdrs.
func (e *Engine) baseHeaders(j *job, b *bucketState, payload []byte) []s3sig.Header {
	j.date = s3sig.AppendAmzDate(j.date[:0], e.opts.Now())
	j.sigHdrs = append(j.sigHdrs[:0],
		s3sig.Header{Name: []byte("host"), Value: b.hostHeader},
		s3sig.Header{Name: []byte("x-amz-date"), Value: j.date},
		s3sig.Header{Name: []byte("x-amz-content-sha256"), Value: payload})
	return j.sigHdrs
}

// sendHead writes a request head on a pooled connection, retrying once on a fresh connection when a
// reused one turns out dead.
func (e *Engine) sendHead(j *job, head []byte) (*upConn, *s3Error) {
	u, err := j.bucket.pool.get()
	if err != nil {
		e.metrics.upstreamErrors.Inc()
		return nil, poolError(err)
	}
	_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
	if _, err = u.c.Write(head); err != nil && u.reused {
		u.close()
		if u, err = j.bucket.pool.dial(); err == nil {
			_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
			_, err = u.c.Write(head)
		}
	}
	if err != nil {
		if u != nil {
			u.close()
		}
		e.metrics.upstreamErrors.Inc()
		return nil, errBadGateway
	}
	_ = u.c.SetWriteDeadline(time.Time{})
	return u, nil
}

// roundTrip sends head and body (small, in memory) and reads the answer. A reused connection that
// fails before any answer byte is retried once.
func (e *Engine) roundTrip(j *job, head, body []byte) (*upConn, upResponse, *s3Error) {
	var resp upResponse
	for attempt := 0; ; attempt++ {
		u, s3err := e.sendHead(j, head)
		if s3err != nil {
			return nil, resp, s3err
		}
		var err error
		if len(body) > 0 {
			_, err = u.c.Write(body)
		}
		started := false
		if err == nil {
			_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
			started, err = readResponse(u, e.limits, &resp)
		}
		if err == nil {
			return u, resp, nil
		}
		u.close()
		if u.reused && !started && attempt == 0 {
			continue
		}
		e.metrics.upstreamErrors.Inc()
		if isTimeout(err) {
			return nil, resp, errUpstreamTimeout
		}
		return nil, resp, errBadGateway
	}
}

// release returns the connection to its pool when the exchange left it reusable, else closes it.
func (u *upConn) release(keepAlive bool) {
	if keepAlive {
		u.pool.put(u)
	} else {
		u.close()
	}
}

// abortUpload aborts an upload upstream (retrying once) so no orphaned upload remains.
func (e *Engine) abortUpload(j *job, uploadID []byte) {
	for attempt := 0; attempt < 2; attempt++ {
		hs := e.baseHeaders(j, j.bucket, []byte(s3sig.EmptySHA256))
		j.query = append(j.query[:0], "uploadId="...)
		j.query = append(j.query, uploadID...)
		head, err := e.appendSignedHead(j.tmp2[:0], j, j.bucket, []byte("DELETE"), hs, []byte(s3sig.EmptySHA256), "Content-Length: 0\r\n")
		j.tmp2 = head
		if err != nil {
			break
		}
		u, resp, s3err := e.roundTrip(j, head, nil)
		if s3err != nil {
			continue
		}
		u.release(resp.keepAlive)
		if resp.head.Status == 204 || resp.head.Status == 200 || resp.head.Status == 404 {
			e.metrics.mpAborted.Inc()
			return
		}
	}
	e.metrics.abortFailures.Inc()
	e.opts.Logger.Warn("could not abort an auto-chunked upload; it stays upstream until a lifecycle rule removes it",
		"request_id", string(j.reqID[:]), "bucket", j.bucket.name)
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
