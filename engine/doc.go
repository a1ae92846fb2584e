// Package engine is the proxy's data plane: gnet v2 event loops (one per core, SO_REUSEPORT) accept
// client connections, parse request heads with httpparse, route the six S3 upload operations,
// authenticate clients with s3sig, re-sign each request for the upstream S3 server and move the body
// upstream — from the loop's buffer when it arrived with the head, otherwise by detaching the socket
// from gnet and splicing it with transfer. Every other request gets an S3 XML error and nothing is
// sent upstream.
//
// engine is the only package that imports gnet. It never imports server: server turns its Config into
// Options.
package engine
