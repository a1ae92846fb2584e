package s3sig_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"

	"github.com/mizuchi/uploadr/s3sig"
)

// refSigningKey is the SigV4 key derivation done the plain way.
func refSigningKey(secret, date, region, service string) [32]byte {
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	k := mac(mac(mac(mac([]byte("AWS4"+secret), date), region), service), "aws4_request")
	return [32]byte(k)
}

func TestSigningKeyDerivation(t *testing.T) {
	// AWS's published derivation example (IAM, 20150830).
	got := s3sig.SigningKey(s3sig.NewKeyCache(1), "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam")
	if want := "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"; fmt.Sprintf("%x", got) != want {
		t.Errorf("signing key %x; want %s", got, want)
	}
}

func TestKeyCacheBoundAndEviction(t *testing.T) {
	c := s3sig.NewKeyCache(3)
	for day := 1; day <= 5; day++ {
		date := fmt.Sprintf("202401%02d", day)
		if got, want := s3sig.SigningKey(c, "secret", date, "us-east-1", "s3"), refSigningKey("secret", date, "us-east-1", "s3"); got != want {
			t.Errorf("%s: key %x; want %x", date, got, want)
		}
		if c.Len() > 3 {
			t.Fatalf("after %d days Len() = %d; want <= 3", day, c.Len())
		}
	}
	if c.Len() != 3 {
		t.Errorf("Len() = %d; want 3", c.Len())
	}
	// The oldest days went first: the newest three are all cached.
	for day := 3; day <= 5; day++ {
		if !s3sig.Cached(c, "secret", fmt.Sprintf("202401%02d", day), "us-east-1", "s3") {
			t.Errorf("day %d not cached", day)
		}
	}
	if s3sig.Cached(c, "secret", "20240101", "us-east-1", "s3") {
		t.Errorf("day 1 still cached")
	}
	// Every part of the key separates entries.
	base := s3sig.SigningKey(c, "secret", "20240105", "us-east-1", "s3")
	for _, other := range [][4]string{
		{"secreT", "20240105", "us-east-1", "s3"},
		{"secret", "20240104", "us-east-1", "s3"},
		{"secret", "20240105", "us-east-2", "s3"},
		{"secret", "20240105", "us-east-1", "s4"},
		{"secret2", "0240105", "us-east-1", "s3"},
	} {
		got := s3sig.SigningKey(c, other[0], other[1], other[2], other[3])
		if got == base || got != refSigningKey(other[0], other[1], other[2], other[3]) {
			t.Errorf("%q: key %x (base %x)", other, got, base)
		}
	}
	if d := s3sig.NewKeyCache(0); d.Max() <= 0 {
		t.Errorf("NewKeyCache(0).Max() = %d; want a positive default", d.Max())
	}
}

// TestKeyCacheConcurrent is meant for -race: many goroutines hit and miss a
// small cache at once, and every key they get back is right.
func TestKeyCacheConcurrent(t *testing.T) {
	c := s3sig.NewKeyCache(4)
	var want [8][32]byte
	for i := range want {
		want[i] = refSigningKey(fmt.Sprint("secret", i), "20240101", "eu-west-1", "s3")
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 400; j++ {
				i := (g + j) % len(want)
				if got := s3sig.SigningKey(c, fmt.Sprint("secret", i), "20240101", "eu-west-1", "s3"); got != want[i] {
					t.Errorf("goroutine %d: key %d wrong", g, i)
					return
				}
				_ = c.Len()
			}
		}()
	}
	// Signers sharing the cache, one per goroutine, as in one per event loop.
	req, amzDate, a := exampleRequest(t)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := s3sig.NewSigner(c)
			for j := 0; j < 200; j++ {
				if err := s.Verify(req, &a, exampleSecret, amzDate, exampleTime); err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 4 {
		t.Errorf("Len() = %d; want <= 4", c.Len())
	}
}

// A failed verification leaves nothing in the cache; a successful one caches the key.
func TestVerifyCachesOnlyVerifiedKeys(t *testing.T) {
	keys := s3sig.NewKeyCache(16)
	s := s3sig.NewSigner(keys)
	date := []byte("20130524T000000Z")
	req := &s3sig.Request{Method: []byte("PUT"), Path: []byte("/b/k"), PayloadHash: []byte(s3sig.UnsignedPayload),
		Headers: []s3sig.Header{{Name: []byte("host"), Value: []byte("h")}, {Name: []byte("x-amz-date"), Value: date}}}
	auth, err := s3sig.NewSigner(s3sig.NewKeyCache(4)).Sign(nil, req, s3sig.Credentials{AccessKey: "AK", SecretKey: "secret"}, date, "us-east-1", "s3")
	if err != nil {
		t.Fatal(err)
	}
	now, _ := s3sig.ParseAmzDate(date)
	for _, region := range []string{"made-up-1", "made-up-2", "made-up-3"} {
		bad := bytes.Replace(auth, []byte("us-east-1"), []byte(region), 1)
		var a s3sig.Authorization
		if err := s3sig.ParseAuthorization(bad, &a); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(req, &a, "secret", date, now); err == nil {
			t.Fatalf("region %s verified", region)
		}
	}
	if n := keys.Len(); n != 0 {
		t.Fatalf("%d keys cached after failed verifications; want 0", n)
	}
	var a s3sig.Authorization
	if err := s3sig.ParseAuthorization(auth, &a); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(req, &a, "secret", date, now); err != nil {
		t.Fatal(err)
	}
	if n := keys.Len(); n != 1 {
		t.Fatalf("%d keys cached after a good verification; want 1", n)
	}
}

// The allocation-free derivation equals RFC 2104 HMAC chaining with crypto/hmac, for secrets and scope
// fields on both sides of its size limits.
func TestDeriveSigningKeyMatchesHMAC(t *testing.T) {
	ref := func(secret, date, region, service []byte) []byte {
		k := append([]byte("AWS4"), secret...)
		for _, m := range [][]byte{date, region, service, []byte("aws4_request")} {
			h := hmac.New(sha256.New, k)
			h.Write(m)
			k = h.Sum(nil)
		}
		return k
	}
	long := func(n int) []byte { return bytes.Repeat([]byte("x"), n) }
	for _, tc := range [][4][]byte{
		{[]byte("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), []byte("20120215"), []byte("us-east-1"), []byte("iam")},
		{long(60), []byte("20260101"), long(128), []byte("s3")},
		{long(61), []byte("20260101"), []byte("eu-west-1"), []byte("s3")},
		{long(200), []byte("20260101"), long(129), long(300)},
		{nil, nil, nil, nil},
	} {
		got := s3sig.DeriveSigningKey(tc[0], tc[1], tc[2], tc[3])
		if want := ref(tc[0], tc[1], tc[2], tc[3]); !bytes.Equal(got[:], want) {
			t.Errorf("secret %d bytes, region %d bytes: key differs", len(tc[0]), len(tc[2]))
		}
	}
}
