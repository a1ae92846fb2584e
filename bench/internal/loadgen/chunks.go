package loadgen

import (
	"crypto/sha256"
	"net"
	"strconv"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// chunkSize is the data of one signed chunk, as minio-go and the AWS SDK for Java send them.
const chunkSize = 64 << 10

// signedChunkLen is the length of the aws-chunked encoding of size bytes in signed chunks:
// per chunk hex(n) ";chunk-signature=" 64 hex CRLF data CRLF, then the final 0-chunk and CRLF.
func signedChunkLen(size int64) int64 {
	const ext = len(";chunk-signature=") + 64 + 2
	var l int64
	for n := size; n > 0; n -= chunkSize {
		c := min(n, chunkSize)
		l += int64(len(strconv.FormatInt(c, 16))+ext) + c + 2
	}
	return l + int64(1+ext) + 2
}

// chunkSums are the SHA-256 of the body's full chunks in mem (mem repeats every len(mem) bytes,
// a multiple of chunkSize when the body is larger than mem).
func (b *body) chunkSums() [][sha256.Size]byte {
	if b.sums == nil {
		for off := 0; off+chunkSize <= len(b.mem); off += chunkSize {
			b.sums = append(b.sums, sha256.Sum256(b.mem[off:off+chunkSize]))
		}
	}
	return b.sums
}

// putSignedChunks sends one PutObject with a signed aws-chunked body and reads the answer.
func (w *conn) putSignedChunks(now time.Time) (reuse bool, err error) {
	cfg := w.cfg
	w.date = s3sig.AppendAmzDate(w.date[:0], now)
	decoded := strconv.AppendInt(nil, cfg.Size, 10)
	req := s3sig.Request{
		Method: []byte("PUT"),
		Path:   []byte(w.key),
		Headers: []s3sig.Header{
			{Name: []byte("host"), Value: []byte(cfg.Host)},
			{Name: []byte("content-encoding"), Value: []byte("aws-chunked")},
			{Name: []byte("x-amz-content-sha256"), Value: []byte(s3sig.StreamingSigned)},
			{Name: []byte("x-amz-date"), Value: w.date},
			{Name: []byte("x-amz-decoded-content-length"), Value: decoded},
		},
		PayloadHash: []byte(s3sig.StreamingSigned),
	}
	w.auth, err = w.signer.Sign(w.auth[:0], &req, cfg.Creds, w.date, cfg.Region, "s3")
	if err != nil {
		return false, err
	}
	seed, err := s3sig.NewChunkSeed(cfg.Creds.SecretKey, w.date, cfg.Region, w.auth[len(w.auth)-64:])
	if err != nil {
		return false, err
	}
	var v s3sig.ChunkVerifier
	v.Reset(&seed)

	w.head = append(w.head[:0], "PUT "...)
	w.head = append(w.head, w.key...)
	w.head = append(w.head, " HTTP/1.1\r\nHost: "...)
	w.head = append(w.head, cfg.Host...)
	w.head = append(w.head, "\r\nContent-Length: "...)
	w.head = strconv.AppendInt(w.head, signedChunkLen(cfg.Size), 10)
	w.head = append(w.head, "\r\nContent-Encoding: aws-chunked\r\nx-amz-decoded-content-length: "...)
	w.head = append(w.head, decoded...)
	w.head = append(w.head, "\r\nx-amz-content-sha256: "+s3sig.StreamingSigned+"\r\nx-amz-date: "...)
	w.head = append(w.head, w.date...)
	w.head = append(w.head, "\r\nAuthorization: "...)
	w.head = append(w.head, w.auth...)
	w.head = append(w.head, "\r\n\r\n"...)

	sums := w.body.chunkSums()
	mem := w.body.mem
	var line []byte
	crlf := []byte("\r\n")
	for off := int64(0); ; off += chunkSize {
		n := max(0, min(cfg.Size-off, chunkSize))
		var data []byte
		if n > 0 {
			start := off % int64(len(mem))
			data = mem[start : start+n]
		}
		line = append(line[:0], w.head...) // the head goes out with the first chunk
		w.head = w.head[:0]
		line = strconv.AppendInt(line, n, 16)
		line = append(line, ";chunk-signature="...)
		if n == chunkSize && int(off%int64(len(mem))/chunkSize) < len(sums) {
			i := int(off % int64(len(mem)) / chunkSize)
			line = v.SignChunkSum(line, &sums[i])
		} else {
			line = v.SignChunk(line, data)
		}
		line = append(line, "\r\n"...)
		bufs := net.Buffers{line, data, crlf}
		if n == 0 {
			bufs = net.Buffers{line, crlf}
		}
		if _, err := bufs.WriteTo(w.c); err != nil {
			return false, err
		}
		w.bytes += n
		if n == 0 {
			break
		}
	}
	return w.readResponse()
}
