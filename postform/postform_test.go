package postform_test

import (
	"bytes"
	"errors"
	"mime/multipart"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/postform"
)

// AWS's documented SigV4 POST example (sigv4-post-example.html): policy, credentials and signature.
const (
	awsPolicy    = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9"
	awsSignature = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
	awsSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	awsBucket    = "sigv4examplebucket"
)

// awsForm is the example's form, field names as the page writes them, then a field after the file.
func awsForm(t testing.TB, mutate func(fields [][2]string) [][2]string) ([]byte, string) {
	fields := [][2]string{
		{"key", "user/user1/${filename}"},
		{"acl", "public-read"},
		{"success_action_redirect", "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},
		{"Content-Type", "image/jpeg"},
		{"x-amz-meta-uuid", "14365123651274"},
		{"x-amz-server-side-encryption", "AES256"},
		{"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"},
		{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
		{"X-Amz-Date", "20151229T000000Z"},
		{"x-amz-meta-tag", ""},
		{"Policy", awsPolicy},
		{"X-Amz-Signature", awsSignature},
	}
	if mutate != nil {
		fields = mutate(fields)
	}
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := w.CreateFormFile("file", "photo.jpg")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write([]byte("JPEGDATA"))
	_ = w.WriteField("submit", "Upload to Amazon S3")
	_ = w.Close()
	return b.Bytes(), w.Boundary()
}

func TestAWSExampleSignature(t *testing.T) {
	if got := postform.Sign(awsSecret, "20151229", "us-east-1", awsPolicy); got != awsSignature {
		t.Fatalf("Sign = %s; want %s", got, awsSignature)
	}
}

func TestAWSExampleForm(t *testing.T) {
	body, boundary := awsForm(t, nil)
	f, err := postform.Parse(body, boundary, postform.MaxPreData)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := f.Get("key"); k != "user/user1/photo.jpg" {
		t.Fatalf("key = %q; want ${filename} replaced", k)
	}
	if got := string(body[f.DataStart : f.DataStart+8]); got != "JPEGDATA" {
		t.Fatalf("data at DataStart = %q", got)
	}
	a, err := postform.ParseAuth(f)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKey != "AKIAIOSFODNN7EXAMPLE" || a.Region != "us-east-1" {
		t.Fatalf("auth = %+v", a)
	}
	if err := a.VerifySignature(awsSecret); err != nil {
		t.Fatal(err)
	}
	if err := a.VerifySignature("wrong"); !errors.Is(err, postform.ErrSignature) {
		t.Fatalf("wrong secret: %v", err)
	}
	p, err := postform.DecodePolicy(a.Policy)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2015, 12, 30, 11, 0, 0, 0, time.UTC)
	if err := p.Check(f, awsBucket, now); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := p.Check(f, awsBucket, now.Add(2*time.Hour)); !errors.Is(err, postform.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	err = p.Check(f, "otherbucket", now)
	if !errors.Is(err, postform.ErrCondition) || !strings.Contains(err.Error(), `Policy Condition failed: ["eq", "$bucket", "sigv4examplebucket"]`) {
		t.Fatalf("bucket: %v", err)
	}
}

func TestConditionFailures(t *testing.T) {
	now := time.Date(2015, 12, 30, 11, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		mutate func([][2]string) [][2]string
		want   error
		detail string
	}{
		{"key prefix", set("key", "user/other/x"), postform.ErrCondition, `["starts-with", "$key", "user/user1/"]`},
		{"content type", set("Content-Type", "text/plain"), postform.ErrCondition, `["starts-with", "$content-type", "image/"]`},
		{"acl", set("acl", "private"), postform.ErrCondition, `["eq", "$acl", "public-read"]`},
		{"meta", set("x-amz-meta-uuid", "1"), postform.ErrCondition, `["eq", "$x-amz-meta-uuid", "14365123651274"]`},
		{"missing field", drop("acl"), postform.ErrCondition, `["eq", "$acl", "public-read"]`},
		{"extra field", add("x-amz-meta-extra", "v"), postform.ErrExtraFields, "Extra input fields: x-amz-meta-extra"},
		{"x-ignore is exempt", add("x-ignore-me", "v"), nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, boundary := awsForm(t, tc.mutate)
			f, err := postform.Parse(body, boundary, postform.MaxPreData)
			if err != nil {
				t.Fatal(err)
			}
			a, err := postform.ParseAuth(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := postform.DecodePolicy(a.Policy)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(f, awsBucket, now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check: %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("Check: %v; want %v with %s", err, tc.want, tc.detail)
			}
		})
	}
}

func set(name, v string) func([][2]string) [][2]string {
	return func(fs [][2]string) [][2]string {
		for i := range fs {
			if fs[i][0] == name {
				fs[i][1] = v
			}
		}
		return fs
	}
}

func drop(name string) func([][2]string) [][2]string {
	return func(fs [][2]string) [][2]string {
		out := fs[:0]
		for _, f := range fs {
			if f[0] != name {
				out = append(out, f)
			}
		}
		return out
	}
}

func add(name, v string) func([][2]string) [][2]string {
	return func(fs [][2]string) [][2]string { return append(fs, [2]string{name, v}) }
}

func TestParseIncremental(t *testing.T) {
	body, boundary := awsForm(t, nil)
	full, err := postform.Parse(body, boundary, postform.MaxPreData)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < full.DataStart; n++ {
		if _, err := postform.Parse(body[:n], boundary, postform.MaxPreData); err != postform.ErrNeedMore {
			t.Fatalf("prefix of %d bytes: %v; want ErrNeedMore", n, err)
		}
	}
	if _, err := postform.Parse(body[:full.DataStart], boundary, postform.MaxPreData); err != nil {
		t.Fatalf("prefix up to the data: %v", err)
	}
	if _, err := postform.Parse(body, boundary, full.DataStart-1); err != postform.ErrPreDataTooLarge {
		t.Fatalf("max below DataStart: %v", err)
	}
	// A part after the file: the tail matches, and the delimiter shows up in the "file data".
	n := postform.FileLength(int64(len(body)), full.DataStart, boundary)
	if string(body[int64(full.DataStart)+n:]) != postform.Tail(boundary) {
		t.Fatal("the body should end with the tail")
	}
	data := body[full.DataStart : int64(full.DataStart)+n]
	for step := 1; step < 40; step += 3 {
		s := postform.NewScanner(boundary)
		found := false
		for i := 0; i < len(data) && !found; i += step {
			found = s.Write(data[i:min(i+step, len(data))])
		}
		if !found {
			t.Fatalf("step %d: the delimiter of the part after the file was not found", step)
		}
	}
	if postform.NewScanner(boundary).Write(data[:8]) {
		t.Fatal("found a delimiter in the file's own bytes")
	}
}

func TestParseErrors(t *testing.T) {
	const b = "XyZ"
	cases := []struct {
		body string
		want error
	}{
		{"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--XyZ--\r\n", postform.ErrNoFile},
		{"--XyZ\r\nContent-Disposition: attachment; name=\"key\"\r\n\r\nk\r\n--XyZ--\r\n", postform.ErrMalformed},
		{"--XyZ\r\nbroken header\r\n\r\nk\r\n--XyZ--\r\n", postform.ErrMalformed},
		{"--XyZ junk", postform.ErrMalformed},
		{"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"A\"\r\n\r\n2\r\n--XyZ\r\n", postform.ErrDuplicateField},
		{"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n", nil},
	}
	for _, tc := range cases {
		_, err := postform.Parse([]byte(tc.body), b, postform.MaxPreData)
		if err != tc.want {
			t.Errorf("Parse(%q) = %v; want %v", tc.body, err, tc.want)
		}
	}
}

func TestBoundary(t *testing.T) {
	for ct, want := range map[string]string{
		"multipart/form-data; boundary=----WebKitFormBoundaryabc":  "----WebKitFormBoundaryabc",
		`Multipart/Form-Data; boundary="a b"`:                      "a b",
		"multipart/form-data":                                      "",
		"multipart/mixed; boundary=x":                              "",
		"multipart/form-data; boundary=" + strings.Repeat("x", 71): "",
	} {
		got, err := postform.Boundary(ct)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("Boundary(%q) = %q, %v; want %q", ct, got, err, want)
		}
	}
	if !postform.IsFormData([]byte("multipart/form-data; boundary=x")) || postform.IsFormData([]byte("multipart/form-datax")) {
		t.Fatal("IsFormData")
	}
}

func TestDecodePolicyErrors(t *testing.T) {
	for _, doc := range []string{
		`{"conditions": []}`,
		`{"expiration": "tomorrow", "conditions": []}`,
		`{"expiration": "2030-01-01T00:00:00Z", "conditions": [["eq", "key", "x"]]}`,
		`{"expiration": "2030-01-01T00:00:00Z", "conditions": [["matches", "$key", "x"]]}`,
		`{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 10, 1]]}`,
		`{"expiration": "2030-01-01T00:00:00Z", "conditions": [{"a": "1", "b": "2"}]}`,
		`not json`,
	} {
		if _, err := postform.DecodePolicy(b64(doc)); !errors.Is(err, postform.ErrPolicyMalformed) {
			t.Errorf("DecodePolicy(%s) = %v; want ErrPolicyMalformed", doc, err)
		}
	}
	if _, err := postform.DecodePolicy("!!!"); !errors.Is(err, postform.ErrPolicyMalformed) {
		t.Errorf("bad base64: %v", err)
	}
	p, err := postform.DecodePolicy(b64(`{"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 10, 100], ["content-length-range", "20", "200"]]}`))
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi, ok := p.LengthRange(); lo != 20 || hi != 100 || !ok {
		t.Fatalf("LengthRange = %d, %d, %v", lo, hi, ok)
	}
	if p.CheckLength(101) != postform.ErrTooLarge || p.CheckLength(19) != postform.ErrTooSmall || p.CheckLength(50) != nil {
		t.Fatal("CheckLength")
	}
}

func TestFileEnd(t *testing.T) {
	const b = "XyZ"
	head := "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n"
	cases := []struct {
		body string
		want int64
		err  error
	}{
		{head + "data\r\n--XyZ--\r\n", 4, nil},
		{head + "data\r\n--XyZ--", 4, nil},
		{head + "data\r\n--XyZ\r\nContent-Disposition: form-data; name=\"submit\"\r\n\r\nUpload\r\n--XyZ--\r\n", 4, nil},
		{head + "\r\n--XyZ--\r\n", 0, nil},
		{head + "data\r\n--XyZ\r\nContent-Disposition: form-data; name=\"submit\"\r\n\r\nUpload", 0, postform.ErrMalformed},
		{head + "data\r\n--XyZjunk", 0, postform.ErrMalformed},
		{head + "data", 0, postform.ErrMalformed},
	}
	for _, tc := range cases {
		got, err := postform.FileEnd([]byte(tc.body), len(head), b)
		if got != tc.want || err != tc.err {
			t.Errorf("FileEnd(%q) = %d, %v; want %d, %v", tc.body, got, err, tc.want, tc.err)
		}
	}
}
