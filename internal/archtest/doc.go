// Package archtest holds the test that enforces the project's import rules: the leaves httpparse,
// s3sig, transfer, jwtauth, policy, authz/opa and authz/openfga import no project package, only engine
// imports gnet, and nothing but the command imports server.
package archtest
