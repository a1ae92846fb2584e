//go:build !race

package uploadid_test

import "testing"

func TestAllocs(t *testing.T) {
	s := mustNew(t, key1, key2)
	tok, _ := s.Seal(nil, upID, &bind)
	dst := make([]byte, 0, 2048)
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Seal(dst[:0], upID, &bind) }); n != 0 {
		t.Errorf("Seal: %v allocs; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Open(dst[:0], tok, &bind) }); n != 0 {
		t.Errorf("Open: %v allocs; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = s.Verify(tok, &bind) }); n != 0 {
		t.Errorf("Verify: %v allocs; want 0", n)
	}
	bad := append([]byte(nil), tok...)
	bad[5] ^= 1
	if n := testing.AllocsPerRun(100, func() { _ = s.Verify(bad, &bind) }); n != 0 {
		t.Errorf("Verify (refused): %v allocs; want 0", n)
	}
}

func BenchmarkVerify(b *testing.B) {
	s := mustNew(b, key1, key2)
	tok, _ := s.Seal(nil, upID, &bind)
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Verify(tok, &bind)
	}
}
