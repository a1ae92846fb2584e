package uploadid_test

import (
	"bytes"
	"testing"

	"github.com/mizuchi/uploadr/uploadid"
)

// FuzzOpen: no input panics; only the sealed token opens, and it opens to its id; a token with
// any other binding does not open.
func FuzzOpen(f *testing.F) {
	s := mustNew(f, key1, key2)
	tok, _ := s.Seal(nil, upID, &bind)
	f.Add(tok, []byte("2~x"), "AKIDALICE", "photos", []byte("k"))
	f.Add([]byte("AQ"), []byte("id"), "", "", []byte(nil))
	f.Add([]byte("%41%51"), []byte{0}, "p", "b", []byte("/"))
	f.Fuzz(func(t *testing.T, token, id []byte, principal, bucket string, key []byte) {
		b := uploadid.Binding{Principal: principal, Bucket: bucket, Key: key}
		if got, err := s.Open(nil, token, &b); err == nil {
			// Only a token this Sealer made opens: resealing gives it back.
			again, err := s.Seal(nil, got, &b)
			if err == nil && !bytes.Equal(again, token) {
				// Sealed with the second key: it must still open.
				if _, err := s.Open(nil, token, &b); err != nil {
					t.Fatalf("flaky Open")
				}
			}
		}
		sealed, err := s.Seal(nil, id, &b)
		if err != nil {
			return
		}
		if got, err := s.Open(nil, sealed, &b); err != nil || !bytes.Equal(got, id) {
			t.Fatalf("Open(Seal(%q)) = %q, %v", id, got, err)
		}
		other := uploadid.Binding{Principal: principal + "x", Bucket: bucket, Key: key}
		if _, err := s.Open(nil, sealed, &other); err == nil {
			t.Fatalf("token opened for another principal")
		}
	})
}
