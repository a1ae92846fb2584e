package s3sig_test

import (
	"testing"

	"github.com/mizuchi/uploadr/s3sig"
)

func benchRequest(b *testing.B) (*s3sig.Request, []byte) {
	b.Helper()
	req := &s3sig.Request{
		Method: []byte("PUT"),
		Path:   []byte("/bucket/photos/2024/06/IMG%200001.jpg"),
		Query:  []byte("x-id=PutObject"),
		Headers: []s3sig.Header{
			{Name: []byte("Host"), Value: []byte("s3.eu-west-3.amazonaws.com")},
			{Name: []byte("User-Agent"), Value: []byte("aws-cli/2.15.0")},
			{Name: []byte("Content-Type"), Value: []byte("image/jpeg")},
			{Name: []byte("Content-Length"), Value: []byte("4096")},
			{Name: []byte("X-Amz-Meta-Camera"), Value: []byte("Fujifilm  X100V")},
			{Name: []byte("X-Amz-Content-Sha256"), Value: []byte(s3sig.UnsignedPayload)},
			{Name: []byte("X-Amz-Date"), Value: []byte(exampleDate)},
		},
		PayloadHash: []byte(s3sig.UnsignedPayload),
	}
	return req, []byte(exampleDate)
}

func BenchmarkSign(b *testing.B) {
	req, amzDate := benchRequest(b)
	s := s3sig.NewSigner(s3sig.NewKeyCache(16))
	cred := s3sig.Credentials{AccessKey: exampleAccessKey, SecretKey: exampleSecret}
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(req.Path) + len(req.Query) + 150))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = s.Sign(dst[:0], req, cred, amzDate, "eu-west-3", "s3"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	req, amzDate := benchRequest(b)
	s := s3sig.NewSigner(s3sig.NewKeyCache(16))
	cred := s3sig.Credentials{AccessKey: exampleAccessKey, SecretKey: exampleSecret}
	signed, err := s.Sign(nil, req, cred, amzDate, "eu-west-3", "s3")
	if err != nil {
		b.Fatal(err)
	}
	var a s3sig.Authorization
	if err := s3sig.ParseAuthorization(signed, &a); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(req.Path) + len(req.Query) + len(signed)))
	b.ReportAllocs()
	for b.Loop() {
		if err := s3sig.ParseAuthorization(signed, &a); err != nil {
			b.Fatal(err)
		}
		if err := s.Verify(req, &a, exampleSecret, amzDate, exampleTime); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeyCache(b *testing.B) {
	c := s3sig.NewKeyCache(16)
	s3sig.SigningKey(c, exampleSecret, "20130524", "us-east-1", "s3")
	b.SetBytes(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var l s3sig.KeyLookup // one per goroutine, as one per Signer
		for pb.Next() {
			l.Get(c, exampleSecret, "20130524", "us-east-1", "s3")
		}
	})
}

// BenchmarkVerifyChunk is the proxy's CPU per 64 KiB signed chunk: SHA-256 of the data and the
// chained HMAC (throughput is CPU per byte of a signed aws-chunked body, before copying).
func BenchmarkVerifyChunk(b *testing.B) {
	seed, err := s3sig.NewChunkSeed("secret", []byte("20130524T000000Z"), "us-east-1", []byte("4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"))
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64<<10)
	var c s3sig.ChunkVerifier
	c.Reset(&seed)
	sigs := make([][]byte, 1024)
	for i := range sigs {
		sigs[i] = c.SignChunk(nil, data)
	}
	var v s3sig.ChunkVerifier
	v.Reset(&seed)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(sigs) {
			v.Reset(&seed)
			i = 0
		}
		if err := v.VerifyChunk(data, sigs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
