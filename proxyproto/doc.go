// Package proxyproto parses the PROXY protocol header (versions 1 and 2) that an L4 load balancer
// (HAProxy send-proxy / send-proxy-v2, AWS NLB, ...) writes at the start of a TCP connection to
// tell the server the client's address.
//
// Parse works on the bytes the caller has buffered and never keeps them: it returns ErrNeedMore
// until the header is whole, then the header's length so the caller drops exactly that many bytes
// (what follows — an HTTP request, a TLS ClientHello — belongs to the next layer). It allocates
// nothing; addresses come back as netip.AddrPort values. It is strict: anything the specification
// does not allow is an error, and a header longer than the specification's bound (v1) or MaxV2Len
// (v2) is refused before it is whole.
//
// The specification: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt
package proxyproto
