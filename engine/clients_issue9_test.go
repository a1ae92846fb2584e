//go:build issue9

// Real-client tests of client behaviour the proxy does not handle yet. They are built only with
// `-tags issue9` (CI does not pass it): run `go test -tags issue9 -run 'Issue9' ./engine` to see
// where each stands. When a feature lands, move its tests into clients_jssdk_test.go or
// clients_minio_test.go (untagged) so CI runs them; the rest of this file keeps compiling on its own.
//
// What each needs, and what it answered when written :
//   - TestIssue9JSPutObjectStream: the JS SDK's PutObject of a stream body sends aws-chunked
//     (STREAMING-UNSIGNED-PAYLOAD-TRAILER) with Transfer-Encoding: chunked and no Content-Length —
//     501 "Transfer-Encoding is not supported" today. Not in issue 9's list: it needs its own
//     decision (versitygw accepts that request).

package engine_test

import (
	"testing"
)

// The JS SDK's PutObject of a file stream: aws-chunked, STREAMING-UNSIGNED-PAYLOAD-TRAILER with a
// CRC32 trailer, Transfer-Encoding: chunked instead of Content-Length.
func TestIssue9JSPutObjectStream(t *testing.T) {
	modes(t, func(t *testing.T, p *proxy) {
		jsPutCases(t, p, "stream", 5000, 3<<20+5)
	})
}
