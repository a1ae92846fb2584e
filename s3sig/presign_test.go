package s3sig_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi/uploadr/s3sig"
)

// examplePresignedHost is the host of AWS's query-string example.
const examplePresignedHost = "examplebucket.s3.amazonaws.com"

func TestPresignedGolden(t *testing.T) {
	g := readGolden(t, "testdata/presigned/get-object.golden")
	req := &s3sig.Request{
		Method:  []byte("GET"),
		Path:    []byte("/test.txt"),
		Query:   []byte(g["query"]),
		Headers: []s3sig.Header{{Name: []byte("Host"), Value: []byte(examplePresignedHost)}},
	}
	var p s3sig.Presigned
	if err := s3sig.ParsePresigned(req.Query, &p); err != nil {
		t.Fatalf("ParsePresigned: %v", err)
	}
	if string(p.AccessKey) != exampleAccessKey || string(p.Region) != exampleRegion || p.Expires != 86400 ||
		string(p.SignedHeaders) != "host" || string(p.AmzDate) != exampleDate {
		t.Fatalf("parsed %+v", p)
	}
	keys := s3sig.NewKeyCache(16)
	s := s3sig.NewSigner(keys)
	err := s.VerifyPresigned(req, &p, exampleSecret, exampleTime.Add(time.Hour))
	creq, sts := s3sig.PresignedStrings(s)
	if creq != g["canonical request"] {
		t.Errorf("canonical request:\n%s\nwant\n%s", creq, g["canonical request"])
	}
	if sts != g["string to sign"] {
		t.Errorf("string to sign:\n%s\nwant\n%s", sts, g["string to sign"])
	}
	if err != nil {
		t.Fatalf("VerifyPresigned of AWS's example: %v", err)
	}
	if !s3sig.PresignedKeyCached(keys, exampleSecret, &p) {
		t.Errorf("the key of a verified signature is not cached")
	}
}

// TestPresignedKeyCachedOnlyAfterVerify: a wrong signature leaves no derived key behind.
func TestPresignedKeyCachedOnlyAfterVerify(t *testing.T) {
	g := readGolden(t, "testdata/presigned/get-object.golden")
	q := strings.Replace(g["query"], "X-Amz-Signature=aeee", "X-Amz-Signature=beee", 1)
	req := &s3sig.Request{Method: []byte("GET"), Path: []byte("/test.txt"), Query: []byte(q),
		Headers: []s3sig.Header{{Name: []byte("host"), Value: []byte(examplePresignedHost)}}}
	var p s3sig.Presigned
	if err := s3sig.ParsePresigned(req.Query, &p); err != nil {
		t.Fatal(err)
	}
	keys := s3sig.NewKeyCache(16)
	s := s3sig.NewSigner(keys)
	if err := s.VerifyPresigned(req, &p, exampleSecret, exampleTime); !errors.Is(err, s3sig.ErrSignatureDoesNotMatch) {
		t.Fatalf("VerifyPresigned = %v; want ErrSignatureDoesNotMatch", err)
	}
	if keys.Len() != 0 {
		t.Fatalf("a key derived for a wrong signature was cached")
	}
}

func TestIsPresigned(t *testing.T) {
	for q, want := range map[string]bool{
		"":                         false,
		"uploads":                  false,
		"partNumber=1&uploadId=x":  false,
		"X-Amz-Signature=ab":       true,
		"a=b&X-Amz-Credential=x":   true,
		"X-Amz-Algorithm":          true,
		"X-Amz-Signatur%65=1":      true, // the key is read decoded
		"x-amz-signature=1":        false,
		"a=X-Amz-Signature=":       false, // in a value
		"X-Amz-Date=20130524T0000": false,
	} {
		if got := s3sig.IsPresigned([]byte(q)); got != want {
			t.Errorf("IsPresigned(%q) = %v; want %v", q, got, want)
		}
	}
}

const presignSig = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"

