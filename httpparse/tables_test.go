package httpparse

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestCtlOrDel checks the SWAR test against a byte loop: the lowest flagged
// byte must be the first byte < 0x20 or == 0x7F, and nothing is flagged
// when there is none.
func TestCtlOrDel(t *testing.T) {
	interesting := []byte{0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0x9f, 0xa0, 0xff}
	rng := rand.New(rand.NewPCG(1, 2))
	var w [8]byte
	for n := 0; n < 200000; n++ {
		for j := range w {
			if rng.IntN(2) == 0 {
				w[j] = interesting[rng.IntN(len(interesting))]
			} else {
				w[j] = byte(rng.IntN(256))
			}
		}
		want := 8
		for j, c := range w {
			if c < 0x20 || c == 0x7f {
				want = j
				break
			}
		}
		m := ctlOrDel(binary.LittleEndian.Uint64(w[:]))
		got := 8
		if m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if got != want {
			t.Fatalf("ctlOrDel(% x): first flagged byte %d; want %d", w, got, want)
		}
	}
}

func TestClassTable(t *testing.T) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if got, want := class[b]&cValue != 0, b == '\t' || b >= 0x20 && b != 0x7f; got != want {
			t.Errorf("value class of %#x = %v; want %v", b, got, want)
		}
		if got, want := class[b]&cTarget != 0, b > 0x20 && b != 0x7f; got != want {
			t.Errorf("target class of %#x = %v; want %v", b, got, want)
		}
		if class[b]&cToken != 0 && (b <= 0x20 || b >= 0x7f || contains("\"(),/:;<=>?@[\\]{}", b)) {
			t.Errorf("%#x is a tchar; RFC 9110 5.6.2 says no", b)
		}
	}
	if n := func() (n int) {
		for c := 0; c < 256; c++ {
			if class[c]&cToken != 0 {
				n++
			}
		}
		return n
	}(); n != 77 { // 62 alphanumerics + 15 symbols
		t.Errorf("%d tchars; want 77", n)
	}
}
