package engine

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net"
	"time"
)

// The aws-chunked framing of S3 streaming uploads ("Transferring Payload in Multiple Chunks", S3
// API reference), as this decoder accepts it:
//
//	body          = *chunk final-chunk [ trailer ] CRLF
//	chunk         = chunk-size [ ";chunk-signature=" signature ] CRLF chunk-data CRLF
//	final-chunk   = "0" [ ";chunk-signature=" signature ] CRLF
//	chunk-size    = 1*16HEXDIG                      ; no leading zeros beyond one "0"
//	signature     = 64HEXDIG                        ; lower case, as SigV4 writes it
//	trailer       = *( checksum-line CRLF ) [ "x-amz-trailer-signature:" signature CRLF ]
//	checksum-line = field-name ":" OWS value OWS    ; hashed for the trailer signature as "name:value\n"
//
// chunk-signature is required on every chunk of a signed body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD*)
// and absent from an unsigned one (STREAMING-UNSIGNED-PAYLOAD-TRAILER). A body without a trailer
// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) ends with the final chunk and one CRLF. minio-go ends a
// checksum line with "\n" before the CRLF; that "\n" is whitespace of the value. Every size is
// bounded: a signed chunk by maxChunkSize (it is held whole until its signature verified), an
// unsigned one by maxUnsignedChunk (it is streamed, never held: the SDKs send a whole body as one
// chunk), a chunk line by the reader's buffer, the trailer by maxTrailerLines lines of
// maxTrailerLine bytes.

// chunkMode is how a request's body is framed, as far as the chunk decoder is concerned.
type chunkMode uint8

const (
	chunksNone            chunkMode = iota // not a signed aws-chunked body
	chunksSigned                           // STREAMING-AWS4-HMAC-SHA256-PAYLOAD
	chunksSignedTrailer                    // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
	chunksUnsignedTrailer                  // STREAMING-UNSIGNED-PAYLOAD-TRAILER, auto-chunked (else passed through)
)

// chunkInfo is what admit found out about a signed aws-chunked body.
type chunkInfo struct {
	mode    chunkMode
	trailer checksumAlgo // the checksum x-amz-trailer names (…-TRAILER)
	decoded int64        // x-amz-decoded-content-length
	// badTrailer: x-amz-trailer of an unsigned-trailer body names no checksum the proxy knows
	// (refused only when the proxy must verify it: auto-chunked).
	badTrailer bool
}

const (
	maxChunkSize = 1 << 20 // a signed chunk is held whole until its signature verified
	// maxUnsignedChunk bounds an unsigned chunk, which is read in pieces: S3's largest object (the
	// decoded length bounds it again).
	maxUnsignedChunk = 5 << 40
	maxTrailerLine   = 256
	maxTrailerLines  = 8
)

// checksumAlgo is one of the x-amz-checksum-* algorithms a trailer may carry.
type checksumAlgo uint8

const (
	checksumNone checksumAlgo = iota
	checksumCRC32
	checksumCRC32C
	checksumCRC64NVME
	checksumSHA1
	checksumSHA256
)

var checksumNames = [...]string{"", "x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1", "x-amz-checksum-sha256"}

// checksumSizes are the digest sizes in bytes.
var checksumSizes = [...]int{0, 4, 4, 8, sha1.Size, sha256.Size}

var crc32cTable = crc32.MakeTable(crc32.Castagnoli)

func (a checksumAlgo) name() string { return checksumNames[a] }

// b64Len is the length of the base64 value of the checksum.
func (a checksumAlgo) b64Len() int { return base64.StdEncoding.EncodedLen(checksumSizes[a]) }

func (a checksumAlgo) newHash() hash.Hash {
	switch a {
	case checksumCRC32:
		return crc32.NewIEEE()
	case checksumCRC32C:
		return crc32.New(crc32cTable)
	case checksumCRC64NVME:
		return crc64.New(crc64NVMETable)
	case checksumSHA1:
		return sha1.New()
	case checksumSHA256:
		return sha256.New()
	}
	return nil
}

// checksumByName maps a header name (any case, surrounding spaces allowed) to its algorithm.
func checksumByName(name []byte) checksumAlgo {
	name = bytes.TrimSpace(name)
	for a := checksumCRC32; a <= checksumSHA256; a++ {
		if len(name) == len(checksumNames[a]) && equalFoldASCII(name, checksumNames[a]) {
			return a
		}
	}
	return checksumNone
}

