//go:build !race

package httpparse

import "testing"

// TestZeroAllocs asserts that the hot paths allocate nothing: parsing the
// real aws cli and boto3 PUT heads (one shot and resumed), looking a header
// up, parsing a response head and scanning a chunked body.
func TestZeroAllocs(t *testing.T) {
	var p Parser
	req := new(Request)
	for _, name := range []string{"awscli-put.http", "boto3-put.http"} {
		buf := readHead(t, name)
		if n := testing.AllocsPerRun(100, func() {
			p.Reset()
			if err := p.Parse(buf, Limits{}, req); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: Parse allocs = %v; want 0", name, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			p.Reset()
			for _, cut := range []int{10, 100, 500, len(buf) - 1} {
				if err := p.Parse(buf[:cut], Limits{}, req); err != ErrNeedMore {
					t.Fatal(err)
				}
			}
			if err := p.Parse(buf, Limits{}, req); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: resumed Parse allocs = %v; want 0", name, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			if _, ok := req.Lookup(buf, "x-amz-content-sha256"); !ok {
				t.Fatal("x-amz-content-sha256 not found")
			}
			_ = req.HeaderCount(buf, "host")
		}); n != 0 {
			t.Errorf("%s: Lookup allocs = %v; want 0", name, n)
		}
	}

	resp := new(Response)
	rbuf := realResponse(t, "versitygw-put-200.http")
	if n := testing.AllocsPerRun(100, func() {
		p.Reset()
		if err := p.ParseResponse(rbuf, Limits{}, resp); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ParseResponse allocs = %v; want 0", n)
	}

	var s ChunkScanner
	body := []byte("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n")
	if n := testing.AllocsPerRun(100, func() {
		s.Reset()
		if _, done, err := s.Scan(body); !done || err != nil {
			t.Fatal(done, err)
		}
	}); n != 0 {
		t.Errorf("ChunkScanner.Scan allocs = %v; want 0", n)
	}
	work := make([]byte, len(body))
	if n := testing.AllocsPerRun(100, func() {
		s.ResetRequest()
		copy(work, body)
		if _, d, done, err := s.Decode(work); !done || err != nil || d != 11 || s.MinRemaining() != 0 {
			t.Fatal(d, done, err)
		}
	}); n != 0 {
		t.Errorf("ChunkScanner.Decode allocs = %v; want 0", n)
	}
}
