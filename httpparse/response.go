package httpparse

// ParseResponse parses the response head at the start of buf (an upstream
// server's answer) with the same contract as Parse: nil when complete,
// ErrNeedMore to be called again with the same resp and a longer buf with
// the same prefix, or an *Error; it resumes without rescanning, keeps no
// reference to buf or resp, and does not allocate. lim.MaxTargetBytes is not
// used.
//
//	status-line   = HTTP-version SP status-code SP [ reason-phrase ]
//	status-code   = 3DIGIT
//	reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
//
// ending in CRLF (RFC 9112 4). A missing SP before an empty reason-phrase
// ("HTTP/1.1 200\r\n") is tolerated. Status codes 100..999 are accepted. A 1xx
// response (e.g. 100 Continue) is a complete head of its own: the caller
// decides, then calls Reset and parses the next head after HeadLen.
//
// Transfer-Encoding must end with chunked, applied once (RFC 9112 6.1), and
// must not come with Content-Length (RFC 9112 6.3 calls that likely
// smuggling); otherwise ErrTransferCoding or ErrTEWithContentLength.
func (p *Parser) ParseResponse(buf []byte, lim Limits, resp *Response) error {
	switch {
	case p.state == stDone:
		return nil
	case p.state == stFailed:
		return p.err
	case p.mode == modeRequest || int(p.pos) > len(buf):
		return p.fail(ErrMisuse)
	case p.state == stInit:
		p.mode = modeResponse
		p.state = stRespVersion
		resp.reset()
	}
	maxHead := lim.head()
	end := min(len(buf), maxHead)
	start := int(p.pos)
	i, e := start, (*Error)(nil)
	if p.state < stLineStart {
		i, e = p.statusLine(buf, i, end, resp)
	}
	for e == nil && p.state != stDone {
		i, e = p.fieldLine(buf, i, end, &resp.Headers, &resp.NumHeaders)
		if e == nil && p.state == stLineStart {
			e = p.responseField(buf, resp, &resp.Headers[resp.NumHeaders-1])
		}
	}
	p.examined += int64(i - start)
	p.pos = int32(i)
	switch {
	case e == needMore:
		if len(buf) >= maxHead {
			return p.fail(ErrHeadTooLarge)
		}
		return ErrNeedMore
	case e != nil:
		return p.fail(e)
	}
	if p.flags&fTransferEncoding != 0 {
		if p.flags&fContentLength != 0 {
			return p.fail(ErrTEWithContentLength)
		}
		if p.flags&fChunked == 0 {
			return p.fail(ErrTransferCoding)
		}
		resp.Chunked = true
	}
	resp.KeepAlive = p.keepAlive(resp.Minor)
	resp.HeadLen = i
	return nil
}

func (r *Response) reset() {
	r.Minor = 0
	r.Status = 0
	r.Reason = Span{}
	r.NumHeaders = 0
	r.HeadLen = 0
	r.ContentLength = -1
	r.Chunked = false
	r.KeepAlive = false
}

// statusLine scans the status-line from i; see ParseResponse for the grammar.
func (p *Parser) statusLine(buf []byte, i, end int, resp *Response) (int, *Error) {
	for i < end {
		switch p.state {
		case stRespVersion:
			var e *Error
			if i, e = p.version(buf[i], i, &resp.Minor, ' '); e != nil {
				if e == ErrMalformedVersion {
					e = ErrStatusLine
				}
				return i, e
			}
		case stStatus:
			c := buf[i]
			switch k := i - int(p.mark); {
			case k < 3:
				if c < '0' || c > '9' || k == 0 && c == '0' {
					return i, badStatusByte(c)
				}
				resp.Status = resp.Status*10 + int(c-'0')
			case c == ' ':
				p.mark = int32(i + 1)
				p.state = stReason
			case c == '\r':
				resp.Reason = span(i, i)
				p.state = stStatusLF
			default:
				return i, badStatusByte(c)
			}
			i++
		case stReason:
			i = scanValue(buf, i, end)
			if i == end {
				return i, needMore
			}
			if c := buf[i]; c != '\r' {
				return i, badStatusByte(c)
			}
			resp.Reason = span(int(p.mark), i)
			p.state = stStatusLF
			i++
		case stStatusLF:
			if buf[i] != '\n' {
				return i, ErrBareCR
			}
			p.state = stLineStart
			return i + 1, nil
		}
	}
	return i, needMore
}

func badStatusByte(c byte) *Error {
	if c == '\n' {
		return ErrBareLF
	}
	return ErrStatusLine
}

// responseField applies the meaning of a completed response field line.
func (p *Parser) responseField(buf []byte, resp *Response, h *Header) *Error {
	switch p.fieldKind(h.Name.Bytes(buf)) {
	case kContentLength:
		n, e := p.contentLength(h.Value.Bytes(buf))
		if e != nil {
			return e
		}
		resp.ContentLength = n
	case kTransferEncoding:
		// RFC 9112 6.1: Transfer-Encoding = #transfer-coding, and
		//   transfer-coding = token *( OWS ";" OWS transfer-parameter )
		// chunked must be the final coding and applied only once; several
		// field lines form one list.
		v := h.Value.Bytes(buf)
		p.examined += int64(len(v))
		p.flags |= fTransferEncoding
		for j := 0; j < len(v); {
			var el []byte
			el, j = nextElement(v, j)
			if len(el) == 0 {
				continue
			}
			if p.flags&fChunked != 0 {
				return ErrTransferCoding // a coding after chunked, or chunked twice
			}
			if equalFold(codingName(el), "chunked") {
				p.flags |= fChunked
			}
		}
	case kConnection:
		p.connection(h.Value.Bytes(buf))
	}
	return nil
}

// codingName returns the transfer-coding's token, without parameters.
func codingName(el []byte) []byte {
	for k, c := range el {
		if c == ';' || class[c]&cOWS != 0 {
			return el[:k]
		}
	}
	return el
}