// parseTrailerHeader reads x-amz-trailer for a signed aws-chunked body: a …-TRAILER payload must
// name exactly one checksum; a payload without a trailer must not declare one.
func (ci *chunkInfo) parseTrailerHeader(h *Head) *s3Error {
	v, ok := h.req.Lookup(h.buf, "x-amz-trailer")
	if ci.mode == chunksUnsignedTrailer {
		// Optional; one checksum when present.
		if !ok {
			return nil
		}
		if h.req.HeaderCount(h.buf, "x-amz-trailer") > 1 {
			return errTrailerHeader
		}
		if ci.trailer = checksumByName(v.Bytes(h.buf)); ci.trailer == checksumNone {
			return errTrailerHeader
		}
		return nil
	}
	if ci.mode != chunksSignedTrailer {
		if ok {
			return errTrailerHeader
		}
		return nil
	}
	if !ok || h.req.HeaderCount(h.buf, "x-amz-trailer") > 1 {
		return errTrailerHeader
	}
	if ci.trailer = checksumByName(v.Bytes(h.buf)); ci.trailer == checksumNone {
		return errTrailerHeader
	}
	return nil
}

// Decoder errors. errChunkFormat is malformed framing (400); a read error of the client
// connection comes back as is, wrapped in io.ErrUnexpectedEOF when the body ended early.
var (
	errChunkFormat = errors.New("engine: malformed aws-chunked body")
	errChunkTooBig = errors.New("engine: aws-chunked chunk larger than the proxy accepts")
)

// chunkReader decodes an aws-chunked body read from r. It never reads past the body (r is limited
// to the body's Content-Length by its caller) and allocates nothing per chunk.
type chunkReader struct {
	r      *bufio.Reader
	signed bool
	line   [maxTrailerLine]byte
}

// header reads one chunk header line and returns the chunk's size and, for a signed body, its
// signature copied into sig.
func (c *chunkReader) header(sig *[64]byte) (int64, error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return 0, errChunkFormat
		}
		return 0, eofIsUnexpected(err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return 0, errChunkFormat
	}
	line = line[:len(line)-2]
	var size int64
	i := 0
	for ; i < len(line) && i <= 16; i++ {
		d := unhexDigit(line[i])
		if d > 15 {
			break
		}
		size = size<<4 | int64(d)
	}
	switch {
	case i == 0 || i > 15:
		return 0, errChunkFormat // no size, or one no int64 of ours can hold
	case i > 1 && line[0] == '0':
		return 0, errChunkFormat
	case c.signed && size > maxChunkSize, size > maxUnsignedChunk:
		return 0, errChunkTooBig
	}
	ext := line[i:]
	if !c.signed {
		if len(ext) != 0 {
			return 0, errChunkFormat
		}
		return size, nil
	}
	const prefix = ";chunk-signature="
	if len(ext) != len(prefix)+64 || string(ext[:len(prefix)]) != prefix || !isLowerHex(ext[len(prefix):]) {
		return 0, errChunkFormat
	}
	copy(sig[:], ext[len(prefix):])
	return size, nil
}

// data reads a chunk's data into p (len(p) is the chunk size) and the CRLF after it.
func (c *chunkReader) data(p []byte) error {
	if _, err := io.ReadFull(c.r, p); err != nil {
		return eofIsUnexpected(err)
	}
	return c.crlf()
}

// crlf reads one CRLF.
func (c *chunkReader) crlf() error {
	b0, err := c.r.ReadByte()
	if err != nil {
		return eofIsUnexpected(err)
	}
	b1, err := c.r.ReadByte()
	if err != nil {
		return eofIsUnexpected(err)
	}
	if b0 != '\r' || b1 != '\n' {
		return errChunkFormat
	}
	return nil
}

// trailer is what followed the final chunk.
type trailer struct {
	lines    []byte   // checksum lines as signed: "name:value\n" each
	checksum []byte   // value of the declared checksum line (a view into lines)
	sig      [64]byte // x-amz-trailer-signature (signed bodies)
	hasSig   bool
}

