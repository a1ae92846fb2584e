package engine

import (
	"fmt"
	"testing"
	"time"
)

func TestIPOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:443": "192.0.2.1", "[2001:db8::1]:80": "2001:db8::1", "2001:db8::1": "2001:db8::1", "": "",
	} {
		if got := ipOf(in); got != want {
			t.Errorf("ipOf(%q) = %q; want %q", in, got, want)
		}
	}
}

// A token bucket passes its burst, then one request per 1/rate, and its table stays bounded.
func TestRateTable(t *testing.T) {
	rt := newRateTable(10, 3)
	now := time.Now().UnixNano()
	for i := range 3 {
		if !rt.allow("a", now) {
			t.Fatalf("burst request %d refused", i)
		}
	}
	if rt.allow("a", now) {
		t.Fatal("request past the burst allowed")
	}
	if !rt.allow("b", now) {
		t.Fatal("another key shares a's bucket")
	}
	now += int64(100 * time.Millisecond)
	if !rt.allow("a", now) || rt.allow("a", now) {
		t.Fatal("100 ms at 10/s must refill exactly one token")
	}
	now += int64(time.Hour)
	for i := range 3 {
		if !rt.allow("a", now) {
			t.Fatalf("refilled burst request %d refused", i)
		}
	}
	if rt.allow("a", now) {
		t.Fatal("the bucket refilled past its burst")
	}
	for i := range 4 * maxRateEntries {
		rt.allow(fmt.Sprintf("k%d", i), now)
	}
	n := 0
	for i := range rt.shards {
		n += len(rt.shards[i].m)
	}
	if n > maxRateEntries {
		t.Errorf("table holds %d entries; bound %d", n, maxRateEntries)
	}
	if newRateTable(0, 5) != nil {
		t.Error("rate 0 must disable the table")
	}
	if d := newRateTable(2.5, 0); d.burst != 3 {
		t.Errorf("default burst %v; want 3", d.burst)
	}
}
