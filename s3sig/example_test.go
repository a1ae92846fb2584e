package s3sig_test

import (
	"fmt"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// Sign and verify AWS's published "GET Object" example.
func Example() {
	keys := s3sig.NewKeyCache(0) // shared by all Signers
	s := s3sig.NewSigner(keys)   // one per event loop

	amzDate := []byte("20130524T000000Z")
	req := &s3sig.Request{
		Method: []byte("GET"),
		Path:   []byte("/test.txt"),
		Headers: []s3sig.Header{
			{Name: []byte("Host"), Value: []byte("examplebucket.s3.amazonaws.com")},
			{Name: []byte("Range"), Value: []byte("bytes=0-9")},
			{Name: []byte("x-amz-content-sha256"), Value: []byte(s3sig.EmptySHA256)},
			{Name: []byte("x-amz-date"), Value: amzDate},
		},
		PayloadHash: []byte(s3sig.EmptySHA256),
	}
	cred := s3sig.Credentials{AccessKey: "AKIAIOSFODNN7EXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	auth, err := s.Sign(nil, req, cred, amzDate, "us-east-1", "s3")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", auth)

	var a s3sig.Authorization
	if err := s3sig.ParseAuthorization(auth, &a); err != nil {
		panic(err)
	}
	now := time.Date(2013, 5, 24, 0, 5, 0, 0, time.UTC)
	fmt.Println(s.Verify(req, &a, cred.SecretKey, amzDate, now))
	// Output:
	// AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41
	// <nil>
}
