// Package sink is the benchmarks' fast S3 upstream: it checks that a request carries a SigV4
// Authorization header (present and AWS4-HMAC-SHA256, never verified), reads and discards the body
// (on Linux spliced into /dev/null, so it costs little CPU), and answers as S3 does for PutObject,
// UploadPart, CreateMultipartUpload, CompleteMultipartUpload, AbortMultipartUpload and ListParts.
// It serves HTTP/1.1 keep-alive with one goroutine per connection and honours Expect: 100-continue;
// ServeTLS serves the same over TLS (the https upstream of the TLS benchmarks).
package sink

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// Stats are counters of a Server, safe to read while it serves.
type Stats struct {
	Requests  atomic.Int64 // answered requests, any status
	BodyBytes atomic.Int64 // body bytes read and discarded
	Refused   atomic.Int64 // requests answered 4xx/5xx
}

// Server is a sink. The zero value is not usable: call New.
type Server struct {
	Stats   Stats
	Log     io.Writer // optional: ServeTLS notes each newly negotiated TLS version and suite here
	devNull *os.File  // discard target; on Linux os.File.ReadFrom splices a TCP socket into it
	tls     tlsState
}

// New returns a Server. It opens os.DevNull once.
func New() (*Server, error) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	return &Server{devNull: f}, nil
}

// Serve accepts connections on ln until it fails (closed), one goroutine per connection.
func (s *Server) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go s.serveConn(c)
	}
}

// request is the part of a request head the sink needs.
type request struct {
	method, path, query string
	contentLength       int64
	hasLength           bool
	auth                string
	expectContinue      bool
	close               bool
	chunked             bool
}

var errBadRequest = errors.New("sink: malformed request")

func readRequest(br *bufio.Reader, r *request) error {
	line, err := readLine(br)
	if err != nil {
		return err
	}
	parts := strings.SplitN(line, " ", 3)
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return errBadRequest
	}
	*r = request{method: parts[0], path: parts[1], close: parts[2] == "HTTP/1.0"}
	if i := strings.IndexByte(r.path, '?'); i >= 0 {
		r.path, r.query = r.path[:i], r.path[i+1:]
	}
	for {
		line, err := readLine(br)
		if err != nil {
			return err
		}
		if line == "" {
			return nil
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return errBadRequest
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return errBadRequest
			}
			r.contentLength, r.hasLength = n, true
		case "authorization":
			r.auth = value
		case "expect":
			r.expectContinue = strings.EqualFold(value, "100-continue")
		case "connection":
			if strings.EqualFold(value, "close") {
				r.close = true
			}
		case "transfer-encoding":
			r.chunked = true
		}
	}
}

func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", errBadRequest
		}
		return "", err
	}
	return string(bytes.TrimRight(b, "\r\n")), nil
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 4<<10)
	var r request
	var n uint64
	for {
		if err := readRequest(br, &r); err != nil {
			if errors.Is(err, errBadRequest) {
				s.respond(bw, 400, "", errorXML("BadRequest", "malformed request"), true)
			}
			return
		}
		n++
		if r.chunked {
			s.respond(bw, 501, "", errorXML("NotImplemented", "Transfer-Encoding is not supported"), true)
			return
		}
		if !strings.HasPrefix(r.auth, "AWS4-HMAC-SHA256 ") {
			// Like S3: refuse before reading the body, then close (the body is unread).
			s.respond(bw, 403, "", errorXML("AccessDenied", "missing SigV4 Authorization header"), true)
			return
		}
		if r.method == "PUT" && !r.hasLength {
			s.respond(bw, 411, "", errorXML("MissingContentLength", "You must provide the Content-Length HTTP header."), true)
			return
		}
		if r.expectContinue && r.contentLength > 0 {
			if _, err := c.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
				return
			}
		}
		if err := s.discard(br, c, r.contentLength); err != nil {
			return
		}
		status, extra, body := answer(&r, n)
		if err := s.respond(bw, status, extra, body, r.close); err != nil || r.close {
			return
		}
	}
}

