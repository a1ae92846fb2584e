package loadgen

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/sink"
	"github.com/mizuchi/uploadr/s3sig"
)

func startSink(t *testing.T) (*sink.Server, string) {
	t.Helper()
	s, err := sink.New()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go s.Serve(ln)
	return s, ln.Addr().String()
}

var creds = s3sig.Credentials{AccessKey: "AK", SecretKey: "SK"}

func TestRunCount(t *testing.T) {
	for _, size := range []int64{0, 4 << 10, InlineMax + 1, 3 << 20} {
		s, addr := startSink(t)
		r, err := Run(context.Background(), Config{Addr: addr, Bucket: "b", Size: size, Conns: 3, Count: 10, Sign: true, Creds: creds})
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests != 10 || r.Errors != 0 || r.BodyBytes != 10*size {
			t.Errorf("size %d: got %+v; want 10 requests, 0 errors, %d bytes", size, r, 10*size)
		}
		if got := s.Stats.BodyBytes.Load(); got != 10*size {
			t.Errorf("size %d: sink received %d; want %d", size, got, 10*size)
		}
		if r.P99 == 0 || r.P50 > r.P90 || r.P90 > r.P99 || r.P99 > r.Max {
			t.Errorf("size %d: percentiles %v %v %v %v not ordered", size, r.P50, r.P90, r.P99, r.Max)
		}
	}
}

func TestRunUnsignedIsRefusedBySink(t *testing.T) {
	_, addr := startSink(t)
	r, err := Run(context.Background(), Config{Addr: addr, Bucket: "b", Size: 10, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 0 || r.Errors != 2 || r.FirstError == "" {
		t.Errorf("got %+v; want 2 errors (403) and no completed request", r)
	}
}

func TestRunDuration(t *testing.T) {
	_, addr := startSink(t)
	r, err := Run(context.Background(), Config{Addr: addr, Bucket: "b", Size: 100 << 10, Conns: 2, Duration: 200 * time.Millisecond, Sign: true, Creds: creds})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 || r.Seconds > 0.2001 || r.MiBps <= 0 {
		t.Errorf("got %+v; want requests, no errors, 0.2 s", r)
	}
}

func TestIdle(t *testing.T) {
	_, addr := startSink(t)
	var readyAt int64
	r, err := Idle(context.Background(), Config{Addr: addr, Bucket: "b", Size: 1, Conns: 50, Sign: true, Creds: creds}, 50*time.Millisecond, func(n int64) { readyAt = n })
	if err != nil {
		t.Fatal(err)
	}
	if r.Opened != 50 || r.Alive != 50 || readyAt != 50 {
		t.Errorf("got %+v, ready at %d; want 50 opened and alive", r, readyAt)
	}
}

func TestSizes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
	}{{"4096", 4096}, {"4KiB", 4096}, {"1MiB", 1 << 20}, {"64MiB", 64 << 20}, {"1GiB", 1 << 30}, {"8M", 8 << 20}} {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if back, _ := ParseSize(FormatSize(got)); back != got {
			t.Errorf("FormatSize(%d) = %q does not parse back", got, FormatSize(got))
		}
	}
	if _, err := ParseSize("x"); err == nil {
		t.Error(`ParseSize("x"): no error`)
	}
}

// Rate paces each connection's body like a client behind a slower link: 2 MiB at 8 MiB/s takes
// about a quarter of a second, and the sink still receives every byte.
func TestRunRate(t *testing.T) {
	s, addr := startSink(t)
	const size, rate = 2 << 20, 8 << 20
	start := time.Now()
	r, err := Run(context.Background(), Config{Addr: addr, Bucket: "b", Size: size, Conns: 1, Count: 1, Sign: true, Creds: creds, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 220*time.Millisecond {
		t.Errorf("a %d-byte body at %d bytes/s took %v; want about 250ms", size, rate, d)
	}
	if r.Requests != 1 || s.Stats.BodyBytes.Load() != size {
		t.Errorf("got %+v, sink %d bytes; want 1 request of %d bytes", r, s.Stats.BodyBytes.Load(), size)
	}
}
