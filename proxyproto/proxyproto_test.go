package proxyproto_test

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/proxyproto"
)

var sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// v2 builds a version 2 header: verCmd, famProto, the address block and the TLVs.
func v2(verCmd, famProto byte, addr []byte, tlvs ...[]byte) []byte {
	b := append([]byte{}, sig...)
	b = append(b, verCmd, famProto, 0, 0)
	b = append(b, addr...)
	for _, t := range tlvs {
		b = append(b, t...)
	}
	binary.BigEndian.PutUint16(b[14:16], uint16(len(b)-16))
	return b
}

func tlv(typ byte, val []byte) []byte {
	return append([]byte{typ, byte(len(val) >> 8), byte(len(val))}, val...)
}

func inet(src, dst string, sp, dp uint16) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	b := append(s.AsSlice(), d.AsSlice()...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, sp), dp)
}

func TestParseValid(t *testing.T) {
	unix := make([]byte, 216)
	for _, tc := range []struct {
		name    string
		in      []byte
		version int
		local   bool
		src     string
		dst     string
	}{
		// The examples of the specification (haproxy doc/proxy-protocol.txt, 2.1).
		{"v1 tcp4", []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"), 1, false, "192.168.0.1:56324", "192.168.0.11:443"},
		{"v1 tcp6 real", []byte("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n"), 1, false, "[2001:db8::1]:65535", "[::1]:0"},
		{"v1 tcp6 v4 tail", []byte("PROXY TCP6 ::ffff:10.0.0.1 fe80:0:0:0:200:f8ff:fe21:67cf 1 2\r\n"), 1, false, "[::ffff:10.0.0.1]:1", "[fe80::200:f8ff:fe21:67cf]:2"},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), 1, true, "", ""},
		{"v1 unknown with addresses", []byte("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"), 1, true, "", ""},
		{"v1 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"), 1, false,
			"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"},
		{"v2 tcp4", v2(0x21, 0x11, inet("10.1.2.3", "10.9.9.9", 40000, 9000)), 2, false, "10.1.2.3:40000", "10.9.9.9:9000"},
		{"v2 tcp6", v2(0x21, 0x21, inet("2001:db8::7", "2001:db8::8", 1234, 443)), 2, false, "[2001:db8::7]:1234", "[2001:db8::8]:443"},
		{"v2 local", v2(0x20, 0x00, nil), 2, true, "", ""},
		{"v2 local with addresses", v2(0x20, 0x11, inet("1.2.3.4", "5.6.7.8", 1, 2)), 2, true, "", ""},
		{"v2 proxy unspec", v2(0x21, 0x00, nil), 2, true, "", ""},
		{"v2 proxy unix", v2(0x21, 0x31, unix), 2, true, "", ""},
		{"v2 tlvs", v2(0x21, 0x11, inet("10.1.2.3", "10.9.9.9", 1, 2), tlv(0x01, []byte("http/1.1")), tlv(0xEA, []byte("vpce-0123")), tlv(0x04, nil)), 2, false, "10.1.2.3:1", "10.9.9.9:2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append(append([]byte{}, tc.in...), "PUT / HTTP/1.1\r\n"...)
			var h proxyproto.Header
			n, err := proxyproto.Parse(in, &h)
			if err != nil || n != len(tc.in) {
				t.Fatalf("Parse = %d, %v; want %d, nil", n, err, len(tc.in))
			}
			if h.Version != tc.version || h.Local != tc.local {
				t.Fatalf("version %d local %v; want %d %v", h.Version, h.Local, tc.version, tc.local)
			}
			if !tc.local && (h.Source.String() != tc.src || h.Dest.String() != tc.dst) {
				t.Fatalf("source %s dest %s; want %s %s", h.Source, h.Dest, tc.src, tc.dst)
			}
			if tc.local && (h.Source.IsValid() || h.Dest.IsValid()) {
				t.Fatalf("local header carries addresses %s %s", h.Source, h.Dest)
			}
			// Every strict prefix needs more bytes.
			for i := 0; i < len(tc.in); i++ {
				if n, err := proxyproto.Parse(tc.in[:i], &h); err != proxyproto.ErrNeedMore || n != 0 {
					t.Fatalf("prefix %d: Parse = %d, %v; want ErrNeedMore", i, n, err)
				}
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	big := make([]byte, proxyproto.MaxV2Len)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"http request", []byte("PUT /b/k HTTP/1.1\r\n"), proxyproto.ErrMissing},
		{"tls hello", []byte{0x16, 0x03, 0x01, 0x00, 0xa5}, proxyproto.ErrMissing},
		{"lower case", []byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), proxyproto.ErrMissing},
		{"v2 sig broken", append(append([]byte{}, sig[:11]...), 'X', 0x21, 0x11, 0, 0), proxyproto.ErrMissing},
		{"v1 bare LF", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), proxyproto.ErrMalformed},
		{"v1 double space", []byte("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), proxyproto.ErrMalformed},
		{"v1 trailing space", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), proxyproto.ErrMalformed},
		{"v1 unknown proto", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), proxyproto.ErrMalformed},
		{"v1 tcp4 with v6", []byte("PROXY TCP4 ::1 ::1 1 2\r\n"), proxyproto.ErrMalformed},
		{"v1 tcp6 with v4", []byte("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), proxyproto.ErrMalformed},
		{"v1 octet 256", []byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), proxyproto.ErrMalformed},
		{"v1 octet leading zero", []byte("PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n"), proxyproto.ErrMalformed},
		{"v1 port 65536", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), proxyproto.ErrMalformed},
		{"v1 port leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), proxyproto.ErrMalformed},
		{"v1 port sign", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"), proxyproto.ErrMalformed},
		{"v1 missing port", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), proxyproto.ErrMalformed},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n"), proxyproto.ErrMalformed},
		{"v1 two ::", []byte("PROXY TCP6 1::2::3 ::1 1 2\r\n"), proxyproto.ErrMalformed},
		{"v1 nul", []byte("PROXY UNKNOWN \x00\r\n"), proxyproto.ErrMalformed},
		{"v1 too long", []byte("PROXY UNKNOWN " + strings.Repeat("a", 100) + "\r\n"), proxyproto.ErrMalformed},
		{"v1 too long, no CRLF yet", []byte("PROXY UNKNOWN " + strings.Repeat("a", 100)), proxyproto.ErrMalformed},
		{"v2 version 1", v2(0x11, 0x11, inet("1.2.3.4", "5.6.7.8", 1, 2)), proxyproto.ErrMalformed},
		{"v2 command 2", v2(0x22, 0x11, inet("1.2.3.4", "5.6.7.8", 1, 2)), proxyproto.ErrMalformed},
		{"v2 family 4", v2(0x21, 0x41, inet("1.2.3.4", "5.6.7.8", 1, 2)), proxyproto.ErrMalformed},
		{"v2 dgram", v2(0x21, 0x12, inet("1.2.3.4", "5.6.7.8", 1, 2)), proxyproto.ErrMalformed},
		{"v2 short address block", v2(0x21, 0x21, inet("1.2.3.4", "5.6.7.8", 1, 2)), proxyproto.ErrMalformed},
		{"v2 tlv overruns", v2(0x21, 0x11, inet("1.2.3.4", "5.6.7.8", 1, 2), []byte{0x01, 0x00, 0x09, 'h'}), proxyproto.ErrMalformed},
		{"v2 tlv truncated head", v2(0x21, 0x11, inet("1.2.3.4", "5.6.7.8", 1, 2), []byte{0x01, 0x00}), proxyproto.ErrMalformed},
		{"v2 too long", v2(0x21, 0x11, big), proxyproto.ErrTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h proxyproto.Header
			n, err := proxyproto.Parse(tc.in, &h)
			if !errors.Is(err, tc.want) || n != 0 {
				t.Fatalf("Parse = %d, %v; want 0, %v", n, err, tc.want)
			}
			if tc.want != proxyproto.ErrMissing && !errors.Is(err, proxyproto.ErrMalformed) {
				t.Fatalf("%v is not a kind of ErrMalformed", err)
			}
		})
	}
}

