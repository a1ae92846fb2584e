// Package engine is the proxy's data plane: gnet v2 event loops (one per core, SO_REUSEPORT) accept
// client connections, parse request heads with httpparse, and run every request through one
// pipeline:
//
//   - admit (admit.go) is pure — no gnet, no I/O: it routes the six S3 upload operations, checks
//     limits and the payload declaration, authenticates through the bucket's Authenticator, opens
//     the upload id token of a request naming an upload (uploadid.go: 404 NoSuchUpload unless
//     the token was made for this principal, bucket and key), and returns a decision value:
//     refuse, inline, stream, auto-chunk, or await;
//   - decide (await.go): a bucket's Authorizer runs off the loop while the connection waits;
//   - move: an inline body goes upstream from the loop's buffer on a loop-owned upstream connection
//     (upstream_loop.go; TLS to an https endpoint is driven in the loop too, looptls.go); a larger one is detached from gnet and spliced or copied (detach.go,
//     stream.go), or cut into a multipart upload (autochunk.go); every upstream request is signed
//     with the bucket's upstream credentials (sign.go) and sent through one upstream client
//     (upstream_client.go, upstream.go);
//   - finish (finish.go) records the request and keeps or closes the connection.
//
// A browser form upload (PostObject, postobject*.go) is admitted on its head alone and detached:
// its form is read, authenticated and checked off the loop, then its file streamed upstream as a
// PutObject (or auto-chunked) and finished like any other request.
// Tracing (trace.go) hooks into these steps behind Options.Tracer: with none (the default) every
// hook is a nil check.
//
// conn.go holds the connection state machine and its diagram. The same pipeline serves connections
// from any net.Listener (serve.go, one goroutine per connection), and TLS clients join the event
// loops after their handshake, crypto/tls driven in the loop (looptls_server.go); a TLS body that
// detaches is read ahead 128 KiB at a time (tlsreadahead.go, tlsready.go), and the records written to
// an https upstream from a goroutine leave one write per chunk (upstream_tlsbatch.go). Every request that
// is not one of the six operations gets an S3 XML error and nothing is sent upstream, except a CORS
// preflight (OPTIONS), which admit answers from the bucket's CORS rules (cors.go).
//
// engine is the only package that imports gnet. It never imports server: server turns its Config into
// Options. Identity and policy plug in behind the Authenticator and Authorizer interfaces defined in
// identity.go.
package engine
