//go:build !race

package engine

import (
	"net"
	"testing"

	"github.com/panjf2000/gnet/v2"
)

// ppFakeConn is a fakeConn with a peer address (proxyHeader asks for it).
type ppFakeConn struct {
	*fakeConn
	peer net.Addr
}

func (c *ppFakeConn) RemoteAddr() net.Addr { return c.peer }

// The PROXY header is parsed from the loop's buffer without allocation: a small PutObject behind
// a v2 header costs exactly one allocation more than without — the client address string, the one
// OnOpen makes (from the peer's address) when the protocol is off and skips when it is on.
func TestAllocProxyHeaderLoop(t *testing.T) {
	p := newLoopPut(t, 1024)
	put := p.client.in
	hdr := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x13\xcb\x00\x71\x07\x0a\x00\x00\x01\xc8\x02\x00\x50\x05\x00\x04uid1")
	pc := &ppFakeConn{fakeConn: p.client, peer: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}}
	p.client.in = append(hdr, put...)
	run := func() {
		p.st.proxyWait, p.st.conn = true, pc
		p.client.reset()
		p.upc.reset()
		if a := p.e.process(pc, p.st); a != gnet.None || p.st.remote != "203.0.113.7:51202" {
			t.Fatalf("process = %v, remote %q; answer %q", a, p.st.remote, p.client.out)
		}
		if a := p.e.onUpstreamTraffic(p.upc, p.u); a != gnet.None {
			t.Fatalf("onUpstreamTraffic = %v", a)
		}
	}
	for range 3 {
		run()
	}
	if n := testing.AllocsPerRun(100, run); n != 1 {
		t.Errorf("small PutObject behind a PROXY v2 header: %v allocs per request; want 1 (the address string)", n)
	}
}
