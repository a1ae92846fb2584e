//go:build !race

package s3sig_test

import (
	"testing"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// Allocation counts are meaningless under -race, hence the build tag.

func TestSignVerifyAllocs(t *testing.T) {
	g := readGolden(t, "testdata/put-object.golden")
	req, amzDate := requestFromHead(t, g["request"])
	req.Query = []byte("x-id=PutObject&uploadId=abc&partNumber=3")
	req.Headers = append(req.Headers,
		s3sig.Header{Name: []byte("X-Amz-Meta-Note"), Value: []byte("  a   b  ")},
		s3sig.Header{Name: []byte("x-amz-meta-note"), Value: []byte("c")})
	s := s3sig.NewSigner(s3sig.NewKeyCache(16))
	cred := s3sig.Credentials{AccessKey: exampleAccessKey, SecretKey: exampleSecret}
	dst := make([]byte, 0, 512)
	out, err := s.Sign(dst, req, cred, amzDate, exampleRegion, "s3") // warms the cache and the buffers
	if err != nil {
		t.Fatal(err)
	}
	auth := append([]byte(nil), out...)
	var a s3sig.Authorization
	if err := s3sig.ParseAuthorization(auth, &a); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(req, &a, exampleSecret, amzDate, exampleTime); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		fn   func()
	}{
		{"Sign", func() {
			if _, err := s.Sign(dst[:0], req, cred, amzDate, exampleRegion, "s3"); err != nil {
				t.Fatal(err)
			}
		}},
		{"Verify", func() {
			if err := s.Verify(req, &a, exampleSecret, amzDate, exampleTime); err != nil {
				t.Fatal(err)
			}
		}},
		{"ParseAuthorization", func() {
			if err := s3sig.ParseAuthorization(auth, &a); err != nil {
				t.Fatal(err)
			}
		}},
		{"AppendAmzDate", func() { dst = s3sig.AppendAmzDate(dst[:0], exampleTime) }},
		{"ParseAmzDate", func() {
			if _, err := s3sig.ParseAmzDate(amzDate); err != nil {
				t.Fatal(err)
			}
		}},
		{"AppendURIEncode", func() { dst = s3sig.AppendURIEncode(dst[:0], []byte("a b/c+d"), true) }},
		{"AppendPercentDecode", func() { dst, _ = s3sig.AppendPercentDecode(dst[:0], []byte("a%20b")) }},
		{"Verify skewed", func() { _ = s.Verify(req, &a, exampleSecret, amzDate, exampleTime.Add(time.Hour)) }},
		{"Verify wrong secret", func() { _ = s.Verify(req, &a, exampleSecret+"x", amzDate, exampleTime) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(200, tt.fn); n != 0 {
			t.Errorf("%s: %v allocs per run; want 0", tt.name, n)
		}
	}
}

func TestChunkVerifyAllocs(t *testing.T) {
	seed, err := s3sig.NewChunkSeed("secret", []byte("20130524T000000Z"), "us-east-1", make([]byte, 64))
	if err == nil {
		t.Fatal("a seed signature of NUL bytes must not parse")
	}
	seed, err = s3sig.NewChunkSeed("secret", []byte("20130524T000000Z"), "us-east-1", []byte("4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"))
	if err != nil {
		t.Fatal(err)
	}
	var c, v s3sig.ChunkVerifier
	data := make([]byte, 64<<10)
	sig := make([]byte, 0, 64)
	c.Reset(&seed)
	v.Reset(&seed)
	if n := testing.AllocsPerRun(100, func() {
		sig = c.SignChunk(sig[:0], data)
		if err := v.VerifyChunk(data, sig); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("SignChunk+VerifyChunk: %v allocs; want 0", n)
	}
}
