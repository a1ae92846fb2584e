// Package archtest holds the test that enforces the project's import rules: the leaves httpparse,
// s3sig, transfer, jwtauth, policy, uploadid and proxyproto import no project package, authz/opa and
// authz/openfga none but their shared leaf authz/internal/httpclient, only engine imports gnet, and
// nothing but the command imports server.
package archtest
