package s3test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
)

func TestRandomBytes(t *testing.T) {
	t.Parallel()
	// Pinned: data generated in one run must be reproducible in any later run.
	sum := sha256.Sum256(RandomBytes(1000, 42))
	if got, want := hex.EncodeToString(sum[:]), goldenRandomBytes42; got != want {
		t.Errorf("sha256(RandomBytes(1000, 42)): got %s; want %s", got, want)
	}
	for _, tc := range []struct {
		n    int
		seed int64
	}{{0, 1}, {1, 1}, {7, -1}, {4096, 0}, {1<<20 + 3, 99}} {
		a, b := RandomBytes(tc.n, tc.seed), RandomBytes(tc.n, tc.seed)
		if len(a) != tc.n || !bytes.Equal(a, b) {
			t.Errorf("RandomBytes(%d, %d): len %d, equal on repeat %v; want len %d, equal", tc.n, tc.seed, len(a), bytes.Equal(a, b), tc.n)
		}
		if long := RandomBytes(tc.n+100, tc.seed); !bytes.Equal(long[:tc.n], a) {
			t.Errorf("RandomBytes(%d, %d) is not a prefix of RandomBytes(%d, %d)", tc.n, tc.seed, tc.n+100, tc.seed)
		}
	}
	if bytes.Equal(RandomBytes(64, 1), RandomBytes(64, 2)) {
		t.Errorf("RandomBytes(64, 1) == RandomBytes(64, 2); want different seeds to differ")
	}
}

const goldenRandomBytes42 = "68e10cb84622bac13108e8bc8469bf80e075aab190a06aae6e7678d469d2284b"

func TestTempFile(t *testing.T) {
	t.Parallel()
	data := RandomBytes(1234, 5)
	p := TempFile(t, data)
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadFile(TempFile): got %d bytes, err %v; want the %d written", len(got), err, len(data))
	}
	if p2 := TempFile(t, nil); p2 == p {
		t.Errorf("two TempFile calls returned the same path %s", p)
	}
}

func TestFreePort(t *testing.T) {
	t.Parallel()
	p := FreePort(t)
	if p <= 0 || p > 65535 {
		t.Fatalf("FreePort: got %d", p)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("listening on the free port %d: %v", p, err)
	}
	l.Close()
}

func TestFilterEnv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env      []string
		prefixes []string
		want     string
	}{
		{nil, []string{"AWS_"}, "[]"},
		{[]string{"AWS_CA_BUNDLE=/x", "HOME=/root", "AWS_PROFILE=p", "PATH=/bin"}, []string{"AWS_"}, "[HOME=/root PATH=/bin]"},
		{[]string{"VGW_PORT=1", "ROOT_ACCESS_KEY=a", "ROOT_X=1", "X=VGW_"}, []string{"VGW_", "ROOT_ACCESS_KEY"}, "[ROOT_X=1 X=VGW_]"},
		{[]string{"NOVALUE", "AWS_"}, []string{"AWS_"}, "[NOVALUE]"},
	} {
		if got := fmt.Sprint(filterEnv(tc.env, tc.prefixes...)); got != tc.want {
			t.Errorf("filterEnv(%q, %q): got %s; want %s", tc.env, tc.prefixes, got, tc.want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	t.Parallel()
	b := &tailBuffer{max: 8}
	for _, w := range []string{"abc", "defgh", "ij", "klmnopqrstu"} {
		if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q): got %d, %v; want %d, nil", w, n, err, len(w))
		}
	}
	if got, want := string(b.Bytes()), "nopqrstu"; got != want {
		t.Errorf("tailBuffer after 21 bytes with max 8: got %q; want %q", got, want)
	}
}

func BenchmarkRandomBytes(b *testing.B) {
	const n = 1 << 20
	b.ReportAllocs()
	b.SetBytes(n)
	for i := 0; b.Loop(); i++ {
		_ = RandomBytes(n, int64(i))
	}
}
