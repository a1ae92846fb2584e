package engine

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestByteBudget(t *testing.T) {
	b := newByteBudget(10)
	steps := []struct {
		acquire, release int64
		want             bool
		inUse            int64
	}{
		{acquire: 4, want: true, inUse: 4},
		{acquire: 6, want: true, inUse: 10}, // exactly full
		{acquire: 1, want: false, inUse: 10},
		{acquire: 0, want: true, inUse: 10}, // nothing always fits
		{release: 4, inUse: 6},
		{acquire: 5, want: false, inUse: 6}, // a refusal reserves nothing
		{acquire: 4, want: true, inUse: 10},
		{release: 10, inUse: 0},
		{acquire: 11, want: false, inUse: 0}, // larger than the whole budget
		{acquire: 10, want: true, inUse: 10},
		{release: 10, inUse: 0},
	}
	for i, s := range steps {
		if s.release > 0 {
			b.release(s.release)
		} else if got := b.tryAcquire(s.acquire); got != s.want {
			t.Errorf("step %d: tryAcquire(%d) = %v; want %v", i, s.acquire, got, s.want)
		}
		if got := b.inUse(); got != s.inUse {
			t.Errorf("step %d: inUse() = %d; want %d", i, got, s.inUse)
		}
	}
	if b.max() != 10 {
		t.Errorf("max() = %d; want 10", b.max())
	}
}

func TestByteBudgetLargeValues(t *testing.T) {
	b := newByteBudget(1 << 62)
	if !b.tryAcquire(1<<62 - 1) {
		t.Fatal("tryAcquire(limit-1) refused")
	}
	if b.tryAcquire(1 << 62) { // cur+n would overflow int64 if computed naively
		t.Error("tryAcquire past the limit accepted")
	}
	if !b.tryAcquire(1) || b.inUse() != 1<<62 {
		t.Errorf("inUse() = %d; want %d", b.inUse(), int64(1)<<62)
	}
}

func TestByteBudgetMisuse(t *testing.T) {
	for name, f := range map[string]func(){
		"over-release":     func() { b := newByteBudget(10); b.tryAcquire(3); b.release(4) },
		"negative release": func() { newByteBudget(10).release(-1) },
		"negative acquire": func() { newByteBudget(10).tryAcquire(-1) },
		"zero limit":       func() { newByteBudget(0) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// Concurrent holders never exceed the limit together, and everything comes back.
func TestByteBudgetConcurrent(t *testing.T) {
	const limit, workers, rounds = 64 << 20, 8, 5000
	b := newByteBudget(limit)
	var held atomic.Int64 // what the holders hold, counted by them
	var granted, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				n := int64((w*7919+r*104729)%(12<<20) + 1) // 1 B .. 12 MiB: 8 of them cannot all fit
				if !b.tryAcquire(n) {
					refused.Add(1)
					continue
				}
				granted.Add(1)
				if h := held.Add(n); h > limit {
					t.Errorf("holders hold %d bytes; limit %d", h, limit)
				}
				if u := b.inUse(); u > limit {
					t.Errorf("inUse() = %d; limit %d", u, limit)
				}
				runtime.Gosched()
				held.Add(-n)
				b.release(n)
			}
		}()
	}
	wg.Wait()
	if b.inUse() != 0 {
		t.Errorf("inUse() = %d after every release; want 0", b.inUse())
	}
	if granted.Load() == 0 || granted.Load()+refused.Load() != workers*rounds {
		t.Errorf("granted %d, refused %d of %d", granted.Load(), refused.Load(), workers*rounds)
	}
	t.Logf("granted %d, refused %d", granted.Load(), refused.Load())
}

// Racers that only acquire get exactly the whole budget between them: no lost update, no overdraft.
func TestByteBudgetConcurrentFill(t *testing.T) {
	const limit, workers = 100000, 8
	b := newByteBudget(limit)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b.tryAcquire(3) {
				granted.Add(3)
			}
		}()
	}
	wg.Wait()
	if g, u := granted.Load(), b.inUse(); g != limit/3*3 || u != g {
		t.Errorf("granted %d, inUse() %d; want both %d", g, u, limit/3*3)
	}
}

// Options.CompleteBodyBudget defaults to 64 MiB and must hold one largest Complete document.
func TestCompleteBodyBudgetOption(t *testing.T) {
	valid := func(budget int64) *Options {
		o := &Options{CompleteBodyBudget: budget, Buckets: []Bucket{{Name: "b", AuthNone: true,
			Upstream: Upstream{Endpoint: "http://127.0.0.1:1", Bucket: "u", AccessKey: "k", SecretKey: "s"}}}}
		o.withDefaults()
		return o
	}
	if o := valid(0); o.CompleteBodyBudget != 32<<20 || o.Validate() != nil {
		t.Errorf("default: %d, %v; want 32 MiB, valid", o.CompleteBodyBudget, o.Validate())
	}
	if err := valid(maxCompleteBody).Validate(); err != nil {
		t.Errorf("4 MiB: %v", err)
	}
	if err := valid(maxCompleteBody - 1).Validate(); err == nil || !strings.Contains(err.Error(), "complete body budget") {
		t.Errorf("4 MiB - 1: %v; want a complete body budget error", err)
	}
}

// A Complete refused by the budget gets 503 SlowDown, which S3 clients retry with backoff.
func TestCompleteBudgetError(t *testing.T) {
	resp := string(appendErrorResponse(nil, errCompleteBudget, []byte("/b/k"), []byte("REQ1"), nil, false))
	for _, want := range []string{"HTTP/1.1 503 Service Unavailable\r\n", "<Code>SlowDown</Code>", "CompleteMultipartUpload"} {
		if !strings.Contains(resp, want) {
			t.Errorf("budget refusal lacks %q:\n%s", want, resp)
		}
	}
}
