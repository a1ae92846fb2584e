package server

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct {
	release chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *blockingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// A stuck output never blocks the writer; lines past the limit are dropped and counted; Close
// writes what was kept.
func TestAccessWriterNeverBlocks(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	a := NewAccessWriter(w, 100)
	dropped := accessLogDropped.Get()
	line := strings.Repeat("x", 29) + "\n" // 30 bytes
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10; i++ {
			_, _ = a.Write([]byte(line))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a stuck output")
	}
	close(w.release)
	_ = a.Close()
	// The flusher may hold a batch of up to 3 lines (90 bytes) while 3 more wait: 3 to 6 kept.
	got := strings.Count(w.String(), "\n")
	if got < 3 || got > 6 {
		t.Errorf("%d lines written; want 3 to 6 of 10 with a 100-byte limit", got)
	}
	if d := accessLogDropped.Get() - dropped; int(d) != 10-got {
		t.Errorf("dropped counter moved by %d; want %d", d, 10-got)
	}
	if n, err := a.Write([]byte(line)); n != len(line) || err != nil {
		t.Errorf("write after close: %d %v", n, err)
	}
}

func TestAccessWriterKeepsOrder(t *testing.T) {
	var buf syncBuffer
	a := NewAccessWriter(&buf, 1<<20)
	var want strings.Builder
	for i := 0; i < 1000; i++ {
		l := strings.Repeat(string(rune('a'+i%26)), i%50) + "\n"
		want.WriteString(l)
		_, _ = a.Write([]byte(l))
	}
	_ = a.Close()
	if buf.String() != want.String() {
		t.Error("lines reordered or lost")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The prober is not ready before its first probe, ready while every endpoint accepts, and names
// the endpoint that does not.
func TestProber(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()

	p := newProber(time.Second, 20*time.Millisecond)
	live := "http://" + l.Addr().String()
	p.setEndpoints([]string{live})
	if ok, why := p.ready(); ok || !strings.Contains(why, "not probed yet") {
		t.Errorf("before the first probe: %v %q", ok, why)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.run(ctx)
	waitFor(t, func() bool { ok, _ := p.ready(); return ok })

	p.setEndpoints([]string{live, "http://" + deadAddr})
	waitFor(t, func() bool { _, why := p.ready(); return strings.Contains(why, deadAddr+" unreachable") })
	if ok, _ := p.ready(); ok {
		t.Error("ready with an unreachable endpoint")
	}
	p.setEndpoints([]string{live}) // reload drops the dead endpoint
	if ok, why := p.ready(); !ok {
		t.Errorf("after dropping the dead endpoint: %q", why)
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{"http://h": "h:80", "https://h": "h:443", "http://h:7070": "h:7070", "https://[::1]": "[::1]:443"} {
		if got, err := dialAddr(in); err != nil || got != want {
			t.Errorf("dialAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
