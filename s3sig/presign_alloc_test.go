//go:build !race

package s3sig_test

import (
	"testing"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// TestPresignedAllocs: with a warm key cache and reused Presigned and Signer,
// parsing and verifying a presigned request allocate nothing.
func TestPresignedAllocs(t *testing.T) {
	g := readGolden(t, "testdata/presigned/get-object.golden")
	req := &s3sig.Request{Method: []byte("GET"), Path: []byte("/test.txt"),
		Query:   []byte("partNumber=3&uploadId=abc&" + g["query"]),
		Headers: []s3sig.Header{{Name: []byte("Host"), Value: []byte(examplePresignedHost)}}}
	s := s3sig.NewSigner(s3sig.NewKeyCache(16))
	var p s3sig.Presigned
	now := exampleTime.Add(time.Minute)
	run := func() {
		if err := s3sig.ParsePresigned(req.Query, &p); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyPresigned(req, &p, exampleSecret, now); err == nil {
			t.Fatal("the query with extra parameters verified") // they are signed: the signature differs
		}
	}
	// Warm with the golden query (which verifies and caches the key), then the
	// measured one (buffers grow to it).
	golden := req.Query
	req.Query = []byte(g["query"])
	if err := s3sig.ParsePresigned(req.Query, &p); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyPresigned(req, &p, exampleSecret, now); err != nil {
		t.Fatal(err)
	}
	req.Query = golden
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Errorf("ParsePresigned+VerifyPresigned: %v allocs; want 0", n)
	}
	req.Query = []byte(g["query"])
	if n := testing.AllocsPerRun(100, func() {
		if err := s3sig.ParsePresigned(req.Query, &p); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyPresigned(req, &p, exampleSecret, now); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("verified ParsePresigned+VerifyPresigned: %v allocs; want 0", n)
	}
}
