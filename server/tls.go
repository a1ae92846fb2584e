package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/mizuchi/uploadr/engine"
)

// TLSConfig is server.tls: an https listener for clients beside the plain one. It serves the same
// pipeline (engine.ServeTLS on the event loops, or engine.Serve, one goroutine per connection);
// its bodies take the copy path.
type TLSConfig struct {
	Address    string `yaml:"address"`     // https listen address; empty = no https listener
	CertFile   string `yaml:"cert_file"`   // PEM certificate chain, leaf first
	KeyFile    string `yaml:"key_file"`    // PEM private key
	MinVersion string `yaml:"min_version"` // "1.2" (default) or "1.3"
	// HandshakeTimeout bounds each connection's TLS handshake; default 10s.
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	// Driver serves the connections after the handshake: "loop" (default: the event loops, as
	// plain connections; large bodies detach to a goroutine) or "goroutine" (one per connection).
	Driver string `yaml:"driver"`
}

// Defaults of server.tls.
const (
	DefaultTLSMinVersion       = "1.2"
	DefaultTLSHandshakeTimeout = 10 * time.Second
	DefaultTLSDriver           = "loop"
	// tlsExpiryWarning: -check warns about a certificate that expires within this.
	tlsExpiryWarning = 30 * 24 * time.Hour
)

func tlsVersion(s string) (uint16, error) {
	switch s {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("server.tls.min_version %q: want 1.2 or 1.3", s)
}

// loadKeyPair reads and checks a certificate and key: readable, a matching pair, not expired.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls: %w", err)
	}
	if c.Leaf == nil {
		return nil, errors.New("server.tls: no certificate")
	}
	if now := time.Now(); now.After(c.Leaf.NotAfter) {
		return nil, fmt.Errorf("server.tls: certificate %s expired at %s", certFile, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	} else if now.Before(c.Leaf.NotBefore) {
		return nil, fmt.Errorf("server.tls: certificate %s is not valid before %s", certFile, c.Leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &c, nil
}

func (t TLSConfig) validate() []error {
	if t.Address == "" {
		return nil
	}
	var errs []error
	if _, err := tlsVersion(t.MinVersion); err != nil {
		errs = append(errs, err)
	}
	switch t.Driver {
	case "", "loop", "goroutine":
	default:
		errs = append(errs, fmt.Errorf("server.tls.driver %q: want loop or goroutine", t.Driver))
	}
	if t.HandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("server.tls.handshake_timeout %s: must be >= 0", t.HandshakeTimeout))
	}
	if t.CertFile == "" || t.KeyFile == "" {
		return append(errs, errors.New("server.tls.address is set: server.tls.cert_file and server.tls.key_file are required"))
	}
	if _, err := loadKeyPair(t.CertFile, t.KeyFile); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// tlsWarnings describes a certificate that expires soon (-check).
func (c *Config) tlsWarnings() []string {
	t := c.Server.TLS
	if t.Address == "" {
		return nil
	}
	cert, err := loadKeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil // Validate reports it
	}
	if left := time.Until(cert.Leaf.NotAfter); left < tlsExpiryWarning {
		return []string{fmt.Sprintf("server.tls: certificate %s expires in %s (at %s)", t.CertFile,
			left.Round(time.Minute), cert.Leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	return nil
}

// certStore holds the served certificate; SIGHUP swaps it (handshakes after the swap see the new
// one, connections already open are untouched).
type certStore struct {
	cert atomic.Pointer[tls.Certificate]
}

func (cs *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cs.cert.Load(), nil }

// tlsListener is a TLS listener whose connections handshake in their serving goroutine (on the
// first Read), each within a deadline: Accept never waits on a client.
type tlsListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	hc := &handshakeConn{TLSConn: engine.NewTLSConn(c, l.cfg), timeout: l.timeout}
	hc.pp, _ = c.(proxyHeaderReader)
	return hc, nil
}

// proxyHeaderReader is engine.ProxyConn: the PROXY header under TLS.
type proxyHeaderReader interface{ ReadProxyHeader() error }

// handshakeConn runs the handshake before the first Read or Write, bounded by timeout.
type handshakeConn struct {
	*engine.TLSConn
	timeout time.Duration
	done    atomic.Bool
	pp      proxyHeaderReader // the raw connection reads a PROXY header first; nil = none
}

// ReadProxyHeader reads the raw connection's PROXY header (engine.Serve calls it before it takes
// RemoteAddr, which is then the client's); without one it does nothing.
func (c *handshakeConn) ReadProxyHeader() error {
	if c.pp == nil {
		return nil
	}
	return c.pp.ReadProxyHeader()
}

func (c *handshakeConn) handshake() error {
	if c.done.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		return err
	}
	c.done.Store(true)
	return nil
}

func (c *handshakeConn) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.TLSConn.Read(p)
}

func (c *handshakeConn) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.TLSConn.Write(p)
}

// listenTLS opens the https listener of t with the certificate store cs (loaded here); reusePort
// as in listenTCP.
// wrap, when set, wraps the TCP listener under TLS (engine.ProxyListener: the PROXY header comes
// before the handshake), with the handshake timeout.
func listenTLS(t TLSConfig, cs *certStore, reusePort bool, wrap func(net.Listener, time.Duration) net.Listener) (net.Listener, error) {
	cert, err := loadKeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, err
	}
	minV, err := tlsVersion(t.MinVersion)
	if err != nil {
		return nil, err
	}
	cs.cert.Store(cert)
	l, err := listenTCP(t.Address, reusePort)
	if err != nil {
		return nil, fmt.Errorf("https listener %s: %w", t.Address, err)
	}
	timeout := time.Duration(t.HandshakeTimeout)
	if timeout <= 0 {
		timeout = DefaultTLSHandshakeTimeout
	}
	if wrap != nil {
		l = wrap(l, timeout)
	}
	cfg := &tls.Config{
		MinVersion:     minV,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: cs.get,
		// Session tickets are on (the default): clients resume sessions.
	}
	return &tlsListener{Listener: l, cfg: cfg, timeout: timeout}, nil
}

// ReloadCertificate reads server.tls's certificate and key files again (SIGHUP): handshakes after
// it present the new pair, open connections are untouched. A pair that does not load (unreadable,
// not a pair, expired) keeps the served one; the error is logged and returned. Without an https
// listener it does nothing.
func (s *Server) ReloadCertificate() error {
	s.mu.Lock()
	l, t := s.tlsL, s.tlsCfg // the paths are fixed at start, like the listener
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	cert, err := loadKeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		s.log.Error("TLS certificate reload failed; the served certificate stays", "err", err)
		return err
	}
	s.certs.cert.Store(cert)
	s.log.Info("TLS certificate reloaded", "cert_file", t.CertFile, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// serveTLS serves the https listener l (listenTLS's) with the configured driver.
func (s *Server) serveTLS(l net.Listener, driver string) error {
	if tl, ok := l.(*tlsListener); ok && driver != "goroutine" {
		return s.eng.ServeTLS(tl.Listener, tl.cfg, tl.timeout)
	}
	return s.eng.Serve(l)
}

// TLSAddr returns the https listener's address once Run opened it; "" without one.
func (s *Server) TLSAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tlsL == nil {
		return ""
	}
	return s.tlsL.Addr().String()
}
