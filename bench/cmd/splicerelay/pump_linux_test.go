package main

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestPumps: both pumps move every byte of a stream larger than the pipe, in order, to a reader
// slower than the writer, and return at the sender's EOF.
func TestPumps(t *testing.T) {
	for name, move := range map[string]func(dst, src *net.TCPConn, pipeSize int) error{"pump": pump, "threads": pumpThreads} {
		t.Run(name, func(t *testing.T) {
			client, src := tcpPair(t)
			dst, server := tcpPair(t)
			want := make([]byte, 9<<20+12345)
			rand.Read(want)
			go func() {
				client.Write(want)
				client.CloseWrite()
			}()
			got := make(chan []byte, 1)
			go func() {
				var b bytes.Buffer
				buf := make([]byte, 100<<10)
				for {
					n, err := server.Read(buf)
					b.Write(buf[:n])
					if err != nil {
						break
					}
					time.Sleep(50 * time.Microsecond) // slower than the sender: the pipe fills
				}
				got <- b.Bytes()
			}()
			if err := move(dst, src, 1<<20); err != nil {
				t.Fatalf("%s = %v; want nil at EOF", name, err)
			}
			dst.CloseWrite()
			select {
			case b := <-got:
				if !bytes.Equal(b, want) {
					t.Fatalf("%s moved %d bytes, not the %d sent (or not in order)", name, len(b), len(want))
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s: the receiver never saw EOF", name)
			}
		})
	}
}

// TestPumpThreadsDestinationGone: when the upstream resets mid-stream, pumpThreads returns an error
// instead of waiting, whether its reader then waits on a client that sends nothing more (4 MiB) or
// on a full pipe that nobody drains any more (64 MiB: more than the pipe and the socket buffers).
// With 64 KiB the whole body has left before the reset: the writer waits on an empty pipe and the
// reader on the client, so only the destination's error can end the wait (4 MiB may end that way
// too, when the socket buffers take it all).
func TestPumpThreadsDestinationGone(t *testing.T) {
	for name, size := range map[string]int{"64KiB": 64 << 10, "4MiB": 4 << 20, "64MiB": 64 << 20} {
		t.Run(name, func(t *testing.T) { pumpThreadsDestinationGone(t, size) })
	}
}

// pumpThreadsDestinationGone runs TestPumpThreadsDestinationGone with a client that sends size
// bytes and then keeps its connection open.
func pumpThreadsDestinationGone(t *testing.T, size int) {
	client, src := tcpPair(t)
	dst, server := tcpPair(t)
	go client.Write(make([]byte, size))
	go func() {
		io.ReadFull(server, make([]byte, 64<<10))
		server.SetLinger(0)
		server.Close() // a reset
	}()
	done := make(chan error, 1)
	go func() { done <- pumpThreads(dst, src, 1<<20) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("pumpThreads = nil after the upstream reset; want an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pumpThreads still running 10 s after the upstream reset")
	}
}
