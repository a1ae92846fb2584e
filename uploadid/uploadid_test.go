package uploadid_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/uploadid"
)

var (
	key1 = []byte("0123456789abcdef0123456789abcdef")
	key2 = []byte("fedcba9876543210fedcba9876543210")
	bind = uploadid.Binding{Principal: "AKIDALICE", Bucket: "photos", Key: []byte("a/b c.jpg")}
	upID = []byte("2~iCw_lDY8VoDCLd2m8Kt4Vk6DQJqEFgmY") // AWS-style
)

func mustNew(t testing.TB, keys ...[]byte) *uploadid.Sealer {
	t.Helper()
	s, err := uploadid.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := mustNew(t, key1)
	for _, id := range [][]byte{upID, []byte("x"), bytes.Repeat([]byte("Z"), uploadid.MaxUpstreamLen),
		[]byte("ZjVhNTQ4ZDItMTk0OC00YjQ5LWJkOGQtNjFiZTY2ZDg2NTJi"), []byte("a+b/c=&<>\x00\xff")} {
		tok, err := s.Seal(nil, id, &bind)
		if err != nil {
			t.Fatalf("Seal(%d bytes): %v", len(id), err)
		}
		if len(tok) > uploadid.MaxTokenLen {
			t.Errorf("token of %d bytes for an id of %d; want <= %d", len(tok), len(id), uploadid.MaxTokenLen)
		}
		if want := (len(id) + 17 + 2) / 3 * 4; len(tok) > want {
			t.Errorf("token %d bytes; want at most %d", len(tok), want)
		}
		for _, c := range tok {
			if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				t.Fatalf("token %q has %q: not base64url", tok, c)
			}
		}
		got, err := s.Open([]byte("pre:"), tok, &bind)
		if err != nil || string(got) != "pre:"+string(id) {
			t.Errorf("Open = %q, %v; want %q", got, err, "pre:"+string(id))
		}
		if err := s.Verify(tok, &bind); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
}

// TestGolden pins the format: a change that breaks tokens already handed out must show here.
func TestGolden(t *testing.T) {
	s := mustNew(t, key1)
	tok, err := s.Seal(nil, upID, &bind)
	if err != nil {
		t.Fatal(err)
	}
	// Computed independently with Python's hmac and base64 modules from the format in doc.go.
	const want = "AeS2a1N9zjLR7UZ057ByN70yfmlDd19sRFk4Vm9EQ0xkMm04S3Q0Vms2RFFKcUVGZ21Z"
	if string(tok) != want {
		t.Errorf("Seal = %s; want %s", tok, want)
	}
}

