package s3sig_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

const sig64 = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"

func TestParseAuthorization(t *testing.T) {
	const cred = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"
	const sh = "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"
	const sg = "Signature=" + sig64
	good := []string{
		"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sg,
		"AWS4-HMAC-SHA256 " + cred + "," + sh + "," + sg,
		"AWS4-HMAC-SHA256  " + cred + " ,  " + sh + ",\t" + sg + "  ",
		"  AWS4-HMAC-SHA256 " + sg + ", " + cred + ", " + sh,
		"AWS4-HMAC-SHA256\t" + cred + ", " + sh + ", " + sg,
		"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + strings.ToUpper(sig64),
	}
	for _, v := range good {
		var a s3sig.Authorization
		if err := s3sig.ParseAuthorization([]byte(v), &a); err != nil {
			t.Errorf("ParseAuthorization(%q) = %v; want nil", v, err)
			continue
		}
		got := strings.Join([]string{string(a.AccessKey), string(a.Date), string(a.Region),
			string(a.Service), string(a.SignedHeaders), strings.ToLower(string(a.Signature))}, "|")
		want := "AKIAIOSFODNN7EXAMPLE|20130524|us-east-1|s3|host;range;x-amz-content-sha256;x-amz-date|" + sig64
		if got != want {
			t.Errorf("ParseAuthorization(%q):\ngot  %s\nwant %s", v, got, want)
		}
	}

	bad := []struct {
		v   string
		err error
	}{
		{"", s3sig.ErrAuthorizationHeaderMalformed},
		{"   ", s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=", s3sig.ErrUnsupportedAuth},
		{"Bearer abc", s3sig.ErrUnsupportedAuth},
		{"AWS4-ECDSA-P256-SHA256 " + cred + ", " + sh + ", " + sg, s3sig.ErrUnsupportedAuth},
		{"aws4-hmac-sha256 " + cred + ", " + sh + ", " + sg, s3sig.ErrUnsupportedAuth},
		{"AWS4-HMAC-SHA256", s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 ", s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + cred + ", " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sg + ", Foo=bar", s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sg + ",", s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + " " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 Credential, " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_reques, " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3, " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request, " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 Credential=AK/2013052/us-east-1/s3/aws4_request, " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 Credential=AK/2013052x/us-east-1/s3/aws4_request, " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 Credential=AK/20130524//s3/aws4_request, " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1//aws4_request, " + sh + ", " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=, " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;;x-amz-date, " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;, " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=;host, " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host x, " + sg, s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + sig64[:63], s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + sig64 + "0", s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=" + sig64[:63] + "g", s3sig.ErrAuthorizationHeaderMalformed},
		{"AWS4-HMAC-SHA256 " + cred + ", " + sh + ", Signature=", s3sig.ErrAuthorizationHeaderMalformed},
	}
	for _, tt := range bad {
		var a s3sig.Authorization
		err := s3sig.ParseAuthorization([]byte(tt.v), &a)
		if !errors.Is(err, tt.err) {
			t.Errorf("ParseAuthorization(%q) = %v; want %v", tt.v, err, tt.err)
		}
		if err != nil && strings.Contains(err.Error(), sig64) {
			t.Errorf("error %q quotes the signature", err)
		}
	}
}

// exampleRequest is AWS's GET Object example, signed.
func exampleRequest(t *testing.T) (*s3sig.Request, []byte, s3sig.Authorization) {
	t.Helper()
	g := readGolden(t, "testdata/get-object.golden")
	req, amzDate := requestFromHead(t, g["request"])
	var a s3sig.Authorization
	if err := s3sig.ParseAuthorization([]byte(g["authorization"]), &a); err != nil {
		t.Fatal(err)
	}
	return req, amzDate, a
}

func TestVerifyErrors(t *testing.T) {
	type mod struct {
		req     func(*s3sig.Request)
		auth    func(*s3sig.Authorization)
		amzDate string
		now     time.Duration // offset from exampleTime
		secret  string
	}
	tests := []struct {
		name string
		mod  mod
		err  error
	}{
		{"ok", mod{}, nil},
		{"ok skew -15m", mod{now: -15 * time.Minute}, nil},
		{"ok skew +15m", mod{now: 15 * time.Minute}, nil},
		{"skew +15m1s", mod{now: 15*time.Minute + time.Second}, s3sig.ErrRequestTimeTooSkewed},
		{"skew -15m1s", mod{now: -15*time.Minute - time.Second}, s3sig.ErrRequestTimeTooSkewed},
		{"skew a day", mod{now: 24 * time.Hour}, s3sig.ErrRequestTimeTooSkewed},
		{"no date", mod{amzDate: "-"}, s3sig.ErrMissingDate},
		{"bad date", mod{amzDate: "20130524T000000"}, s3sig.ErrMissingDate},
		{"bad date 2", mod{amzDate: "Fri, 24 May 2013 00:00:00 GMT"}, s3sig.ErrMissingDate},
		{"scope date differs", mod{auth: func(a *s3sig.Authorization) { a.Date = []byte("20130523") }}, s3sig.ErrAuthorizationHeaderMalformed},
		{"amz date other day", mod{amzDate: "20130523T235959Z", now: -time.Second}, s3sig.ErrAuthorizationHeaderMalformed},
		{"service not s3", mod{auth: func(a *s3sig.Authorization) { a.Service = []byte("s3x") }}, s3sig.ErrAuthorizationHeaderMalformed},
		{"service iam", mod{auth: func(a *s3sig.Authorization) { a.Service = []byte("iam") }}, s3sig.ErrAuthorizationHeaderMalformed},
		{"host not signed", mod{auth: func(a *s3sig.Authorization) { a.SignedHeaders = []byte("range;x-amz-content-sha256;x-amz-date") }}, s3sig.ErrAuthorizationHeaderMalformed},
		{"signed header absent", mod{req: func(r *s3sig.Request) { r.Headers = r.Headers[:len(r.Headers)-1] }}, s3sig.ErrSignatureDoesNotMatch},
		{"signed list names extra", mod{auth: func(a *s3sig.Authorization) {
			a.SignedHeaders = []byte("host;range;x-amz-content-sha256;x-amz-date;x-amz-meta-a")
		}}, s3sig.ErrSignatureDoesNotMatch},
		{"signed list shorter", mod{auth: func(a *s3sig.Authorization) { a.SignedHeaders = []byte("host;x-amz-content-sha256;x-amz-date") }}, s3sig.ErrSignatureDoesNotMatch},
		{"unsigned extra header ok", mod{req: func(r *s3sig.Request) {
			r.Headers = append(r.Headers, s3sig.Header{Name: []byte("User-Agent"), Value: []byte("aws-cli")})
		}}, nil},
		{"header case ok", mod{req: func(r *s3sig.Request) { r.Headers[0].Name = []byte("HOST") }}, nil},
		{"header value", mod{req: func(r *s3sig.Request) { r.Headers[1].Value = []byte(" bytes=0-8") }}, s3sig.ErrSignatureDoesNotMatch},
		{"header value spacing ok", mod{req: func(r *s3sig.Request) { r.Headers[1].Value = []byte("   bytes=0-9 \t") }}, nil},
		{"duplicated header", mod{req: func(r *s3sig.Request) {
			r.Headers = append(r.Headers, s3sig.Header{Name: []byte("Range"), Value: []byte("bytes=0-9")})
		}}, s3sig.ErrSignatureDoesNotMatch},
		{"method", mod{req: func(r *s3sig.Request) { r.Method = []byte("PUT") }}, s3sig.ErrSignatureDoesNotMatch},
		{"path", mod{req: func(r *s3sig.Request) { r.Path = []byte("/test.txu") }}, s3sig.ErrSignatureDoesNotMatch},
		{"path encoded same ok", mod{req: func(r *s3sig.Request) { r.Path = []byte("/%74est.txt") }}, nil},
		{"path bad escape", mod{req: func(r *s3sig.Request) { r.Path = []byte("/test%.txt") }}, s3sig.ErrInvalidURI},
		{"query", mod{req: func(r *s3sig.Request) { r.Query = []byte("acl") }}, s3sig.ErrSignatureDoesNotMatch},
		{"query bad escape", mod{req: func(r *s3sig.Request) { r.Query = []byte("a=%") }}, s3sig.ErrInvalidURI},
		{"payload hash", mod{req: func(r *s3sig.Request) { r.PayloadHash = []byte(s3sig.UnsignedPayload) }}, s3sig.ErrSignatureDoesNotMatch},
		{"region", mod{auth: func(a *s3sig.Authorization) { a.Region = []byte("us-east-2") }}, s3sig.ErrSignatureDoesNotMatch},
		{"secret", mod{secret: exampleSecret[:len(exampleSecret)-1] + "X"}, s3sig.ErrSignatureDoesNotMatch},
		{"empty secret", mod{secret: "-"}, s3sig.ErrSignatureDoesNotMatch},
		{"signature", mod{auth: func(a *s3sig.Authorization) { a.Signature = []byte(strings.Repeat("0", 64)) }}, s3sig.ErrSignatureDoesNotMatch},
		{"signature upper ok", mod{auth: func(a *s3sig.Authorization) { a.Signature = []byte(strings.ToUpper(sig64)) }}, nil},
		{"signature short", mod{auth: func(a *s3sig.Authorization) { a.Signature = []byte(sig64[:10]) }}, s3sig.ErrAuthorizationHeaderMalformed},
		{"signature not hex", mod{auth: func(a *s3sig.Authorization) { a.Signature = []byte(sig64[:63] + "x") }}, s3sig.ErrAuthorizationHeaderMalformed},
		{"amz date one second later", mod{amzDate: "20130524T000001Z"}, s3sig.ErrSignatureDoesNotMatch},
	}
	s := s3sig.NewSigner(s3sig.NewKeyCache(8))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, amzDate, a := exampleRequest(t)
			if tt.mod.req != nil {
				tt.mod.req(req)
			}
			if tt.mod.auth != nil {
				tt.mod.auth(&a)
			}
			switch tt.mod.amzDate {
			case "":
			case "-":
				amzDate = nil
			default:
				amzDate = []byte(tt.mod.amzDate)
			}
			secret := exampleSecret
			switch tt.mod.secret {
			case "":
			case "-":
				secret = ""
			default:
				secret = tt.mod.secret
			}
			err := s.Verify(req, &a, secret, amzDate, exampleTime.Add(tt.mod.now))
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("Verify = %v; want %v", err, tt.err)
			}
			if err != nil && (strings.Contains(err.Error(), exampleSecret) || strings.Contains(err.Error(), sig64)) {
				t.Errorf("error %q leaks the secret or the signature", err)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	req, amzDate, _ := exampleRequest(t)
	s := s3sig.NewSigner(nil)
	cred := s3sig.Credentials{AccessKey: exampleAccessKey, SecretKey: exampleSecret}
	tests := []struct {
		name    string
		req     func(*s3sig.Request)
		amzDate string
		err     error
	}{
		{"no date", nil, "-", s3sig.ErrMissingDate},
		{"bad date", nil, "20130524", s3sig.ErrMissingDate},
		{"bad path", func(r *s3sig.Request) { r.Path = []byte("/%") }, "", s3sig.ErrInvalidURI},
		{"bad query", func(r *s3sig.Request) { r.Query = []byte("x=%G1") }, "", s3sig.ErrInvalidURI},
	}
	for _, tt := range tests {
		r := *req
		if tt.req != nil {
			tt.req(&r)
		}
		d := amzDate
		switch tt.amzDate {
		case "":
		case "-":
			d = nil
		default:
			d = []byte(tt.amzDate)
		}
		out, err := s.Sign([]byte("keep"), &r, cred, d, exampleRegion, "s3")
		if !errors.Is(err, tt.err) {
			t.Errorf("%s: Sign error = %v; want %v", tt.name, err, tt.err)
		}
		if string(out) != "keep" {
			t.Errorf("%s: Sign returned %q on error; want dst unchanged", tt.name, out)
		}
	}
}
