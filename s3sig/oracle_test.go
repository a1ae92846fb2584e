package s3sig_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi/uploadr/s3sig"
)

// The aws-sdk-go-v2 signer is the oracle: every random request must get the
// same Authorization value from it and from s3sig.

const unreservedChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

// refEncode is the test's own S3 URI encoding, written independently of the
// package: every byte but the unreserved ones (and '/' when keepSlash) as %XX.
func refEncode(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(unreservedChars, c) >= 0 || (keepSlash && c == '/') {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// wireEncode encodes s the way some client might put it on the wire: bytes in
// `mayStayRaw` are left raw or percent-encoded at random, everything else is
// percent-encoded with random hex case.
func wireEncode(r *rand.Rand, s, mayStayRaw string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(mayStayRaw, c) >= 0 && r.IntN(4) != 0 {
			b.WriteByte(c)
			continue
		}
		if r.IntN(2) == 0 {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			fmt.Fprintf(&b, "%%%02x", c)
		}
	}
	return b.String()
}

var keyPieces = []string{
	"a", "b", "Z", "0", "9", "-", "_", ".", "~", " ", "  ", "+", "%", "%20", "/", "//", "é", "日本", "😀",
	"$", "&", ",", ":", ";", "=", "@", "!", "*", "'", "(", ")", "[", "]", "?", "#", "\"", "<", ">", "\\",
	"^", "`", "{", "|", "}", "photos", "2024", "file.txt", "..", "./", "\x7f", "\x01", "\xff",
}

func randString(r *rand.Rand, maxLen int) string {
	var b strings.Builder
	for b.Len() < maxLen {
		p := keyPieces[r.IntN(len(keyPieces))]
		if b.Len()+len(p) > maxLen {
			break
		}
		b.WriteString(p)
	}
	return b.String()
}

func randSpaces(r *rand.Rand) string {
	return []string{"", "", " ", "  ", "\t", " \t "}[r.IntN(6)]
}

// randValue makes a header value of visible ASCII with odd spacing around and
// inside it.
func randValue(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString(randSpaces(r))
	n := r.IntN(40)
	for i := 0; i < n; i++ {
		switch r.IntN(8) {
		case 0:
			b.WriteString(strings.Repeat(" ", 1+r.IntN(3)))
		default:
			b.WriteByte(byte(0x21 + r.IntN(0x7e-0x21+1)))
		}
	}
	b.WriteString(randSpaces(r))
	return b.String()
}

func randCase(r *rand.Rand, s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && r.IntN(3) == 0 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

type randomCase struct {
	req     *s3sig.Request
	amzDate []byte
	when    time.Time
	cred    s3sig.Credentials
	region  string
	httpReq *http.Request
}

// randomQuery is a raw query of up to 6 parameters: uploadId/partNumber/x-id and friends, random
// names and values, percent-encoded at random where S3 allows either form.
func randomQuery(r *rand.Rand) string {
	var params []string
	names := []string{"uploadId", "partNumber", "x-id", "versionId", "prefix", "max-keys", "acl", "tagging", "uploads", "list-type"}
	for n := r.IntN(7); n > 0; n-- {
		name := names[r.IntN(len(names))]
		if r.IntN(4) == 0 {
			name = randString(r, 1+r.IntN(12))
			if name == "" {
				name = "k"
			}
		}
		// Raw '+' would be a space to net/url (the oracle's parser) and a '+'
		// to S3, so it is always encoded here; ';' is rejected by net/url.
		p := wireEncode(r, name, unreservedChars+"/:@!$'()*,")
		switch r.IntN(5) {
		case 0: // no '='
		case 1:
			p += "="
		default:
			p += "=" + wireEncode(r, randString(r, r.IntN(30)), unreservedChars+"/:@!$'()*,=")
		}
		params = append(params, p)
	}
	return strings.Join(params, "&")
}

func newRandomCase(t *testing.T, r *rand.Rand) randomCase {
	t.Helper()
	hosts := []string{"examplebucket.s3.amazonaws.com", "s3.us-west-2.amazonaws.com", "127.0.0.1:9000", "minio.local:8443"}
	host := hosts[r.IntN(len(hosts))]
	key := randString(r, r.IntN(1025))
	decodedPath := "/" + key
	if r.IntN(2) == 0 {
		decodedPath = "/bucket-" + fmt.Sprint(r.IntN(10)) + "/" + key
	}
	wirePath := wireEncode(r, decodedPath, unreservedChars+"/$&,:;=@!*'()+")

	rawQuery := randomQuery(r)

	when := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(int64(100 * 365 * 24 * time.Hour)))).Truncate(time.Second)
	amzDate := s3sig.AppendAmzDate(nil, when)
	payloads := []string{s3sig.UnsignedPayload, s3sig.EmptySHA256, s3sig.StreamingSigned,
		s3sig.StreamingSignedTrailer, s3sig.StreamingUnsignedTrailer}
	payload := payloads[r.IntN(len(payloads))]
	if r.IntN(2) == 0 {
		payload = fmt.Sprintf("%016x%016x%016x%016x", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64())
	}

	type hv struct{ name, value string }
	hs := []hv{
		{randCase(r, "host"), host},
		{randCase(r, "x-amz-date"), string(amzDate)},
		{randCase(r, "x-amz-content-sha256"), payload},
	}
	extra := []string{"content-type", "content-md5", "x-amz-storage-class", "x-amz-tagging", "cache-control", "x-amz-acl"}
	for n := r.IntN(6); n > 0; n-- {
		name := "x-amz-meta-" + strings.Repeat("m", 1+r.IntN(3))
		if r.IntN(3) == 0 {
			name = extra[r.IntN(len(extra))]
		}
		for reps := 1 + r.IntN(2); reps > 0; reps-- {
			hs = append(hs, hv{randCase(r, name), randValue(r)})
		}
	}
	var contentLength int64
	if r.IntN(2) == 0 { // the SDK signs content-length when the request has a body
		contentLength = 1 + r.Int64N(5<<30)
		hs = append(hs, hv{randCase(r, "content-length"), fmt.Sprint(contentLength)})
	}
	r.Shuffle(len(hs), func(i, j int) { hs[i], hs[j] = hs[j], hs[i] })

	req := &s3sig.Request{
		Method:      []byte([]string{"PUT", "GET", "POST", "HEAD", "DELETE"}[r.IntN(5)]),
		Path:        []byte(wirePath),
		Query:       []byte(rawQuery),
		PayloadHash: []byte(payload),
	}
	httpReq, err := http.NewRequest(string(req.Method), "https://"+host+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	httpReq.URL.Opaque = "//" + host + refEncode(decodedPath, true)
	httpReq.URL.RawQuery = rawQuery
	httpReq.Host = host
	httpReq.ContentLength = contentLength
	httpReq.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0") // never signed by the SDK
	for _, h := range hs {
		req.Headers = append(req.Headers, s3sig.Header{Name: []byte(h.name), Value: []byte(h.value)})
		if !strings.EqualFold(h.name, "host") && !strings.EqualFold(h.name, "content-length") {
			k := textproto.CanonicalMIMEHeaderKey(h.name)
			httpReq.Header[k] = append(httpReq.Header[k], h.value)
		}
	}
	secret := make([]byte, 40)
	for i := range secret {
		secret[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[r.IntN(64)]
	}
	regions := []string{"us-east-1", "eu-west-3", "ap-southeast-2", "auto"}
	return randomCase{
		req: req, amzDate: amzDate, when: when, httpReq: httpReq,
		cred:   s3sig.Credentials{AccessKey: fmt.Sprintf("AKIA%016X", r.Uint64()), SecretKey: string(secret)},
		region: regions[r.IntN(len(regions))],
	}
}

func cloneRequest(req *s3sig.Request) *s3sig.Request {
	c := &s3sig.Request{
		Method: bytes.Clone(req.Method), Path: bytes.Clone(req.Path), Query: bytes.Clone(req.Query),
		PayloadHash: bytes.Clone(req.PayloadHash),
	}
	for _, h := range req.Headers {
		c.Headers = append(c.Headers, s3sig.Header{Name: bytes.Clone(h.Name), Value: bytes.Clone(h.Value)})
	}
	return c
}

// mutateEncoded changes one byte of a percent-encoded string so that its
// decoded form changes too (a case change inside an escape would not).
func mutateEncoded(r *rand.Rand, b []byte) {
	i := r.IntN(len(b))
	for j := 0; j < len(b); j++ {
		if b[j] != '%' {
			continue
		}
		if i == j+1 || i == j+2 { // a hex digit of an escape: flip its value's low bit
			v := strings.IndexByte("0123456789ABCDEF", strings.ToUpper(string(b[i]))[0])
			b[i] = "0123456789ABCDEF"[v^1]
			return
		}
		j += 2
	}
	switch b[i] {
	case '%': // the escape's '%' itself: the escape becomes literal bytes
		b[i] = 'q'
	case 'x':
		b[i] = 'y'
	default:
		b[i] = 'x'
	}
}

func TestSignMatchesSDKAndVerifyRoundTrip(t *testing.T) {
	const n = 1500
	r := rand.New(rand.NewPCG(1, 2))
	sdk := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	s := s3sig.NewSigner(s3sig.NewKeyCache(16))
	for i := 0; i < n; i++ {
		c := newRandomCase(t, r)
		err := sdk.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.cred.AccessKey, SecretAccessKey: c.cred.SecretKey},
			c.httpReq, string(c.req.PayloadHash), "s3", c.region, c.when)
		if err != nil {
			t.Fatal(err)
		}
		want := c.httpReq.Header.Get("Authorization")
		got, err := s.Sign(nil, c.req, c.cred, c.amzDate, c.region, "s3")
		if err != nil {
			t.Fatalf("case %d: Sign: %v", i, err)
		}
		if string(got) != want {
			creq, _ := s3sig.CanonicalRequest(s, c.req)
			t.Fatalf("case %d: Authorization\ngot  %s\nwant %s\npath %q query %q\nour canonical request:\n%s",
				i, got, want, c.req.Path, c.req.Query, creq)
		}

		var a s3sig.Authorization
		if err := s3sig.ParseAuthorization(got, &a); err != nil {
			t.Fatalf("case %d: ParseAuthorization(%q): %v", i, got, err)
		}
		now := c.when.Add(time.Duration(r.Int64N(int64(2*s3sig.MaxSkew))) - s3sig.MaxSkew)
		if err := s.Verify(c.req, &a, c.cred.SecretKey, c.amzDate, now); err != nil {
			t.Fatalf("case %d: Verify of our own signature: %v", i, err)
		}
		// Headers the client sent but did not sign do not matter.
		withExtra := cloneRequest(c.req)
		withExtra.Headers = append(withExtra.Headers,
			s3sig.Header{Name: []byte("User-Agent"), Value: []byte("aws-cli/2.15.0")},
			s3sig.Header{Name: []byte("Expect"), Value: []byte("100-continue")})
		if err := s.Verify(withExtra, &a, c.cred.SecretKey, c.amzDate, now); err != nil {
			t.Fatalf("case %d: Verify with unsigned extra headers: %v", i, err)
		}
		verifyRejectsMutations(t, r, s, c, &a, i)
	}
}

