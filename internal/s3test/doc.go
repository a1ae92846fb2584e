// Package s3test is the integration-test harness of Mizuchi Uploadr: it runs a real S3 server
// (versitygw v1.8.0, built once into the repository's git-ignored .tools/bin by
// scripts/install-versitygw.sh) on a free loopback port with a fresh data directory and random
// credentials, and runs the real clients (aws cli, boto3, and the AWS SDK for JavaScript v3 under
// node, installed by scripts/install-node-clients.sh into the git-ignored .tools/node) as
// subprocesses with a clean AWS environment. For the authorization tests it also runs the real
// policy servers, each on free loopback ports and built once into .tools/bin the same way: OPA
// v1.22.3 (StartOPA, with a Rego policy; Stop and Restart make an outage) and OpenFGA v1.22.1
// (StartOpenFGA, in-memory datastore, every listener on loopback; CreateStore, WriteModel,
// WriteTuples seed it).
//
// Tests call Start (or StartMain from TestMain), then talk to Server.Endpoint directly or through
// the proxy under test, and check the outcome on the server with the Server helpers (GetObject,
// ObjectExists, ListKeys, ListMultipartUploads, GetObjectTagging), which use aws-sdk-go-v2 with
// retries off. Nothing in this package skips a test: a missing server binary is built, and a missing
// client or a failed start fails the test.
//
// Every function is safe for concurrent use; each Server is independent (own process, port, data
// directory and keys), so parallel tests and parallel test binaries do not interfere.
package s3test