// discard drops n body bytes: first those already buffered in br, then the rest straight from the
// socket (spliced into /dev/null on Linux), so br never holds bytes of a later request but its own.
func (s *Server) discard(br *bufio.Reader, c net.Conn, n int64) error {
	if n == 0 {
		return nil
	}
	buffered := int64(br.Buffered())
	if buffered > n {
		buffered = n
	}
	if _, err := br.Discard(int(buffered)); err != nil {
		return err
	}
	rest := n - buffered
	m, err := s.devNull.ReadFrom(io.LimitReader(c, rest))
	s.Stats.BodyBytes.Add(buffered + m)
	if err == nil && m < rest {
		err = io.ErrUnexpectedEOF
	}
	return err
}

const etag = `"9b2cf535f27731c974343645a3985328"`

func answer(r *request, n uint64) (status int, extra, body string) {
	q := r.query
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.path, "/"), "/")
	uploadID := queryValue(q, "uploadId")
	switch {
	case r.method == "PUT" && !strings.Contains(q, "x-amz-copy-source") && (key != "" || uploadID != ""):
		return 200, "ETag: " + etag + "\r\n", ""
	case r.method == "PUT": // CreateBucket
		return 200, "", ""
	case r.method == "POST" && hasQueryKey(q, "uploads"):
		return 200, "Content-Type: application/xml\r\n", fmt.Sprintf(
			`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>%s</Bucket><Key>%s</Key><UploadId>sink-upload-%d</UploadId></InitiateMultipartUploadResult>`,
			xmlEscape(bucket), xmlEscape(key), n)
	case r.method == "POST" && uploadID != "":
		return 200, "Content-Type: application/xml\r\n", fmt.Sprintf(
			`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<CompleteMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Location>http://sink/%s/%s</Location><Bucket>%s</Bucket><Key>%s</Key><ETag>&quot;9b2cf535f27731c974343645a3985328-1&quot;</ETag></CompleteMultipartUploadResult>`,
			xmlEscape(bucket), xmlEscape(key), xmlEscape(bucket), xmlEscape(key))
	case r.method == "DELETE" && uploadID != "":
		return 204, "", ""
	case r.method == "GET" && uploadID != "":
		return 200, "Content-Type: application/xml\r\n", fmt.Sprintf(
			`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
				`<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId><IsTruncated>false</IsTruncated></ListPartsResult>`,
			xmlEscape(bucket), xmlEscape(key), xmlEscape(uploadID))
	default:
		return 405, "Content-Type: application/xml\r\n", errorXML("MethodNotAllowed", "the sink accepts only upload operations")
	}
}

func (s *Server) respond(bw *bufio.Writer, status int, extra, body string, closeConn bool) error {
	s.Stats.Requests.Add(1)
	if status >= 400 {
		s.Stats.Refused.Add(1)
		if extra == "" {
			extra = "Content-Type: application/xml\r\n"
		}
	}
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nx-amz-request-id: sink\r\nServer: mizuchi-bench-sink\r\n%s", status, reason(status), extra)
	if status != 204 {
		fmt.Fprintf(bw, "Content-Length: %d\r\n", len(body))
	}
	if closeConn {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	bw.WriteString(body)
	return bw.Flush()
}

func reason(status int) string {
	switch status {
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 405:
		return "Method Not Allowed"
	case 411:
		return "Length Required"
	default:
		return "Not Implemented"
	}
}

func errorXML(code, msg string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Error><Code>" + code + "</Code><Message>" + msg +
		"</Message><RequestId>sink</RequestId></Error>"
}

func queryValue(q, key string) string {
	for _, kv := range strings.Split(q, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

func hasQueryKey(q, key string) bool {
	for _, kv := range strings.Split(q, "&") {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

func xmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
