package engine

import (
	"io"
	"net"

	"github.com/mizuchi/uploadr/postform"
)

// A PostObject whose file is above the bucket's multipart_threshold is cut into a multipart
// upload like a PutObject (autochunk.go): the parts are read from postSource, which hands out the
// file's bytes (scanned for the multipart delimiter) and, once the last part is sent, checks the
// closing delimiter in finish; the upload is completed only then, and aborted on any failure, so
// nothing is stored. The answer is S3's PostObject answer, with the upload's ETag.

// postSource is a form's file, for auto-chunking.
type postSource struct {
	r    io.Reader // the bytes after the file part's headers: buffered, then the socket
	sc   *postform.Scanner
	left int64 // file bytes not handed out yet
	tail string
}

// Read hands out file bytes; io.EOF once all of them were.
func (s *postSource) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	if n > 0 && s.sc.Write(p[:n]) {
		return 0, &chunkError{errPostTail} // more parts follow the file
	}
	s.left -= int64(n)
	if n == 0 && err != nil {
		return 0, &chunkError{postReadError(err)}
	}
	return n, nil
}

// finish reads and checks the closing delimiter after the file.
func (s *postSource) finish() *s3Error {
	if s.left != 0 {
		return errIncompleteBody
	}
	b := make([]byte, len(s.tail))
	if _, err := io.ReadFull(s.r, b); err != nil {
		return postReadError(err)
	}
	if string(b) != s.tail {
		return errPostTail
	}
	return nil
}

// autoChunkPost uploads the file of a verified form as a multipart upload.
func (e *Engine) autoChunkPost(j *job, client net.Conn, sr *stallReader, pre []byte, up *postUpload) outcome {
	if err := j.setUpstreamPath(j.bucket, up.encKey); err != nil {
		return e.postFailed(j, client, errInternal, j.post.bodyLen-sr.n)
	}
	j.hdrBuf = j.hdrBuf[:0]
	for _, h := range up.headers {
		j.hdrBuf = append(append(j.hdrBuf, h.Name...), h.Value...)
	}
	j.hdrs = j.hdrs[:0]
	off := 0
	for _, h := range up.headers {
		n, v := off+len(h.Name), off+len(h.Name)+len(h.Value)
		j.hdrs = append(j.hdrs, ownedHeader{name: j.hdrBuf[off:n], value: j.hdrBuf[n:v]})
		off = v
	}
	j.total = up.size
	j.noOverwrite = up.noOverwrite
	j.expect100 = false // answered by exchangePost
	j.post.src = &postSource{r: &prefixReader{pre: pre, r: sr}, sc: postform.NewScanner(j.post.boundary),
		left: up.size, tail: postform.Tail(j.post.boundary)}
	e.metrics.autoChunked.Inc()
	status, reuse, moved := e.autoChunk(j, client)
	return outcome{status: status, bodyBytes: j.post.bodyLen - sr.n, mode: modeName(moved), closeClient: !reuse}
}
