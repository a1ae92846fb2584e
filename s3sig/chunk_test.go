package s3sig_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/mizuchi/uploadr/s3sig"
)

// streamingExample is the head of AWS's published chunked-upload example.
func streamingExample() (*s3sig.Request, []byte) {
	req := &s3sig.Request{
		Method: []byte("PUT"),
		Path:   []byte("/examplebucket/chunkObject.txt"),
		Headers: []s3sig.Header{
			{Name: []byte("Host"), Value: []byte("s3.amazonaws.com")},
			{Name: []byte("x-amz-date"), Value: []byte(exampleDate)},
			{Name: []byte("x-amz-storage-class"), Value: []byte("REDUCED_REDUNDANCY")},
			{Name: []byte("Content-Encoding"), Value: []byte("aws-chunked")},
			{Name: []byte("x-amz-decoded-content-length"), Value: []byte("66560")},
			{Name: []byte("x-amz-content-sha256"), Value: []byte(s3sig.StreamingSigned)},
			{Name: []byte("Content-Length"), Value: []byte("66824")},
		},
		PayloadHash: []byte(s3sig.StreamingSigned),
	}
	return req, []byte(exampleDate)
}

// TestChunkSignaturesAWSExample verifies the seed and every chunk signature of AWS's example.
func TestChunkSignaturesAWSExample(t *testing.T) {
	g := readGolden(t, filepath.Join("testdata", "chunked", "streaming-put.golden"))
	req, date := streamingExample()
	var a s3sig.Authorization
	if err := s3sig.ParseAuthorization([]byte(g["authorization"]), &a); err != nil {
		t.Fatal(err)
	}
	var seed s3sig.ChunkSeed
	s := s3sig.NewSigner(s3sig.NewKeyCache(0))
	if err := s.VerifyStreaming(req, &a, exampleSecret, date, exampleTime, &seed); err != nil {
		t.Fatalf("seed: %v", err)
	}
	var v s3sig.ChunkVerifier
	v.Reset(&seed)
	for _, c := range []struct {
		name string
		n    int
	}{{"chunk-65536", 65536}, {"chunk-1024", 1024}, {"chunk-0", 0}} {
		if err := v.VerifyChunk(bytes.Repeat([]byte("a"), c.n), []byte(g[c.name])); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}

	// The client side computes the same chain from the seed.
	cs, err := s3sig.NewChunkSeed(exampleSecret, date, exampleRegion, a.Signature)
	if err != nil {
		t.Fatal(err)
	}
	var w s3sig.ChunkVerifier
	w.Reset(&cs)
	if got := string(w.SignChunk(nil, bytes.Repeat([]byte("a"), 65536))); got != g["chunk-65536"] {
		t.Fatalf("SignChunk = %s; want %s", got, g["chunk-65536"])
	}
}

func TestChunkSignatureMismatch(t *testing.T) {
	g := readGolden(t, filepath.Join("testdata", "chunked", "streaming-put.golden"))
	var a s3sig.Authorization
	if err := s3sig.ParseAuthorization([]byte(g["authorization"]), &a); err != nil {
		t.Fatal(err)
	}
	seed, err := s3sig.NewChunkSeed(exampleSecret, []byte(exampleDate), exampleRegion, a.Signature)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("a"), 65536)
	for _, tc := range []struct {
		name      string
		data, sig []byte
	}{
		{"tampered data", append([]byte("b"), data[1:]...), []byte(g["chunk-65536"])},
		{"wrong signature", data, []byte(g["chunk-1024"])},
		{"short signature", data, []byte(g["chunk-65536"][:63])},
		{"not hex", data, []byte("z" + g["chunk-65536"][1:])},
		{"chunk out of order", bytes.Repeat([]byte("a"), 1024), []byte(g["chunk-1024"])},
	} {
		var v s3sig.ChunkVerifier
		v.Reset(&seed)
		if err := v.VerifyChunk(tc.data, tc.sig); !errors.Is(err, s3sig.ErrSignatureDoesNotMatch) {
			t.Errorf("%s: got %v; want ErrSignatureDoesNotMatch", tc.name, err)
		}
		// A failed chunk does not advance the chain: the right one still verifies.
		if err := v.VerifyChunk(data, []byte(g["chunk-65536"])); err != nil {
			t.Errorf("%s: then the right chunk: %v", tc.name, err)
		}
	}
	// A bad seed signature never verifies in the header, so VerifyStreaming leaves no seed.
	req, date := streamingExample()
	a.Signature = []byte(g["chunk-0"])
	var bad s3sig.ChunkSeed
	if err := s3sig.NewSigner(nil).VerifyStreaming(req, &a, exampleSecret, date, exampleTime, &bad); !errors.Is(err, s3sig.ErrSignatureDoesNotMatch) || bad.Valid() {
		t.Fatalf("bad seed: err %v, valid %v", err, bad.Valid())
	}
}

// TestTrailerSignatureRoundTrip: a trailer signed by SignTrailer verifies, a changed line does not.
func TestTrailerSignatureRoundTrip(t *testing.T) {
	seed, err := s3sig.NewChunkSeed(exampleSecret, []byte(exampleDate), exampleRegion, bytes.Repeat([]byte("0"), 64))
	if err != nil {
		t.Fatal(err)
	}
	var c, v s3sig.ChunkVerifier
	c.Reset(&seed)
	v.Reset(&seed)
	last := c.SignChunk(nil, nil)
	lines := []byte("x-amz-checksum-crc32c:sOO8/Q==\n")
	tsig := c.SignTrailer(nil, lines)
	if err := v.VerifyChunk(nil, last); err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyTrailer([]byte("x-amz-checksum-crc32c:sOO8/R==\n"), tsig); !errors.Is(err, s3sig.ErrSignatureDoesNotMatch) {
		t.Fatalf("tampered trailer: %v", err)
	}
	if err := v.VerifyTrailer(lines, tsig); err != nil {
		t.Fatalf("trailer: %v", err)
	}
}
