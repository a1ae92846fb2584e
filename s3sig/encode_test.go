package s3sig_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

func TestAppendURIEncode(t *testing.T) {
	tests := []struct {
		in        string
		keepSlash bool
		want      string
	}{
		{"", true, ""},
		{"AZaz09-._~", false, "AZaz09-._~"},
		{"a b", true, "a%20b"},
		{"a+b", true, "a%2Bb"},
		{"a/b//c", true, "a/b//c"},
		{"a/b", false, "a%2Fb"},
		{"100%", true, "100%25"},
		{"$&,:;=@!*'()", true, "%24%26%2C%3A%3B%3D%40%21%2A%27%28%29"},
		{"é", true, "%C3%A9"},
		{"日本", true, "%E6%97%A5%E6%9C%AC"},
		{"\x00\xff", true, "%00%FF"},
		{"./../.", true, "./../."},
	}
	for _, tt := range tests {
		got := string(s3sig.AppendURIEncode([]byte("p:"), []byte(tt.in), tt.keepSlash))
		if got != "p:"+tt.want {
			t.Errorf("AppendURIEncode(%q, %v) = %q; want %q", tt.in, tt.keepSlash, got, "p:"+tt.want)
		}
	}
}

func TestAppendPercentDecode(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{"", "", nil},
		{"abc", "abc", nil},
		{"a%20b", "a b", nil},
		{"a+b", "a+b", nil},
		{"%2B%2b", "++", nil},
		{"%c3%A9", "é", nil},
		{"%2F", "/", nil},
		{"%", "", s3sig.ErrInvalidURI},
		{"%2", "", s3sig.ErrInvalidURI},
		{"a%2", "", s3sig.ErrInvalidURI},
		{"%zz", "", s3sig.ErrInvalidURI},
		{"%g0", "", s3sig.ErrInvalidURI},
		{"%0g", "", s3sig.ErrInvalidURI},
		{"x%%41", "", s3sig.ErrInvalidURI},
	}
	for _, tt := range tests {
		got, err := s3sig.AppendPercentDecode([]byte("p:"), []byte(tt.in))
		if !errors.Is(err, tt.err) {
			t.Errorf("AppendPercentDecode(%q) error = %v; want %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && string(got) != "p:"+tt.want {
			t.Errorf("AppendPercentDecode(%q) = %q; want %q", tt.in, got, "p:"+tt.want)
		}
	}
}

