// Command splicerelay is the benchmarks' physical floor: a TCP relay with no HTTP at all. Each
// client connection gets one upstream connection; client→upstream bytes move through one pipe with
// splice(2) (socket → pipe → socket, 1 MiB pipe, no byte in user space), upstream→client bytes
// (the small answers) through a 4 KiB buffer. One goroutine per direction, parked in Go's poller
// while a socket is not ready. On systems without splice both directions use io.Copy.
//
// With -threads the client's bytes move with filling and draining overlapped instead: a reader and
// a writer thread per connection over the one pipe, waiting in poll(2) (pumpThreads).
//
//	splicerelay -listen 127.0.0.1:7072 -upstream 127.0.0.1:7071 -pipe-size 1MiB [-threads]
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/mizuchi/uploadr/bench/internal/loadgen"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7072", "listen address")
	upstream := flag.String("upstream", "127.0.0.1:7071", "upstream host:port")
	pipeSize := flag.String("pipe-size", "1MiB", "pipe buffer size (F_SETPIPE_SZ)")
	threads := flag.Bool("threads", false, "overlap filling and draining: a reader and a writer thread per connection, waiting in poll(2) instead of Go's poller (Linux)")
	flag.Parse()
	ps, err := loadgen.ParseSize(*pipeSize)
	if err != nil {
		fmt.Fprintln(os.Stderr, "splicerelay:", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "splicerelay:", err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "splicerelay: listening on", ln.Addr(), "upstream", *upstream)
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "splicerelay:", err)
			os.Exit(1)
		}
		go relay(c.(*net.TCPConn), *upstream, int(ps), *threads)
	}
}

func relay(client *net.TCPConn, upstream string, pipeSize int, threads bool) {
	defer client.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	up := u.(*net.TCPConn)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		io.CopyBuffer(struct{ io.Writer }{client}, struct{ io.Reader }{up}, buf) // plain read/write
		client.CloseWrite()
	}()
	move := pump
	if threads {
		move = pumpThreads
	}
	if err := move(up, client, pipeSize); err != nil {
		// The client vanished or the upstream failed: reset both so nobody waits.
		client.SetLinger(0)
		up.SetLinger(0)
		return
	}
	up.CloseWrite()
	<-done
}
