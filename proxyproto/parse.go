package proxyproto

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// Header is a parsed PROXY protocol header.
type Header struct {
	Version int // 1 or 2
	// Local: the header carries no client address — a v2 LOCAL command (a health check by the
	// balancer itself), a v2 PROXY command of family UNSPEC or UNIX, or a v1 "UNKNOWN" line. The
	// receiver keeps the connection's own peer address. Source and Dest are then zero.
	Local  bool
	Source netip.AddrPort // the client's address as the balancer saw it
	Dest   netip.AddrPort // the address the client connected to
}

const (
	// MaxV1Len is the longest v1 line the specification allows, CRLF included.
	MaxV1Len = 107
	// MaxV2Len bounds a v2 header, its 16 fixed bytes included. The specification allows 16+65535;
	// a balancer's addresses plus the TLVs in use (ALPN, authority, unique id, SSL, AWS VPC
	// endpoint) fit in far less.
	MaxV2Len = 4096
)

var (
	v1Sig = []byte("PROXY ")
	v2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// Parse reads a PROXY header (v1 or v2, told apart by the first byte) from the start of b. It
// returns the header's length n (the caller drops b[:n]; the bytes after it belong to the next
// layer) with *h filled, or n=0 with ErrNeedMore while b is a valid but incomplete beginning, or
// n=0 with another error (ErrMissing or a kind of ErrMalformed), which more bytes cannot repair.
// Parse keeps no reference to b, holds no state between calls (call it again on the grown buffer)
// and allocates nothing.
func Parse(b []byte, h *Header) (n int, err error) {
	*h = Header{}
	if len(b) == 0 {
		return 0, ErrNeedMore
	}
	switch b[0] {
	case 'P':
		return parseV1(b, h)
	case '\r':
		return parseV2(b, h)
	}
	return 0, ErrMissing
}

// matchPrefix reports whether b and sig agree on their common length, and whether b holds all of sig.
func matchPrefix(b, sig []byte) (ok, whole bool) {
	m := min(len(b), len(sig))
	return bytes.Equal(b[:m], sig[:m]), len(b) >= len(sig)
}

// parseV1 reads the text form:
//
//	"PROXY" SP ( "TCP4" SP ipv4 SP ipv4 SP port SP port
//	           | "TCP6" SP ipv6 SP ipv6 SP port SP port
//	           | "UNKNOWN" [ SP *printable ] ) CRLF          ; at most 107 bytes
func parseV1(b []byte, h *Header) (int, error) {
	if ok, whole := matchPrefix(b, v1Sig); !ok {
		return 0, ErrMissing
	} else if !whole {
		return 0, ErrNeedMore
	}
	end := -1
	for i := len(v1Sig); i < len(b) && i < MaxV1Len; i++ {
		c := b[i]
		if c == '\r' {
			if i+1 < len(b) && b[i+1] != '\n' {
				return 0, ErrV1Syntax
			}
			continue
		}
		if c == '\n' {
			if b[i-1] != '\r' {
				return 0, ErrV1Syntax
			}
			end = i + 1
			break
		}
		if c < 0x20 || c > 0x7e {
			return 0, ErrV1Syntax
		}
	}
	if end < 0 {
		if len(b) >= MaxV1Len {
			return 0, ErrTooLong
		}
		return 0, ErrNeedMore
	}
	line := b[len(v1Sig) : end-2]
	if bytes.Equal(line, []byte("UNKNOWN")) || bytes.HasPrefix(line, []byte("UNKNOWN ")) {
		h.Version, h.Local = 1, true // the receiver must ignore what follows UNKNOWN
		return end, nil
	}
	if len(line) < 5 || line[4] != ' ' {
		return 0, ErrV1Syntax
	}
	var v6 bool
	switch string(line[:4]) {
	case "TCP4":
	case "TCP6":
		v6 = true
	default:
		return 0, ErrV1Syntax
	}
	var f [4][]byte
	rest := line[5:]
	for i := range f {
		j := bytes.IndexByte(rest, ' ')
		if i == len(f)-1 {
			if j >= 0 {
				return 0, ErrV1Syntax
			}
			j = len(rest)
		}
		if j <= 0 {
			return 0, ErrV1Syntax
		}
		f[i] = rest[:j]
		if j < len(rest) {
			rest = rest[j+1:]
		} else {
			rest = nil
		}
	}
	var src, dst netip.Addr
	var ok1, ok2 bool
	if v6 {
		src, ok1 = parseIPv6(f[0])
		dst, ok2 = parseIPv6(f[1])
	} else {
		src, ok1 = parseIPv4(f[0])
		dst, ok2 = parseIPv4(f[1])
	}
	sp, ok3 := parsePort(f[2])
	dp, ok4 := parsePort(f[3])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, ErrV1Address
	}
	h.Version = 1
	h.Source, h.Dest = netip.AddrPortFrom(src, sp), netip.AddrPortFrom(dst, dp)
	return end, nil
}

