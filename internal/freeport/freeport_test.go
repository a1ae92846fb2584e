package freeport

import (
	"net"
	"strconv"
	"testing"
)

// Ports outside the ephemeral range, never twice, and each one bindable right after.
func TestPick(t *testing.T) {
	lo, hi := EphemeralRange()
	seen := map[int]bool{}
	for range 200 {
		p, err := Pick()
		if err != nil {
			t.Fatal(err)
		}
		if p >= lo && p <= hi {
			t.Fatalf("Pick: got %d, inside the ephemeral range %d-%d", p, lo, hi)
		}
		if p < Min || p > 65535 {
			t.Fatalf("Pick: got %d, outside %d-65535", p, Min)
		}
		if seen[p] {
			t.Fatalf("Pick returned %d twice in one process", p)
		}
		seen[p] = true
	}
	p, _ := Pick()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("listening on the picked port %d: %v", p, err)
	}
	l.Close()
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"32768\t60999\n", 32768, 60999, true},
		{"1024 65535", 1024, 65535, true},
		{"", 0, 0, false},
		{"40000", 0, 0, false},
		{"60999 32768", 0, 0, false},
		{"x 1", 0, 0, false},
	} {
		lo, hi, ok := parseRange(tc.in)
		if lo != tc.lo || hi != tc.hi || ok != tc.ok {
			t.Errorf("parseRange(%q): got %d, %d, %v; want %d, %d, %v", tc.in, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}
