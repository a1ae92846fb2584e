package s3test

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/mizuchi/uploadr/internal/freeport"
)

// RandomBytes returns n pseudo-random bytes that depend only on seed: the same (n, seed) gives the
// same bytes on every run and platform (ChaCha8 keyed by seed), and a shorter result is a prefix of a
// longer one. The slice is new and owned by the caller.
func RandomBytes(n int, seed int64) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], uint64(seed))
	copy(key[8:], "mizuchi-uploadr s3test seed")
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(b) // ChaCha8.Read never fails
	return b
}

// TempFile writes data to a new file in a directory removed when the test ends and returns its
// path.
func TempFile(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatalf("s3test: TempFile: %v", err)
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. It is picked below the
// kernel's ephemeral range, where outgoing connections never take ports, and never twice in one
// process; so only another process binding that exact port can take it before the caller does (Start
// retries with a new port when that happens).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Pick()
	if err != nil {
		t.Fatalf("s3test: FreePort: %v", err)
	}
	return p
}
