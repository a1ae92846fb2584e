package engine

import (
	"context"

	"github.com/mizuchi/uploadr/s3sig"
)

// PartSizeFor exposes the auto-chunking part-size rule to tests.
var PartSizeFor = partSizeFor

// AbortUploadRetrying calls abortUploadRetrying for the object key of the client-facing bucket
// (key and uploadID unencoded, as S3 clients see them).
func (e *Engine) AbortUploadRetrying(bucket, key, uploadID string, reqID [16]byte) {
	e.AbortUploadRetryingTraced(bucket, key, uploadID, reqID, nil)
}

// AbortUploadRetryingTraced is AbortUploadRetrying for a failed request whose span is parent.
func (e *Engine) AbortUploadRetryingTraced(bucket, key, uploadID string, reqID [16]byte, parent Span) {
	b := e.lookupBucket([]byte(bucket))
	path := append([]byte("/"+b.up.Bucket+"/"), s3sig.AppendURIEncode(nil, []byte(key), true)...)
	e.abortUploadRetrying(b, path, s3sig.AppendURIEncode(nil, []byte(uploadID), false), reqID, parent)
}

// FinishAborts exposes finishAborts (what Engine.Shutdown calls).
func (e *Engine) FinishAborts(ctx context.Context) error { return e.finishAborts(ctx) }

// SetDrainingForTest sets the draining flag alone, without retiring the listeners: a connection
// accepted now is one the loops accepted in the moment between a drain's start and the retire.
func (e *Engine) SetDrainingForTest(v bool) { e.draining.Store(v) }
