package testca

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"
)

// handshake serves cert on loopback and dials it as serverName trusting roots; it returns the
// client's handshake error.
func handshake(t *testing.T, cert tls.Certificate, roots *x509.CertPool, serverName string) error {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake()
		_, _ = io.Copy(io.Discard, c)
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: serverName})
	if err != nil {
		return err
	}
	return c.Close()
}

func TestIssuedCertificateVerifies(t *testing.T) {
	ca, err := New(Spec{CommonName: "testca CA", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(Spec{CommonName: "127.0.0.1", Validity: time.Hour, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || len(ca.Cert.ExtKeyUsage) != 0 || ca.Cert.SerialNumber.Int64() != 1 || leaf.Cert.SerialNumber.Int64() != 2 {
		t.Errorf("CA: IsCA %v, EKU %v, serial %v; leaf serial %v; want a CA without EKU, serials 1 and 2",
			ca.Cert.IsCA, ca.Cert.ExtKeyUsage, ca.Cert.SerialNumber, leaf.Cert.SerialNumber)
	}
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if err := handshake(t, leaf.TLSCertificate(), ca.Pool(), name); err != nil {
			t.Errorf("handshake as %s: %v", name, err)
		}
	}
	if err := handshake(t, leaf.TLSCertificate(), ca.Pool(), "example.com"); err == nil {
		t.Error("handshake as example.com succeeded; want a name mismatch")
	}
	other, err := New(Spec{CommonName: "other CA", Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, leaf.TLSCertificate(), other.Pool(), "localhost"); err == nil {
		t.Error("handshake trusting another CA succeeded; want an unknown authority")
	}
	pair, err := tls.X509KeyPair(leaf.CertPEM(), leaf.KeyPEM())
	if err != nil {
		t.Fatalf("the PEM pair does not load: %v", err)
	}
	if err := handshake(t, pair, ca.Pool(), "localhost"); err != nil {
		t.Errorf("handshake with the PEM pair: %v", err)
	}
}

func TestSelfSignedServerCA(t *testing.T) {
	ca, err := New(Spec{CommonName: "self", Validity: time.Hour, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, ca.TLSCertificate(), ca.Pool(), "127.0.0.1"); err != nil {
		t.Errorf("a CA with an IP SAN serving itself: %v", err)
	}
}
