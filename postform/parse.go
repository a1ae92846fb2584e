package postform

import (
	"bytes"
	"mime"
	"strings"
)

// MaxPreData bounds what precedes the file's data in the body (every field part and the file
// part's headers): S3 refuses a form whose fields before the file exceed 20 KB
// (MaxPostPreDataLengthExceeded).
const MaxPreData = 20 << 10

// Field is one form field before the file part: its name as sent and its value.
type Field struct{ Name, Value string }

// Form is what precedes the file's data.
type Form struct {
	// Fields are the field parts in order. The key field's ${filename} is already replaced.
	Fields []Field
	// FileName is the file part's filename parameter ("" when it has none).
	FileName string
	// FileContentType is the file part's own Content-Type header ("" when absent).
	FileContentType string
	// DataStart is the offset in the body of the file's first data byte.
	DataStart int
}

// Get returns the value of the field named name, compared case-insensitively (S3 reads form
// field names without regard to case: the documented example sends X-Amz-Credential and Policy).
func (f *Form) Get(name string) (string, bool) {
	for i := range f.Fields {
		if strings.EqualFold(f.Fields[i].Name, name) {
			return f.Fields[i].Value, true
		}
	}
	return "", false
}

// IsFormData reports whether a Content-Type value names multipart/form-data. It does not
// allocate (admit calls it on the event loop).
func IsFormData(contentType []byte) bool {
	const mt = "multipart/form-data"
	if len(contentType) < len(mt) {
		return false
	}
	for i := 0; i < len(mt); i++ {
		c := contentType[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != mt[i] {
			return false
		}
	}
	rest := contentType[len(mt):]
	return len(rest) == 0 || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t'
}

// Boundary returns the boundary parameter of a multipart/form-data Content-Type value. RFC 2046
// §5.1.1: 1 to 70 characters of bchars, not ending in a space.
func Boundary(contentType string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" {
		return "", ErrBoundary
	}
	b := params["boundary"]
	if len(b) == 0 || len(b) > 70 || b[len(b)-1] == ' ' {
		return "", ErrBoundary
	}
	for i := 0; i < len(b); i++ {
		if !isBChar(b[i]) {
			return "", ErrBoundary
		}
	}
	return b, nil
}

// isBChar: bchars := bcharsnospace / " "; bcharsnospace := DIGIT / ALPHA / "'" / "(" / ")" /
// "+" / "_" / "," / "-" / "." / "/" / ":" / "=" / "?"
func isBChar(c byte) bool {
	switch {
	case '0' <= c && c <= '9', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return true
	}
	return strings.IndexByte("'()+_,-./:=? ", c) >= 0
}

// Parse reads the form in body (a prefix of the request body) up to the first data byte of the
// part named "file". It returns ErrNeedMore while the prefix ends before that, ErrPreDataTooLarge
// once more than max bytes would be needed, ErrNoFile for a form that ends without a file part,
// ErrMalformed for anything RFC 7578 does not allow, ErrDuplicateField for a repeated field. body
// is not kept: the form's strings are copies.
func Parse(body []byte, boundary string, max int) (*Form, error) {
	f, err := parse(body, boundary)
	if err == ErrNeedMore && len(body) >= max || err == nil && f.DataStart > max {
		return nil, ErrPreDataTooLarge
	}
	return f, err
}

func parse(body []byte, boundary string) (*Form, error) {
	delim := "--" + boundary
	var pos int
	switch {
	case len(body) < len(delim):
		if !bytes.HasPrefix([]byte(delim), body) {
			return preamble(body, delim)
		}
		return nil, ErrNeedMore
	case string(body[:len(delim)]) == delim:
		pos = len(delim)
	default:
		return preamble(body, delim)
	}
	f := &Form{}
	for {
		next, err := partStart(body, pos)
		if err != nil {
			return nil, err
		}
		hdrEnd, name, file, ctype, err := partHeaders(body, next)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(name, "file") {
			f.FileName, f.FileContentType, f.DataStart = file, ctype, hdrEnd
			f.substituteFilename()
			return f, nil
		}
		end := bytes.Index(body[hdrEnd:], []byte("\r\n"+delim))
		if end < 0 {
			return nil, ErrNeedMore
		}
		if _, dup := f.Get(name); dup {
			return nil, ErrDuplicateField
		}
		f.Fields = append(f.Fields, Field{Name: name, Value: string(body[hdrEnd : hdrEnd+end])})
		pos = hdrEnd + end + 2 + len(delim)
	}
}

// preamble finds the first delimiter after a preamble (RFC 2046 allows one; browsers send none).
func preamble(body []byte, delim string) (*Form, error) {
	i := bytes.Index(body, []byte("\r\n"+delim))
	if i < 0 {
		return nil, ErrNeedMore
	}
	f, err := parse(body[i+2:], delim[2:])
	if err == nil {
		f.DataStart += i + 2
	}
	return f, err
}

// partStart reads what follows a delimiter at pos: transport padding and CRLF (a part follows),
// or "--" (the form ended: no file part). It returns where the part's headers begin.
func partStart(body []byte, pos int) (int, error) {
	for pos < len(body) && (body[pos] == ' ' || body[pos] == '\t') {
		pos++
	}
	if len(body)-pos < 2 {
		return 0, ErrNeedMore
	}
	switch string(body[pos : pos+2]) {
	case "\r\n":
		return pos + 2, nil
	case "--":
		return 0, ErrNoFile
	}
	return 0, ErrMalformed
}