func TestCanonicalURI(t *testing.T) {
	tests := []struct {
		raw, want string
		err       error
	}{
		{"", "/", nil},
		{"/", "/", nil},
		{"/test.txt", "/test.txt", nil},
		{"/test$file.text", "/test%24file.text", nil},
		{"/test%24file.text", "/test%24file.text", nil},
		{"/a%2fb", "/a/b", nil},   // decoded then re-encoded: %2F becomes '/'
		{"/a%20b", "/a%20b", nil}, // no double encoding
		{"/a%2520b", "/a%2520b", nil},
		{"/a b", "/a%20b", nil},
		{"/a+b", "/a%2Bb", nil},
		{"/%41%7e", "/A~", nil},
		{"/%c3%a9", "/%C3%A9", nil},
		{"/b//k/./../x", "/b//k/./../x", nil},
		{"/bad%", "", s3sig.ErrInvalidURI},
		{"/bad%4", "", s3sig.ErrInvalidURI},
		{"/bad%xy", "", s3sig.ErrInvalidURI},
	}
	for _, tt := range tests {
		got, err := s3sig.CanonicalURI(nil, []byte(tt.raw))
		if !errors.Is(err, tt.err) {
			t.Errorf("CanonicalURI(%q) error = %v; want %v", tt.raw, err, tt.err)
			continue
		}
		if err == nil && string(got) != tt.want {
			t.Errorf("CanonicalURI(%q) = %q; want %q", tt.raw, got, tt.want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		raw, want string
		err       error
	}{
		{"", "", nil},
		{"lifecycle", "lifecycle=", nil},
		{"lifecycle=", "lifecycle=", nil},
		{"prefix=J&max-keys=2", "max-keys=2&prefix=J", nil},
		{"uploads&prefix=a/b&list-type=2", "list-type=2&prefix=a%2Fb&uploads=", nil},
		{"a=2&a=1&a=", "a=&a=1&a=2", nil},
		{"b=1&&a=2&", "a=2&b=1", nil}, // empty components are dropped
		{"k=a+b", "k=a%2Bb", nil},     // '+' is literal
		{"k=a%20b", "k=a%20b", nil},
		{"k=a b", "k=a%20b", nil},
		{"k=%c3%a9", "k=%C3%A9", nil},
		{"k=x=y", "k=x%3Dy", nil},
		{"x-id=PutObject&partNumber=1&uploadId=abc", "partNumber=1&uploadId=abc&x-id=PutObject", nil},
		{"B=1&a=1", "B=1&a=1", nil}, // byte order: uppercase first
		{"%41=1", "A=1", nil},
		{"k=%zz", "", s3sig.ErrInvalidURI},
		{"%=1", "", s3sig.ErrInvalidURI},
	}
	for _, tt := range tests {
		got, err := s3sig.CanonicalQuery(nil, []byte(tt.raw))
		if !errors.Is(err, tt.err) {
			t.Errorf("CanonicalQuery(%q) error = %v; want %v", tt.raw, err, tt.err)
			continue
		}
		if err == nil && string(got) != tt.want {
			t.Errorf("CanonicalQuery(%q) = %q; want %q", tt.raw, got, tt.want)
		}
	}
}

func TestCanonicalHeaderValues(t *testing.T) {
	// Trim both ends, collapse runs of spaces, join repeated names with ','.
	req := &s3sig.Request{
		Method: []byte("PUT"), Path: []byte("/k"),
		Headers: []s3sig.Header{
			{Name: []byte("X-Amz-Meta-B"), Value: []byte("  two   spaces  ")},
			{Name: []byte("Host"), Value: []byte("h")},
			{Name: []byte("x-amz-meta-a"), Value: []byte("\t first ")},
			{Name: []byte("X-AMZ-META-A"), Value: []byte("second\t")},
			{Name: []byte("x-amz-meta-c"), Value: []byte("")},
			{Name: []byte("x-amz-meta-d"), Value: []byte("a \t  b")},
		},
		PayloadHash: []byte(s3sig.UnsignedPayload),
	}
	got, err := s3sig.CanonicalRequest(s3sig.NewSigner(nil), req)
	if err != nil {
		t.Fatal(err)
	}
	want := "PUT\n/k\n\n" +
		"host:h\n" +
		"x-amz-meta-a:first,second\n" +
		"x-amz-meta-b:two spaces\n" +
		"x-amz-meta-c:\n" +
		"x-amz-meta-d:a \t b\n" +
		"\nhost;x-amz-meta-a;x-amz-meta-b;x-amz-meta-c;x-amz-meta-d\nUNSIGNED-PAYLOAD"
	if got != want {
		t.Errorf("canonical request:\ngot  %q\nwant %q", got, want)
	}
}

func TestAmzDate(t *testing.T) {
	tm := time.Date(2026, 9, 28, 12, 34, 56, 789, time.FixedZone("X", 2*3600))
	if got, want := string(s3sig.AppendAmzDate([]byte("d="), tm)), "d=20260928T103456Z"; got != want {
		t.Errorf("AppendAmzDate = %q; want %q", got, want)
	}
	good := []struct {
		in   string
		want time.Time
	}{
		{"20130524T000000Z", time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)},
		{"20240229T235959Z", time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)},
		{"00010101T000000Z", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range good {
		got, err := s3sig.ParseAmzDate([]byte(tt.in))
		if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("ParseAmzDate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if back := string(s3sig.AppendAmzDate(nil, got)); back != tt.in {
			t.Errorf("AppendAmzDate(ParseAmzDate(%q)) = %q", tt.in, back)
		}
	}
	bad := []string{
		"", "2013052T000000Z", "20130524T000000", "20130524 000000Z", "20130524T000000z",
		"2013-05-24T00:00:00Z", "20131324T000000Z", "20130024T000000Z", "20130532T000000Z",
		"20130230T000000Z", "20230229T000000Z", "20130524T240000Z", "20130524T006000Z",
		"20130524T000060Z", "2013052aT000000Z", "20130524T000000Z ", "+0130524T000000Z",
	}
	for _, in := range bad {
		if _, err := s3sig.ParseAmzDate([]byte(in)); !errors.Is(err, s3sig.ErrMissingDate) {
			t.Errorf("ParseAmzDate(%q) error = %v; want ErrMissingDate", in, err)
		}
	}
}

func TestCanonicalQueryExcluding(t *testing.T) {
	// The step presigned URLs will need: X-Amz-Signature is not signed.
	raw := "X-Amz-Signature=abc&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-Signature2=1"
	got, err := s3sig.CanonicalQueryExcluding(nil, []byte(raw), "X-Amz-Signature")
	if want := "X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-Signature2=1"; err != nil || string(got) != want {
		t.Errorf("CanonicalQueryExcluding = %q, %v; want %q", got, err, want)
	}
}