// parseV2 reads the binary form: the 12-byte signature, ver_cmd (0x20 LOCAL, 0x21 PROXY),
// fam_proto, a big-endian length of what follows, the address block of the family, then TLVs
// (type, big-endian length, value) up to the end, which are checked for framing and skipped.
func parseV2(b []byte, h *Header) (int, error) {
	if ok, whole := matchPrefix(b, v2Sig); !ok {
		return 0, ErrMissing
	} else if !whole {
		return 0, ErrNeedMore
	}
	if len(b) < 13 {
		return 0, ErrNeedMore
	}
	verCmd := b[12]
	if verCmd>>4 != 2 || verCmd&0xf > 1 {
		return 0, ErrV2Version
	}
	if len(b) < 16 {
		return 0, ErrNeedMore
	}
	total := 16 + int(binary.BigEndian.Uint16(b[14:16]))
	if total > MaxV2Len {
		return 0, ErrTooLong
	}
	if len(b) < total {
		return 0, ErrNeedMore
	}
	h.Version = 2
	if verCmd&0xf == 0 { // LOCAL: the block, family included, is to be discarded
		h.Local = true
		return total, nil
	}
	block := b[16:total]
	var alen int
	switch b[13] {
	case 0x00: // UNSPEC: no address
		h.Local = true
	case 0x11: // TCP over IPv4
		alen = 12
	case 0x21: // TCP over IPv6
		alen = 36
	case 0x31: // UNIX stream: paths, not an IP client
		alen, h.Local = 216, true
	default:
		*h = Header{}
		return 0, ErrV2Family
	}
	if len(block) < alen {
		*h = Header{}
		return 0, ErrV2Family
	}
	switch alen {
	case 12:
		h.Source = netip.AddrPortFrom(netip.AddrFrom4([4]byte(block[0:4])), binary.BigEndian.Uint16(block[8:10]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom4([4]byte(block[4:8])), binary.BigEndian.Uint16(block[10:12]))
	case 36:
		h.Source = netip.AddrPortFrom(netip.AddrFrom16([16]byte(block[0:16])), binary.BigEndian.Uint16(block[32:34]))
		h.Dest = netip.AddrPortFrom(netip.AddrFrom16([16]byte(block[16:32])), binary.BigEndian.Uint16(block[34:36]))
	}
	for t := block[alen:]; len(t) > 0; {
		if len(t) < 3 {
			*h = Header{}
			return 0, ErrV2TLV
		}
		l := 3 + int(binary.BigEndian.Uint16(t[1:3]))
		if l > len(t) {
			*h = Header{}
			return 0, ErrV2TLV
		}
		t = t[l:]
	}
	return total, nil
}

// parseIPv4 reads a dotted quad: four decimal octets 0-255, without leading zeros.
func parseIPv4(s []byte) (netip.Addr, bool) {
	var ip [4]byte
	for i := range ip {
		if i > 0 {
			if len(s) == 0 || s[0] != '.' {
				return netip.Addr{}, false
			}
			s = s[1:]
		}
		v, n := 0, 0
		for n < len(s) && n < 4 && s[n] >= '0' && s[n] <= '9' {
			v = v*10 + int(s[n]-'0')
			n++
		}
		if n == 0 || n > 3 || v > 255 || (n > 1 && s[0] == '0') {
			return netip.Addr{}, false
		}
		ip[i] = byte(v)
		s = s[n:]
	}
	return netip.AddrFrom4(ip), len(s) == 0
}

// parseIPv6 reads an RFC 4291 section 2.2 text address: eight groups of 1-4 hex digits, at most
// one "::" standing for one or more zero groups, an optional dotted-quad tail; no zone.
func parseIPv6(s []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis, i := -1, 0
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis, s = 0, s[2:]
	}
	for i < 16 && len(s) > 0 {
		v, n := 0, 0
		for n < len(s) && n < 5 {
			d := unhex(s[n])
			if d < 0 {
				break
			}
			v = v<<4 | d
			n++
		}
		if n < len(s) && s[n] == '.' { // the dotted-quad tail takes the last 4 bytes
			if i > 12 {
				return netip.Addr{}, false
			}
			v4, ok := parseIPv4(s)
			if !ok {
				return netip.Addr{}, false
			}
			a := v4.As4()
			copy(ip[i:], a[:])
			i, s = i+4, nil
			break
		}
		if n == 0 || n > 4 {
			return netip.Addr{}, false
		}
		ip[i], ip[i+1] = byte(v>>8), byte(v)
		i, s = i+2, s[n:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis, s = i, s[1:]
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group
	}
	return netip.AddrFrom16(ip), true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// parsePort reads a decimal port 0-65535 without a sign or leading zeros.
func parsePort(s []byte) (uint16, bool) {
	if len(s) == 0 || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return uint16(v), v <= 65535
}
