package engine

import (
	"crypto/tls"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/testca"
	"github.com/mizuchi/uploadr/transfer"
)

// loopbackTLSListener is a certificate for 127.0.0.1 and a listener there (closed with the test).
func loopbackTLSListener(t *testing.T) (*testca.Cert, net.Listener) {
	t.Helper()
	ca, err := testca.New(testca.Spec{CommonName: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ca, ln
}

// TestReadyTLS: a detached TLS client's connection says a Read would return at once exactly when its
// socket holds a whole record's worth of ciphertext (on Linux; never elsewhere), and reads decrypt.
func TestReadyTLS(t *testing.T) {
	ca, ln := loopbackTLSListener(t)
	type server struct {
		sock net.Conn
		tc   *tls.Conn
		err  error
	}
	accepted := make(chan server, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- server{err: err}
			return
		}
		sc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{ca.TLSCertificate()}})
		accepted <- server{c, sc, sc.Handshake()}
	}()
	cc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	srv := <-accepted
	if srv.err != nil {
		t.Fatal(srv.err)
	}
	defer srv.sock.Close()
	sock, sc := srv.sock, srv.tc
	var rd readyTLS
	var ra readAhead
	rd.point(sc, sock, &ra)
	var _ transfer.ReadReadier = &rd
	if rd.ReadReady() {
		t.Fatal("ReadReady with nothing sent")
	}
	msg := make([]byte, 3*16<<10) // three full records
	for i := range msg {
		msg[i] = byte(i)
	}
	if _, err := cc.Write(msg); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" {
		deadline := time.Now().Add(5 * time.Second)
		for !rd.ReadReady() {
			if time.Now().After(deadline) {
				t.Fatalf("ReadReady false with three records sent (queued %d)", rd.inq)
			}
			time.Sleep(time.Millisecond)
		}
	} else if rd.ReadReady() {
		t.Fatal("ReadReady true where the queue cannot be asked")
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(&rd, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(msg) {
		t.Fatal("decrypted bytes differ")
	}
	if rd.ReadReady() {
		t.Fatalf("ReadReady after everything was read (queued %d)", rd.inq)
	}
}
