package proxyproto_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mizuchi/uploadr/proxyproto"
)

// FuzzParse checks that Parse never panics, consumes only what it accepted, is consistent with
// itself on every prefix, and that an accepted header round-trips through its own encoding.
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 65535 0\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2(0x21, 0x11, inet("10.1.2.3", "10.9.9.9", 40000, 9000), tlv(0x01, []byte("h2"))))
	f.Add(v2(0x21, 0x21, inet("2001:db8::7", "2001:db8::8", 1234, 443)))
	f.Add(v2(0x20, 0x00, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		var h proxyproto.Header
		n, err := proxyproto.Parse(in, &h)
		switch {
		case err == nil:
			if n <= 0 || n > len(in) || n > proxyproto.MaxV2Len {
				t.Fatalf("consumed %d of %d", n, len(in))
			}
			var h2 proxyproto.Header
			if n2, err2 := proxyproto.Parse(in[:n], &h2); n2 != n || err2 != nil || h2 != h {
				t.Fatalf("the header alone parses as %d, %v, %+v; want %d, %+v", n2, err2, h2, n, h)
			}
			if h.Version == 1 && !h.Local {
				// The canonical text of the same addresses parses to the same header.
				fam := "TCP4"
				if h.Source.Addr().Is6() {
					fam = "TCP6"
				}
				line := fmt.Sprintf("PROXY %s %s %s %d %d\r\n", fam, h.Source.Addr(), h.Dest.Addr(), h.Source.Port(), h.Dest.Port())
				var h3 proxyproto.Header
				if n3, err3 := proxyproto.Parse([]byte(line), &h3); err3 != nil || n3 != len(line) || h3 != h {
					t.Fatalf("%q parsed as %+v, its canonical form %q as %d, %v, %+v", in[:n], h, line, n3, err3, h3)
				}
			}
		case errors.Is(err, proxyproto.ErrNeedMore):
			if n != 0 {
				t.Fatalf("need more with n=%d", n)
			}
		default:
			if n != 0 {
				t.Fatalf("error %v with n=%d", err, n)
			}
			// An error is final: more bytes cannot repair it.
			var h2 proxyproto.Header
			if _, err2 := proxyproto.Parse(append(append([]byte{}, in...), "\r\n"...), &h2); err2 == nil {
				t.Fatalf("%q: %v, but with CRLF appended it parses", in, err)
			}
		}
	})
}
