package s3sig_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// The credentials of AWS's published SigV4 examples.
const (
	exampleAccessKey = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret    = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exampleDate      = "20130524T000000Z"
	exampleRegion    = "us-east-1"
)

var exampleTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

// readGolden splits a golden file into its "-- name --" sections. Lines
// before the first section starting with '#' are comments. Each section's
// text loses its final newline.
func readGolden(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	var name string
	var body strings.Builder
	flush := func() {
		if name != "" {
			sections[name] = strings.TrimSuffix(body.String(), "\n")
		}
		body.Reset()
	}
	for _, line := range strings.SplitAfter(string(b), "\n") {
		trimmed := strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") {
			flush()
			name = strings.TrimSuffix(strings.TrimPrefix(trimmed, "-- "), " --")
			continue
		}
		if name == "" {
			continue // comment
		}
		body.WriteString(line)
	}
	flush()
	return sections
}

// requestFromHead turns an HTTP request head ("METHOD target HTTP/1.1" and
// "Name: value" lines) into a Request. Header values are kept as on the wire
// (leading space included) so that trimming is exercised. PayloadHash is the
// x-amz-content-sha256 value and amzDate the x-amz-date value.
func requestFromHead(t *testing.T, head string) (req *s3sig.Request, amzDate []byte) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(head))
	if !sc.Scan() {
		t.Fatal("empty head")
	}
	parts := strings.Split(sc.Text(), " ")
	if len(parts) != 3 {
		t.Fatalf("request line %q", sc.Text())
	}
	path, query, _ := strings.Cut(parts[1], "?")
	req = &s3sig.Request{Method: []byte(parts[0]), Path: []byte(path), Query: []byte(query)}
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			t.Fatalf("header line %q", sc.Text())
		}
		req.Headers = append(req.Headers, s3sig.Header{Name: []byte(name), Value: []byte(value)})
		switch strings.ToLower(name) {
		case "x-amz-content-sha256":
			req.PayloadHash = []byte(strings.TrimSpace(value))
		case "x-amz-date":
			amzDate = []byte(strings.TrimSpace(value))
		}
	}
	return req, amzDate
}

func TestKnownAnswers(t *testing.T) {
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d golden files; want at least 4", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			g := readGolden(t, file)
			for _, sec := range []string{"request", "canonical-request", "string-to-sign", "authorization"} {
				if _, ok := g[sec]; !ok {
					t.Fatalf("section %q missing", sec)
				}
			}
			req, amzDate := requestFromHead(t, g["request"])
			if string(amzDate) != exampleDate {
				t.Fatalf("x-amz-date %q; want %q", amzDate, exampleDate)
			}
			s := s3sig.NewSigner(s3sig.NewKeyCache(4))

			creq, err := s3sig.CanonicalRequest(s, req)
			if err != nil {
				t.Fatalf("CanonicalRequest: %v", err)
			}
			if creq != g["canonical-request"] {
				t.Errorf("canonical request:\ngot:\n%s\nwant:\n%s", creq, g["canonical-request"])
			}
			sts, err := s3sig.StringToSign(s, req, amzDate, exampleRegion, "s3")
			if err != nil {
				t.Fatalf("StringToSign: %v", err)
			}
			if sts != g["string-to-sign"] {
				t.Errorf("string to sign:\ngot:\n%s\nwant:\n%s", sts, g["string-to-sign"])
			}

			cred := s3sig.Credentials{AccessKey: exampleAccessKey, SecretKey: exampleSecret}
			dst := []byte("prefix:")
			out, err := s.Sign(dst, req, cred, amzDate, exampleRegion, "s3")
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got, want := string(out), "prefix:"+g["authorization"]; got != want {
				t.Errorf("Sign:\ngot  %s\nwant %s", got, want)
			}

			// A second signer with a cold cache, and the warm one again, agree.
			out2, err := s3sig.NewSigner(nil).Sign(nil, req, cred, amzDate, exampleRegion, "s3")
			if err != nil || string(out2) != g["authorization"] {
				t.Errorf("zero-cache Sign = %q, %v; want %q", out2, err, g["authorization"])
			}

			var a s3sig.Authorization
			if err := s3sig.ParseAuthorization([]byte(g["authorization"]), &a); err != nil {
				t.Fatalf("ParseAuthorization: %v", err)
			}
			if string(a.AccessKey) != exampleAccessKey || string(a.Date) != "20130524" ||
				string(a.Region) != exampleRegion || string(a.Service) != "s3" {
				t.Errorf("parsed %q/%q/%q/%q", a.AccessKey, a.Date, a.Region, a.Service)
			}
			if err := s.Verify(req, &a, exampleSecret, amzDate, exampleTime.Add(3*time.Minute)); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := s.Verify(req, &a, exampleSecret+"x", amzDate, exampleTime); !errors.Is(err, s3sig.ErrSignatureDoesNotMatch) {
				t.Errorf("Verify with wrong secret: %v; want ErrSignatureDoesNotMatch", err)
			}
		})
	}
}

func TestZeroValueSigner(t *testing.T) {
	g := readGolden(t, "testdata/get-object.golden")
	req, amzDate := requestFromHead(t, g["request"])
	var s s3sig.Signer
	out, err := s.Sign(nil, req, s3sig.Credentials{AccessKey: exampleAccessKey, SecretKey: exampleSecret},
		amzDate, exampleRegion, "s3")
	if err != nil || string(out) != g["authorization"] {
		t.Errorf("zero Signer: got %q, %v; want %q", out, err, g["authorization"])
	}
}