func TestSealRefuses(t *testing.T) {
	s := mustNew(t, key1)
	for _, id := range [][]byte{nil, bytes.Repeat([]byte("Z"), uploadid.MaxUpstreamLen+1)} {
		if _, err := s.Seal(nil, id, &bind); !errors.Is(err, uploadid.ErrTooLong) {
			t.Errorf("Seal(%d bytes) err = %v; want ErrTooLong", len(id), err)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	if _, err := uploadid.New(); !errors.Is(err, uploadid.ErrNoKey) {
		t.Errorf("New() = %v; want ErrNoKey", err)
	}
	if _, err := uploadid.New(key1, []byte("short")); !errors.Is(err, uploadid.ErrShortKey) {
		t.Errorf("New(short) = %v; want ErrShortKey", err)
	}
}

func TestBindingMismatch(t *testing.T) {
	s := mustNew(t, key1)
	tok, _ := s.Seal(nil, upID, &bind)
	for _, b := range []uploadid.Binding{
		{Principal: "AKIDMALLORY", Bucket: bind.Bucket, Key: bind.Key},
		{Principal: "", Bucket: bind.Bucket, Key: bind.Key},
		{Principal: bind.Principal, Bucket: "photos2", Key: bind.Key},
		{Principal: bind.Principal, Bucket: bind.Bucket, Key: []byte("a/b c.jpeg")},
		{Principal: bind.Principal, Bucket: bind.Bucket, Key: nil},
		// The length prefixes keep fields from sliding into each other.
		{Principal: bind.Principal + "p", Bucket: "hotos", Key: bind.Key},
		{Principal: bind.Principal, Bucket: bind.Bucket + "a", Key: []byte("/b c.jpg")},
	} {
		if _, err := s.Open(nil, tok, &b); !errors.Is(err, uploadid.ErrMismatch) {
			t.Errorf("Open with %+v: err = %v; want ErrMismatch", b, err)
		}
	}
}

func TestTampered(t *testing.T) {
	s := mustNew(t, key1)
	tok, _ := s.Seal(nil, upID, &bind)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range tok {
		for _, c := range []byte(alphabet) {
			if c == tok[i] {
				continue
			}
			bad := bytes.Clone(tok)
			bad[i] = c
			if _, err := s.Open(nil, bad, &bind); err == nil {
				t.Fatalf("altered token (byte %d = %q) opened", i, c)
			}
		}
	}
	for n := range len(tok) {
		if _, err := s.Open(nil, tok[:n], &bind); err == nil {
			t.Fatalf("token truncated to %d bytes opened", n)
		}
	}
	for _, bad := range []string{string(tok) + "A", string(tok) + "=", "+" + string(tok[1:]), strings.Repeat("A", 2000), ""} {
		if _, err := s.Open(nil, []byte(bad), &bind); err == nil {
			t.Errorf("Open(%.40q…) succeeded", bad)
		}
	}
	// Another version byte, with a MAC that would match: refused as malformed.
	if _, err := s.Open(nil, []byte("AgAAAAAAAAAAAAAAAAAAAAB4"), &bind); !errors.Is(err, uploadid.ErrMalformed) {
		t.Errorf("version 2: err = %v; want ErrMalformed", err)
	}
}

func TestRotation(t *testing.T) {
	old := mustNew(t, key1)
	tokOld, _ := old.Seal(nil, upID, &bind)
	rotated := mustNew(t, key2, key1) // new first, previous still verifies
	if id, err := rotated.Open(nil, tokOld, &bind); err != nil || !bytes.Equal(id, upID) {
		t.Errorf("token of the previous key after rotation: %q, %v", id, err)
	}
	tokNew, _ := rotated.Seal(nil, upID, &bind)
	if bytes.Equal(tokNew, tokOld) {
		t.Error("the rotated Sealer sealed with the previous key")
	}
	if _, err := old.Open(nil, tokNew, &bind); !errors.Is(err, uploadid.ErrMismatch) {
		t.Errorf("a Sealer without the new key opened its token: %v", err)
	}
	retired := mustNew(t, key2)
	if _, err := retired.Open(nil, tokOld, &bind); !errors.Is(err, uploadid.ErrMismatch) {
		t.Errorf("a retired key's token still opens: %v", err)
	}
	// Two processes with the same keys agree.
	other := mustNew(t, key2, key1)
	if _, err := other.Open(nil, tokNew, &bind); err != nil {
		t.Errorf("another Sealer with the same keys: %v", err)
	}
}

func TestDeriveKey(t *testing.T) {
	a, b := uploadid.DeriveKey([]byte("upstream-secret")), uploadid.DeriveKey([]byte("upstream-secret"))
	if len(a) != 32 || !bytes.Equal(a, b) {
		t.Fatalf("DeriveKey not deterministic or not 32 bytes: %x %x", a, b)
	}
	if bytes.Equal(a, uploadid.DeriveKey([]byte("upstream-secreT"))) {
		t.Error("two secrets derive one key")
	}
	if bytes.Contains(a, []byte("upstream-secret")) {
		t.Error("the derived key contains the secret")
	}
}

func TestConcurrent(t *testing.T) {
	s := mustNew(t, key1, key2)
	done := make(chan error)
	for g := range 4 {
		go func() {
			b := uploadid.Binding{Principal: "p", Bucket: "b", Key: []byte{byte(g)}}
			for range 500 {
				tok, err := s.Seal(nil, upID, &b)
				if err == nil {
					_, err = s.Open(nil, tok, &b)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