// partHeaders parses a part's header section starting at pos. It returns where its content
// begins and, from Content-Disposition: form-data, the field name and filename, and the part's
// Content-Type.
func partHeaders(body []byte, pos int) (end int, name, file, ctype string, err error) {
	var hdrs []byte
	switch {
	case len(body)-pos < 2:
		return 0, "", "", "", ErrNeedMore
	case string(body[pos:pos+2]) == "\r\n":
		end = pos + 2 // no headers: not a form-data part
	default:
		i := bytes.Index(body[pos:], []byte("\r\n\r\n"))
		if i < 0 {
			return 0, "", "", "", ErrNeedMore
		}
		hdrs, end = body[pos:pos+i], pos+i+4
	}
	seenCD := false
	for len(hdrs) > 0 {
		line := hdrs
		if i := bytes.Index(hdrs, []byte("\r\n")); i >= 0 {
			line, hdrs = hdrs[:i], hdrs[i+2:]
		} else {
			hdrs = nil
		}
		k, v, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(k) == 0 || bytes.ContainsAny(k, " \t") {
			return 0, "", "", "", ErrMalformed
		}
		v = bytes.TrimSpace(v)
		switch {
		case strings.EqualFold(string(k), "content-disposition"):
			if seenCD {
				return 0, "", "", "", ErrMalformed
			}
			seenCD = true
			d, params, perr := mime.ParseMediaType(string(v))
			if perr != nil || d != "form-data" {
				return 0, "", "", "", ErrMalformed
			}
			name, file = params["name"], params["filename"]
		case strings.EqualFold(string(k), "content-type"):
			ctype = string(v)
		}
	}
	if name == "" {
		return 0, "", "", "", ErrMalformed
	}
	return end, name, file, ctype, nil
}

// substituteFilename replaces ${filename} in the key field with the file part's filename, as S3
// does before it checks the policy.
func (f *Form) substituteFilename() {
	for i := range f.Fields {
		if strings.EqualFold(f.Fields[i].Name, "key") {
			f.Fields[i].Value = strings.ReplaceAll(f.Fields[i].Value, "${filename}", f.FileName)
		}
	}
}

// Tail is the close delimiter the body must end with after the file's data: CRLF "--" boundary
// "--" CRLF. RFC 2046 makes the final CRLF optional; browsers, curl, Go's mime/multipart and
// Python's requests all send it, and the file's length (Content-Length minus DataStart minus the
// tail) can only be known before the data moves if the tail's length is: a body without it, or
// with parts after the file, is refused (see FileLength).
func Tail(boundary string) string { return "\r\n--" + boundary + "--\r\n" }

// FileLength is the length of the file in a body of bodyLen bytes whose data starts at
// dataStart and which ends with Tail(boundary); -1 when the body is too short to hold them.
func FileLength(bodyLen int64, dataStart int, boundary string) int64 {
	n := bodyLen - int64(dataStart) - int64(len(Tail(boundary)))
	if n < 0 {
		return -1
	}
	return n
}

// Scanner finds the multipart delimiter (CRLF "--" boundary) in a file's data fed to it in pieces
// of any size: data that holds it means the file part ended early and more parts follow, which
// the proxy does not store as the file (see Tail). It keeps len(delimiter)-1 bytes between calls.
type Scanner struct {
	delim []byte
	carry []byte // the last len(delim)-1 bytes seen
	join  []byte
}

// NewScanner returns a Scanner for boundary.
func NewScanner(boundary string) *Scanner {
	d := []byte("\r\n--" + boundary)
	return &Scanner{delim: d, carry: make([]byte, 0, len(d)), join: make([]byte, 0, 2*len(d))}
}

// Write feeds p and reports whether the delimiter occurs in everything fed so far.
func (s *Scanner) Write(p []byte) bool {
	k := len(s.delim) - 1
	if len(s.carry) > 0 {
		s.join = append(append(s.join[:0], s.carry...), p[:min(len(p), k)]...)
		if bytes.Contains(s.join, s.delim) {
			return true
		}
	}
	if bytes.Contains(p, s.delim) {
		return true
	}
	if len(p) >= k {
		s.carry = append(s.carry[:0], p[len(p)-k:]...)
	} else {
		s.join = append(append(s.join[:0], s.carry...), p...)
		s.carry = append(s.carry[:0], s.join[max(0, len(s.join)-k):]...)
	}
	return false
}

// FileEnd finds the file's length in a whole body whose file data starts at dataStart: the data
// ends at the first delimiter (CRLF "--" boundary), which must be followed by "--" (the close
// delimiter, then any epilogue) or by CRLF and more parts, and the body must hold the close
// delimiter. Parts after the file are not read (S3 ignores them). ErrMalformed otherwise.
func FileEnd(body []byte, dataStart int, boundary string) (int64, error) {
	if dataStart < 0 || dataStart > len(body) {
		return 0, ErrMalformed
	}
	delim := "\r\n--" + boundary
	i := bytes.Index(body[dataStart:], []byte(delim))
	if i < 0 {
		return 0, ErrMalformed
	}
	after := body[dataStart+i+len(delim):]
	switch {
	case bytes.HasPrefix(after, []byte("--")):
	case bytes.HasPrefix(after, []byte("\r\n")) && bytes.Contains(after, []byte(delim+"--")):
	default:
		return 0, ErrMalformed
	}
	return int64(i), nil
}