func TestParsePresignedErrors(t *testing.T) {
	const (
		alg   = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
		cred  = "X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		date  = "X-Amz-Date=20130524T000000Z"
		exp   = "X-Amz-Expires=60"
		sh    = "X-Amz-SignedHeaders=host%3Bx-amz-meta-a"
		sig   = "X-Amz-Signature=" + presignSig
		valid = alg + "&" + cred + "&" + date + "&" + exp + "&" + sh + "&" + sig
	)
	var p s3sig.Presigned
	if err := s3sig.ParsePresigned([]byte("partNumber=1&"+valid+"&X-Amz-Security-Token=tok&uploadId=x"), &p); err != nil {
		t.Fatalf("valid: %v", err)
	}
	if string(p.SignedHeaders) != "host;x-amz-meta-a" || string(p.RawSignedHeaders) != "host%3Bx-amz-meta-a" ||
		!p.SecurityToken || string(p.AccessKey) != "AK" || p.Expires != 60 {
		t.Fatalf("parsed %+v", p)
	}
	qp := s3sig.ErrAuthorizationQueryParameters
	cases := []struct {
		query string
		want  error
	}{
		{strings.Replace(valid, exp, "X-Amz-Expires=0", 1), s3sig.ErrPresignExpiresRange},
		{strings.Replace(valid, exp, "X-Amz-Expires=604801", 1), s3sig.ErrPresignExpiresRange},
		{strings.Replace(valid, exp, "X-Amz-Expires=-1", 1), s3sig.ErrPresignExpiresRange},
		{strings.Replace(valid, exp, "X-Amz-Expires=99999999999999999999999", 1), s3sig.ErrPresignExpiresRange},
		{strings.Replace(valid, exp, "X-Amz-Expires=1h", 1), qp},
		{strings.Replace(valid, exp, "X-Amz-Expires=", 1), qp},
		{strings.Replace(valid, exp, "X-Amz-Expires=-", 1), qp},
		{strings.Replace(valid, exp+"&", "", 1), qp},
		{strings.Replace(valid, alg+"&", "", 1), qp},
		{strings.Replace(valid, cred+"&", "", 1), qp},
		{strings.Replace(valid, date+"&", "", 1), qp},
		{strings.Replace(valid, sh+"&", "", 1), qp},
		{strings.Replace(valid, "&"+sig, "", 1), qp},
		{valid + "&" + sig, qp},
		{valid + "&X-Amz-Date=20130524T000000Z", qp},
		{valid + "&X-Amz-Security-Token=a&X-Amz-Security-Token=b", qp},
		{strings.Replace(valid, "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1), qp},
		{strings.Replace(valid, "aws4_request", "aws5_request", 1), qp},
		{strings.Replace(valid, "20130524T000000Z", "20130524T000000", 1), qp},
		{strings.Replace(valid, "host%3Bx", "host%3B%3Bx", 1), qp},
		{strings.Replace(valid, "host%3Bx", "host%3", 1), qp},
		{strings.Replace(valid, presignSig, presignSig[:63], 1), qp},
		{strings.Replace(valid, presignSig, presignSig[:63]+"g", 1), qp},
	}
	for _, tc := range cases {
		if err := s3sig.ParsePresigned([]byte(tc.query), &p); !errors.Is(err, tc.want) {
			t.Errorf("ParsePresigned(%q) = %v; want %v", tc.query, err, tc.want)
		}
	}
}

func TestVerifyPresignedClock(t *testing.T) {
	g := readGolden(t, "testdata/presigned/get-object.golden")
	req := &s3sig.Request{Method: []byte("GET"), Path: []byte("/test.txt"), Query: []byte(g["query"]),
		Headers: []s3sig.Header{{Name: []byte("host"), Value: []byte(examplePresignedHost)}}}
	var p s3sig.Presigned
	if err := s3sig.ParsePresigned(req.Query, &p); err != nil {
		t.Fatal(err)
	}
	s := s3sig.NewSigner(s3sig.NewKeyCache(16))
	for _, tc := range []struct {
		now  time.Time
		want error
	}{
		{exampleTime, nil},
		{exampleTime.Add(86400 * time.Second), nil}, // the last valid second
		{exampleTime.Add(86401 * time.Second), s3sig.ErrPresignExpired},
		{exampleTime.Add(-s3sig.MaxSkew), nil},
		{exampleTime.Add(-s3sig.MaxSkew - time.Second), s3sig.ErrPresignNotYetValid},
	} {
		if err := s.VerifyPresigned(req, &p, exampleSecret, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("VerifyPresigned at %v = %v; want %v", tc.now, err, tc.want)
		}
	}
	// The scope's date must be X-Amz-Date's day, the service s3, and host signed.
	for _, q := range []string{
		strings.Replace(g["query"], "X-Amz-Date=20130524", "X-Amz-Date=20130525", 1),
		strings.Replace(g["query"], "%2Fs3%2F", "%2Fs4%2F", 1),
		strings.Replace(g["query"], "X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range", 1),
	} {
		req.Query = []byte(q)
		if err := s3sig.ParsePresigned(req.Query, &p); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyPresigned(req, &p, exampleSecret, exampleTime.Add(24*time.Hour)); !errors.Is(err, s3sig.ErrAuthorizationQueryParameters) {
			t.Errorf("VerifyPresigned(%q) = %v; want ErrAuthorizationQueryParameters", q, err)
		}
	}
}

// TestVerifyPresignedMatchesSDK presigns random requests with aws-sdk-go-v2's
// PresignHTTP (the oracle) and verifies them, then checks that changing any
// part of the request breaks the signature.
func TestVerifyPresignedMatchesSDK(t *testing.T) {
	const n = 1000
	r := rand.New(rand.NewPCG(3, 4))
	sdk := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	s := s3sig.NewSigner(s3sig.NewKeyCache(16))
	var p s3sig.Presigned
	for i := 0; i < n; i++ {
		c := newRandomCase(t, r)
		hr := c.httpReq
		hr.Header.Del("X-Amz-Date")
		payload := s3sig.UnsignedPayload
		if r.IntN(4) == 0 {
			payload = s3sig.EmptySHA256
			hr.Header.Set("X-Amz-Content-Sha256", payload)
		} else {
			hr.Header.Del("X-Amz-Content-Sha256")
		}
		expires := 1 + r.IntN(s3sig.MaxPresignExpires)
		q := hr.URL.RawQuery
		if q != "" {
			q += "&"
		}
		hr.URL.RawQuery = q + "X-Amz-Expires=" + itoa(expires)
		uri, hdr, err := sdk.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: c.cred.AccessKey, SecretAccessKey: c.cred.SecretKey},
			hr, payload, "s3", c.region, c.when)
		if err != nil {
			t.Fatal(err)
		}
		_, rawQuery, _ := strings.Cut(uri, "?")
		req := &s3sig.Request{Method: c.req.Method, Path: c.req.Path, Query: []byte(rawQuery)}
		for name, vs := range hdr {
			for _, v := range vs {
				req.Headers = append(req.Headers, s3sig.Header{Name: []byte(name), Value: []byte(v)})
			}
		}
		if hr.Header.Get("X-Amz-Content-Sha256") != "" {
			req.PayloadHash = []byte(payload)
		}
		if err := s3sig.ParsePresigned(req.Query, &p); err != nil {
			t.Fatalf("case %d: ParsePresigned(%q): %v", i, req.Query, err)
		}
		now := c.when.Add(time.Duration(r.Int64N(int64(expires)+1)) * time.Second)
		if err := s.VerifyPresigned(req, &p, c.cred.SecretKey, now); err != nil {
			creq, _ := s3sig.PresignedStrings(s)
			t.Fatalf("case %d: VerifyPresigned of the SDK's URL %s: %v\nheaders %v\nour canonical request:\n%s", i, uri, err, hdr, creq)
		}
		// Mutations: path, query, a signed header, method, payload, secret.
		check := func(what string, req *s3sig.Request, secret string) {
			t.Helper()
			if err := s3sig.ParsePresigned(req.Query, &p); err != nil {
				return // a mutation of an auth parameter may be refused earlier: fine
			}
			if err := s.VerifyPresigned(req, &p, secret, c.when); err == nil {
				t.Fatalf("case %d: VerifyPresigned after changing %s passed", i, what)
			}
		}
		m := *req
		m.Path = bytes.Clone(req.Path)
		mutateEncoded(r, m.Path)
		check("path", &m, c.cred.SecretKey)
		m = *req
		m.Query = bytes.Clone(req.Query)
		mutateEncoded(r, m.Query)
		check("query", &m, c.cred.SecretKey)
		m = *req
		m.Method = []byte(map[bool]string{true: "PUT", false: "POST"}[string(req.Method) != "PUT"])
		check("method", &m, c.cred.SecretKey)
		m = *req
		m.Headers = append([]s3sig.Header(nil), req.Headers...)
		j := r.IntN(len(m.Headers))
		m.Headers[j].Value = append(bytes.Clone(m.Headers[j].Value), 'x')
		check("header "+string(m.Headers[j].Name), &m, c.cred.SecretKey)
		m = *req
		if m.PayloadHash == nil {
			m.PayloadHash = []byte(s3sig.EmptySHA256)
		} else {
			m.PayloadHash = nil
		}
		check("payload hash", &m, c.cred.SecretKey)
		check("secret", req, c.cred.SecretKey+"x")
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

func FuzzParsePresigned(f *testing.F) {
	for _, s := range []string{
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=" + presignSig,
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host%3Bx-amz-meta-a&X-Amz-Signature=" + presignSig + "&X-Amz-Security-Token=t",
		"X-Amz-Expires=-1&X-Amz-Signature",
		"X-Amz-Signatur%65=%&&&=",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		orig := bytes.Clone(q)
		var p s3sig.Presigned
		err := s3sig.ParsePresigned(q, &p)
		if !bytes.Equal(q, orig) {
			t.Fatalf("ParsePresigned modified its input")
		}
		if err != nil {
			if !errors.Is(err, s3sig.ErrAuthorizationQueryParameters) {
				t.Fatalf("ParsePresigned(%q) = %v, not an ErrAuthorizationQueryParameters", q, err)
			}
			return
		}
		if !s3sig.IsPresigned(q) {
			t.Fatalf("ParsePresigned accepted %q, IsPresigned says no", q)
		}
		if len(p.AccessKey) == 0 || len(p.Date) != 8 || len(p.Region) == 0 || len(p.Service) == 0 ||
			len(p.SignedHeaders) == 0 || len(p.Signature) != 64 || len(p.AmzDate) != 16 ||
			p.Expires < 1 || p.Expires > s3sig.MaxPresignExpires {
			t.Fatalf("accepted %q with fields %+v", q, p)
		}
		// Parsing again into the same value gives the same result (the buffer is reused).
		first := p.Authorization
		sig := string(first.Signature)
		if err := s3sig.ParsePresigned(q, &p); err != nil || string(p.Signature) != sig {
			t.Fatalf("second parse: %v %q", err, p.Signature)
		}
	})
}