// The first bytes decide "not a PROXY header" as soon as they differ from both signatures.
func TestParseMissingEarly(t *testing.T) {
	var h proxyproto.Header
	for _, in := range []string{"G", "PU", "PROXX", "\r\n\r\nX"} {
		if _, err := proxyproto.Parse([]byte(in), &h); err != proxyproto.ErrMissing {
			t.Errorf("Parse(%q) = %v; want ErrMissing", in, err)
		}
	}
	for _, in := range []string{"", "P", "PROX", "\r\n\r\n\x00"} {
		if _, err := proxyproto.Parse([]byte(in), &h); err != proxyproto.ErrNeedMore {
			t.Errorf("Parse(%q) = %v; want ErrNeedMore", in, err)
		}
	}
}

func TestParseAllocs(t *testing.T) {
	ins := [][]byte{
		[]byte("PROXY TCP6 2001:db8::1 ::1 65535 0\r\nGET"),
		[]byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
		v2(0x21, 0x21, inet("2001:db8::7", "2001:db8::8", 1234, 443), tlv(0xEA, []byte("vpce"))),
		[]byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"),
	}
	var h proxyproto.Header
	if a := testing.AllocsPerRun(100, func() {
		for _, in := range ins {
			_, _ = proxyproto.Parse(in, &h)
		}
	}); a != 0 {
		t.Fatalf("Parse allocates %v times per run; want 0", a)
	}
}
