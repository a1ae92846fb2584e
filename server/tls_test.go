package server

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/testca"
)

// writePair writes a self-signed certificate for 127.0.0.1 and its key; it is valid from an hour
// ago until validity from now (negative: expired).
func writePair(t *testing.T, dir, name string, validity time.Duration) (certFile, keyFile string) {
	t.Helper()
	c, err := testca.New(testca.Spec{Serial: 7, CommonName: "127.0.0.1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: validity})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	_ = os.WriteFile(certFile, c.CertPEM(), 0o600)
	_ = os.WriteFile(keyFile, c.KeyPEM(), 0o600)
	return certFile, keyFile
}

func TestTLSConfigValidation(t *testing.T) {
	dir := t.TempDir()
	good, goodKey := writePair(t, dir, "good", 365*24*time.Hour)
	soon, soonKey := writePair(t, dir, "soon", 48*time.Hour)
	old, oldKey := writePair(t, dir, "old", -time.Hour)
	_, otherKey := writePair(t, dir, "other", time.Hour)
	for _, tc := range []struct {
		name string
		tls  TLSConfig
		want string // "" = valid
	}{
		{"off", TLSConfig{}, ""},
		{"good", TLSConfig{Address: ":8443", CertFile: good, KeyFile: goodKey, MinVersion: "1.3"}, ""},
		{"no files", TLSConfig{Address: ":8443", MinVersion: "1.2"}, "cert_file and server.tls.key_file are required"},
		{"version", TLSConfig{Address: ":8443", CertFile: good, KeyFile: goodKey, MinVersion: "1.1"}, `min_version "1.1"`},
		{"unreadable", TLSConfig{Address: ":8443", CertFile: filepath.Join(dir, "nope"), KeyFile: goodKey, MinVersion: "1.2"}, "no such file"},
		{"not a pair", TLSConfig{Address: ":8443", CertFile: good, KeyFile: otherKey, MinVersion: "1.2"}, "does not match"},
		{"expired", TLSConfig{Address: ":8443", CertFile: old, KeyFile: oldKey, MinVersion: "1.2"}, "expired"},
		{"goroutine driver", TLSConfig{Address: ":8443", CertFile: good, KeyFile: goodKey, MinVersion: "1.2", Driver: "goroutine"}, ""},
		{"driver", TLSConfig{Address: ":8443", CertFile: good, KeyFile: goodKey, MinVersion: "1.2", Driver: "threads"}, `driver "threads"`},
	} {
		errs := tc.tls.validate()
		switch {
		case tc.want == "" && len(errs) > 0:
			t.Errorf("%s: %v", tc.name, errs)
		case tc.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, errs, tc.want)
		}
	}
	c := &Config{Server: ServerConfig{TLS: TLSConfig{Address: ":8443", CertFile: soon, KeyFile: soonKey}}}
	if w := c.tlsWarnings(); len(w) != 1 || !strings.Contains(w[0], "expires in") {
		t.Errorf("expiring certificate: warnings %v", w)
	}
	c.Server.TLS.CertFile, c.Server.TLS.KeyFile = good, goodKey
	if w := c.tlsWarnings(); len(w) != 0 {
		t.Errorf("certificate valid for a year: warnings %v", w)
	}
}

func TestTLSFlags(t *testing.T) {
	f := parseFlags(t, "-tls-address", "127.0.0.1:8443", "-tls-cert", "c.pem", "-tls-key", "k.pem",
		"-tls-min-version", "1.3", "-tls-handshake-timeout", "3s", "-tls-driver", "goroutine")
	var c Config
	if err := f.Apply(&c); err != nil {
		t.Fatal(err)
	}
	want := TLSConfig{Address: "127.0.0.1:8443", CertFile: "c.pem", KeyFile: "k.pem", MinVersion: "1.3", HandshakeTimeout: Duration(3 * time.Second), Driver: "goroutine"}
	if c.Server.TLS != want {
		t.Errorf("got %+v, want %+v", c.Server.TLS, want)
	}
}

// A connection that never sends its ClientHello is closed after the handshake timeout, in its
// serving goroutine (Accept returned at once); the listener keeps serving.
func TestTLSHandshakeDeadline(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "c", time.Hour)
	var cs certStore
	l, err := listenTLS(TLSConfig{Address: "127.0.0.1:0", CertFile: cert, KeyFile: key, MinVersion: "1.2",
		HandshakeTimeout: Duration(200 * time.Millisecond)}, &cs, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Read(make([]byte, 1))
	if err == nil || time.Since(start) > 2*time.Second || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("read on a silent connection: %v after %s", err, time.Since(start))
	}
	c.Close()

	pool := x509.NewCertPool()
	pair, _ := tls.LoadX509KeyPair(cert, key)
	pool.AddCert(pair.Leaf)
	go func() {
		if c, err := l.Accept(); err == nil {
			_, _ = c.Write([]byte("x"))
			c.Close()
		}
	}()
	tc, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if st := tc.ConnectionState(); st.NegotiatedProtocol != "" && st.NegotiatedProtocol != "http/1.1" {
		t.Errorf("ALPN %q", st.NegotiatedProtocol)
	}
}
