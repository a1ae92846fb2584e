// Package testca mints throwaway ECDSA P-256 certificates for tests and benchmarks on loopback: a
// certificate authority made for one run, and server certificates it issues. Nothing here is fit
// for a real deployment (keys live in memory and in files the caller writes, validity is short).
package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"time"
)

// Spec shapes a certificate. Every certificate is valid from an hour before it is made (clock
// skew) until Validity after it is made.
type Spec struct {
	// Serial is the serial number; 0 means 1 for New and 2 for Issue.
	Serial int64
	// CommonName is the subject's CN.
	CommonName string
	// Validity is how long after now the certificate stays valid.
	Validity time.Duration
	// IPs and DNSNames are the subject alternative names. On a CA (New), any of them also makes
	// the CA a server certificate (extended key usage serverAuth): one self-signed certificate
	// that a server presents and its clients trust.
	IPs      []net.IP
	DNSNames []string
}

// Cert is a certificate and its private key.
type Cert struct {
	Cert   *x509.Certificate
	DER    []byte // Cert, DER encoded
	Key    *ecdsa.PrivateKey
	KeyDER []byte // Key, PKCS#8
}

// New makes a self-signed CA (key usages certSign and digitalSignature).
func New(s Spec) (*Cert, error) {
	if s.Serial == 0 {
		s.Serial = 1
	}
	tmpl := template(s)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	if len(s.IPs) == 0 && len(s.DNSNames) == 0 {
		tmpl.ExtKeyUsage = nil
	}
	return mint(tmpl, nil)
}

// Issue makes a server certificate (key usage digitalSignature, extended key usage serverAuth)
// signed by ca.
func (ca *Cert) Issue(s Spec) (*Cert, error) {
	if s.Serial == 0 {
		s.Serial = 2
	}
	return mint(template(s), ca)
}

func template(s Spec) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: big.NewInt(s.Serial), Subject: pkix.Name{CommonName: s.CommonName},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(s.Validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: s.IPs, DNSNames: s.DNSNames,
	}
}

// mint makes a key and signs tmpl with parent's key (nil: self-signed).
func mint(tmpl *x509.Certificate, parent *Cert) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Cert{Cert: cert, DER: der, Key: key, KeyDER: keyDER}, nil
}

// CertPEM is the certificate as a PEM block.
func (c *Cert) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
}

// KeyPEM is the private key as a PEM block (PKCS#8).
func (c *Cert) KeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: c.KeyDER})
}

// Pool is a certificate pool trusting c alone.
func (c *Cert) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Cert)
	return p
}

// TLSCertificate is c for a crypto/tls server (without its issuer's certificate).
func (c *Cert) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{c.DER}, PrivateKey: c.Key}
}
