package engine

import (
	"crypto/tls"
	"net"
)

// TLSConn is the server side of a TLS client connection served by the goroutine driver (Serve on
// a TLS listener: server.tls.driver goroutine, or no plain listener). It is a tls.Conn whose
// transport is the loop driver's (loopTLSConn, always in socket mode), so a body the exchange moves
// is read as a detached loop-served one is: the socket read ahead 128 KiB at a time from the
// engine's bounded pool while the body moves (bytes read ahead past it are served to the next
// reads), and records decrypted into the copy buffer while another whole one waits (ReadReady).
type TLSConn struct {
	*tls.Conn
	mc loopTLSConn
	rd readyTLS
}

// NewTLSConn returns the server side of TLS over raw with cfg; the handshake runs on first use, as
// tls.Server's does.
func NewTLSConn(raw net.Conn, cfg *tls.Config) *TLSConn {
	t := &TLSConn{mc: loopTLSConn{sock: raw}}
	t.Conn = tls.Server(&t.mc, cfg)
	t.rd.point(t.Conn, raw, &t.mc.ra)
	return t
}

// NetConn returns the socket (transfer.ResetClose resets it).
func (t *TLSConn) NetConn() net.Conn { return t.mc.sock }

// ReadReady reports whether a Read would return at once (transfer.ReadReadier).
func (t *TLSConn) ReadReady() bool { return t.rd.ReadReady() }

func (t *TLSConn) startBody(p *readAheads, body int64) { t.mc.startReadAhead(p, body) }
func (t *TLSConn) endBody(p *readAheads)               { t.mc.stopReadAhead(p) }

// bodyReader is a connection that reads ahead while a body moves (TLSConn, and the types that
// embed it).
type bodyReader interface {
	startBody(p *readAheads, body int64) // body: bytes still to come (≤ 0: not known)
	endBody(p *readAheads)
}
