package engine

import (
	"net"
	"testing"
	"time"
)

// The goroutine pool keeps at most maxIdle idle connections (its share of the endpoint's total),
// and sweepIdle closes the ones whose peer went away and, later, the ones idle too long.
func TestPoolSweepIdle(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	p := newUpstreamPool(endpoint{addr: l.Addr().String(), host: "x"}, nil,
		UpstreamOptions{DialTimeout: time.Second, MaxIdle: 2, IdleTimeout: time.Minute}, newEngineMetrics())
	var ups []*upConn
	var peers []net.Conn
	for range 3 {
		u, err := p.dial()
		if err != nil {
			t.Fatal(err)
		}
		ups = append(ups, u)
		peers = append(peers, <-accepted)
	}
	for _, u := range ups {
		p.put(u)
	}
	if n, o := p.idleN.Load(), p.open.Load(); n != 2 || o != 2 {
		t.Fatalf("after 3 puts: idle %d open %d; want 2 and 2", n, o)
	}
	if !ups[2].closed {
		t.Fatalf("the third connection was kept; want it closed (max idle 2)")
	}

	// The peer of one idle connection goes away: the next sweep notices.
	peers[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for p.idleN.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("idle %d after the peer closed; want 1", p.idleN.Load())
		}
		p.sweepIdle(time.Now())
		time.Sleep(10 * time.Millisecond)
	}
	if !ups[0].closed || ups[1].closed {
		t.Fatalf("closed: %v %v; want the dead one only", ups[0].closed, ups[1].closed)
	}

	// Idle past the timeout.
	p.sweepIdle(time.Now().Add(30 * time.Second))
	if p.idleN.Load() != 1 {
		t.Fatalf("swept before the idle timeout")
	}
	p.sweepIdle(time.Now().Add(2 * time.Minute))
	if n, o := p.idleN.Load(), p.open.Load(); n != 0 || o != 0 {
		t.Fatalf("after the idle timeout: idle %d open %d; want 0 and 0", n, o)
	}
	for _, c := range peers {
		c.Close()
	}
}