// trailer reads the trailer lines and the blank line that ends the body. want is the checksum
// x-amz-trailer declared: it must be there, once. For a signed body x-amz-trailer-signature must
// come last. t.lines is appended to (its backing array is the caller's).
func (c *chunkReader) trailer(want checksumAlgo, t *trailer) error {
	for n := 0; ; n++ {
		if n > maxTrailerLines {
			return errChunkFormat
		}
		line, err := c.crlfLine()
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		if t.hasSig {
			return errChunkFormat // nothing but the blank line after the signature
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(name) == 0 || bytes.ContainsAny(name, " \t") {
			return errChunkFormat
		}
		value = bytes.Trim(value, " \t\n")
		if c.signed && len(name) == len("x-amz-trailer-signature") && equalFoldASCII(name, "x-amz-trailer-signature") {
			if len(value) != 64 || !isLowerHex(value) {
				return errChunkFormat
			}
			copy(t.sig[:], value)
			t.hasSig = true
			continue
		}
		t.lines = append(t.lines, name...)
		t.lines = append(t.lines, ':')
		vs := len(t.lines)
		t.lines = append(t.lines, value...)
		t.lines = append(t.lines, '\n')
		if want != checksumNone && checksumByName(name) == want {
			if t.checksum != nil {
				return errChunkFormat
			}
			t.checksum = t.lines[vs : len(t.lines)-1]
		}
	}
	if t.checksum == nil && want != checksumNone || c.signed && !t.hasSig {
		return errChunkFormat
	}
	return nil
}

// crlfLine reads a line that ends in CRLF (a lone '\n' inside it is kept) and returns it without
// the CRLF; the slice is valid until the next call.
func (c *chunkReader) crlfLine() ([]byte, error) {
	n := 0
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			return nil, eofIsUnexpected(err)
		}
		if n == len(c.line) {
			return nil, errChunkFormat
		}
		c.line[n] = b
		n++
		if b == '\n' && n >= 2 && c.line[n-2] == '\r' {
			return c.line[:n-2], nil
		}
	}
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// stallReader reads from a client connection with a deadline per read: a client that sends
// nothing for timeout fails the read with a timeout error.
type stallReader struct {
	c       net.Conn
	timeout time.Duration
	n       int64 // bytes left of the body: never read past it
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.n {
		p = p[:s.n]
	}
	_ = s.c.SetReadDeadline(time.Now().Add(s.timeout))
	n, err := s.c.Read(p)
	s.n -= int64(n)
	return n, err
}

// prefixReader reads pre, then r.
type prefixReader struct {
	pre []byte
	r   io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// dropHeader reports whether a client header is left out of the upstream head of a signed
// aws-chunked request: its framing headers describe the client's body, not the one forwarded.
// Content-Length (and, re-framed, Content-Encoding) are set by buildUpstreamHead instead.
func (ci *chunkInfo) dropHeader(name, value []byte) bool {
	switch {
	case len(name) == len("content-length") && equalFoldASCII(name, "content-length"):
		return true
	case len(name) == len("content-encoding") && equalFoldASCII(name, "content-encoding"):
		// Re-framed: set to aws-chunked. Plain: aws-chunked is dropped; other codings stay.
		v := bytes.TrimSpace(value)
		return ci.reframed() || len(v) == len("aws-chunked") && equalFoldASCII(v, "aws-chunked")
	case !ci.reframed() && len(name) == len("x-amz-decoded-content-length") && equalFoldASCII(name, "x-amz-decoded-content-length"):
		return true
	}
	return false
}

// upstreamLength is the Content-Length of the body forwarded for a decoded aws-chunked request
// (signed, or in HTTP chunks): the decoded bytes (→ UNSIGNED-PAYLOAD), or, for a trailer,
// the decoded bytes re-framed as one STREAMING-UNSIGNED-PAYLOAD-TRAILER chunk:
//
//	hex(n) CRLF data CRLF "0" CRLF name ":" value CRLF CRLF     (n > 0)
//	"0" CRLF name ":" value CRLF CRLF                           (n = 0)
func (ci *chunkInfo) upstreamLength() int64 {
	if !ci.reframed() {
		return ci.decoded
	}
	l := int64(len("0\r\n") + len(ci.trailer.name()) + 1 + ci.trailer.b64Len() + len("\r\n\r\n"))
	if n := ci.decoded; n > 0 {
		l += int64(hexLen(n)) + 2 + n + 2
	}
	return l
}

func hexLen(n int64) int {
	l := 1
	for n >= 16 {
		n >>= 4
		l++
	}
	return l
}