func verifyRejectsMutations(t *testing.T, r *rand.Rand, s *s3sig.Signer, c randomCase, a *s3sig.Authorization, i int) {
	t.Helper()
	check := func(what string, req *s3sig.Request, secret string, amzDate []byte, now time.Time, want error) {
		t.Helper()
		err := s.Verify(req, a, secret, amzDate, now)
		if err == nil || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("case %d: Verify after changing %s = %v; want %v", i, what, err, want)
		}
	}
	// One byte of a signed header (name or value).
	{
		req := cloneRequest(c.req)
		h := &req.Headers[r.IntN(len(req.Headers))]
		var visible []int
		for j, ch := range h.Value {
			if ch != ' ' && ch != '\t' {
				visible = append(visible, j)
			}
		}
		if len(visible) > 0 && r.IntN(4) != 0 {
			j := visible[r.IntN(len(visible))]
			h.Value[j] = map[bool]byte{true: 'y', false: 'x'}[h.Value[j] == 'x']
			check("header value "+string(h.Name), req, c.cred.SecretKey, c.amzDate, c.when, s3sig.ErrSignatureDoesNotMatch)
		} else {
			j := r.IntN(len(h.Name))
			h.Name[j] = map[bool]byte{true: 'y', false: 'x'}[h.Name[j] == 'x' || h.Name[j] == 'X']
			check("header name "+string(h.Name), req, c.cred.SecretKey, c.amzDate, c.when, s3sig.ErrSignatureDoesNotMatch)
		}
	}
	// One byte of the path.
	{
		req := cloneRequest(c.req)
		mutateEncoded(r, req.Path)
		check("path", req, c.cred.SecretKey, c.amzDate, c.when, s3sig.ErrSignatureDoesNotMatch)
	}
	// One byte of the query.
	if len(c.req.Query) > 0 {
		req := cloneRequest(c.req)
		mutateEncoded(r, req.Query)
		check("query", req, c.cred.SecretKey, c.amzDate, c.when, s3sig.ErrSignatureDoesNotMatch)
	}
	// One byte of the payload hash.
	{
		req := cloneRequest(c.req)
		j := r.IntN(len(req.PayloadHash))
		req.PayloadHash[j] ^= 0x01
		check("payload hash", req, c.cred.SecretKey, c.amzDate, c.when, s3sig.ErrSignatureDoesNotMatch)
	}
	// The method.
	{
		req := cloneRequest(c.req)
		req.Method[0] ^= 0x20
		check("method", req, c.cred.SecretKey, c.amzDate, c.when, s3sig.ErrSignatureDoesNotMatch)
	}
	// One byte of x-amz-date (the value used for the string to sign).
	{
		d := bytes.Clone(c.amzDate)
		j := 9 + r.IntN(6) // hhmmss: the date stays well-formed and in scope
		d[j] = map[bool]byte{true: '1', false: '0'}[d[j] == '0']
		check("x-amz-date", c.req, c.cred.SecretKey, d, c.when, nil)
	}
	// Skew.
	check("clock +16m", c.req, c.cred.SecretKey, c.amzDate, c.when.Add(16*time.Minute), s3sig.ErrRequestTimeTooSkewed)
	check("clock -16m", c.req, c.cred.SecretKey, c.amzDate, c.when.Add(-16*time.Minute), s3sig.ErrRequestTimeTooSkewed)
	// One byte of the secret.
	{
		sec := []byte(c.cred.SecretKey)
		sec[r.IntN(len(sec))] ^= 0x01
		check("secret", c.req, string(sec), c.amzDate, c.when, s3sig.ErrSignatureDoesNotMatch)
	}
}
