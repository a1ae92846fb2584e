package s3test

import (
	"errors"
	"testing"
	"time"
)

// Stop stops the server (SIGTERM, SIGKILL after 5 s) and keeps its data directory, so that Restart
// can bring it back: an upstream outage. Stopping a stopped server does nothing. Stop and Restart
// must not run concurrently with each other.
func (s *Server) Stop() { s.stop() }

// Restart stops the server if it runs, then starts versitygw again on the same address, data
// directory and root keys, and waits until GET /health answers 200 (at most 20 s). When the
// address was taken meanwhile it tries again until that deadline. Any failure fails the test; the
// cleanup that Start registered stops the new process. Stop and Restart must not run concurrently
// with each other; the server's other methods may.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.stop()
	bin, err := VersitygwPath()
	if err != nil {
		t.Fatalf("s3test: Restart: %v", err)
	}
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.spawn(bin)
		if err == nil {
			err = s.waitHealthy(deadline)
			if err == nil {
				return
			}
			s.stop()
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("s3test: Restart on %s: %v", s.Addr, err)
		}
		time.Sleep(50 * time.Millisecond) // the address is still taken: try again shortly
	}
}
