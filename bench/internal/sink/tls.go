package sink

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
)

// tlsState records the TLS versions and suites the sink negotiated.
type tlsState struct {
	mu   sync.Mutex
	seen []string
}

// ServeTLS is Serve over TLS with conf: each connection's handshake runs in its own goroutine
// (bounded by 10 s), then the connection is served like a plain one. The body is decrypted by
// crypto/tls and discarded (no splice through TLS). The first connection of each negotiated version
// and suite is logged to Log (when set) and listed by TLSSuites.
func (s *Server) ServeTLS(ln net.Listener, conf *tls.Config) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			tc := tls.Server(c, conf)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if err := tc.Handshake(); err != nil {
				c.Close() // the runner's readiness probe connects and closes: not an error worth a line
				return
			}
			c.SetDeadline(time.Time{})
			s.noteTLS(benchtls.Describe(tc.ConnectionState()))
			s.serveConn(tc)
		}()
	}
}

func (s *Server) noteTLS(d string) {
	s.tls.mu.Lock()
	defer s.tls.mu.Unlock()
	if slices.Contains(s.tls.seen, d) {
		return
	}
	s.tls.seen = append(s.tls.seen, d)
	if s.Log != nil {
		fmt.Fprintln(s.Log, "sink: TLS connection negotiated", d)
	}
}

// TLSSuites lists the versions and suites ServeTLS negotiated ("TLS 1.3 TLS_AES_128_GCM_SHA256"),
// in the order first seen.
func (s *Server) TLSSuites() []string {
	s.tls.mu.Lock()
	defer s.tls.mu.Unlock()
	return slices.Clone(s.tls.seen)
}
