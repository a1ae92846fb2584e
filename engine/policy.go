package engine

import (
	"github.com/mizuchi/uploadr/policy"
	"github.com/mizuchi/uploadr/s3sig"
)

// Bucket policy (Bucket.Policy): upload rules checked in admit once the principal is known, on
// the head, before 100 Continue and before any body byte is read. The rules themselves live in
// the policy leaf; this file fills its Input from the head and maps a violation to an S3 error.
// A rule set's no_overwrite comes back as decision.noOverwrite: buildUpstreamHead and the
// auto-chunked Complete then send If-None-Match: * upstream, signed like every other header.

// policyOps maps the engine's operations to the policy's.
var policyOps = [numOps]policy.Op{
	opPutObject:               policy.OpPutObject,
	opCreateMultipartUpload:   policy.OpCreateMultipartUpload,
	opUploadPart:              policy.OpUploadPart,
	opCompleteMultipartUpload: policy.OpCompleteMultipartUpload,
	opAbortMultipartUpload:    policy.OpAbortMultipartUpload,
	opListParts:               policy.OpListParts,
	opPostObject:              policy.OpPutObject, // checked off the loop, once the form is read
}

// policyErrors is the answer to each violated rule (nil: allowed).
var policyErrors = [...]*s3Error{
	policy.RuleNone:          nil,
	policy.RuleNoMatch:       errPolicyNoMatch,
	policy.RuleKeyTemplate:   errPolicyKey,
	policy.RuleMaxObjectSize: errPolicySize,
	policy.RuleContentType:   errPolicyContentType,
	policy.RuleStorageClass:  errPolicyStorageClass,
	policy.RuleChecksum:      errPolicyChecksum,
	policy.RuleMaxParts:      errPolicyMaxParts,
}

// checkPolicy decides on an authenticated request with the bucket's policy: nil to go on (and
// d.noOverwrite set when the upstream write must be conditional), or the error to answer. It is
// pure and allocates nothing: the key is decoded into a stack buffer (routing refused keys over
// S3's 1024 bytes) and every other input aliases the head.
func checkPolicy(pol *policy.Policy, h *Head, d *decision) *s3Error {
	rt := &d.rt
	var kb [1024]byte
	key, err := s3sig.AppendPercentDecode(kb[:0], h.Path()[rt.keyStart:rt.keyEnd])
	if err != nil {
		return errInvalidURI
	}
	in := policy.Input{Op: policyOps[rt.op], Key: key, Size: d.size, PartNumber: rt.partNum,
		Principal: d.principal.ID, Claims: d.principal.Claims}
	req, buf := h.req, h.buf
	for i := 0; i < req.NumHeaders; i++ {
		f := req.Headers[i]
		name, value := f.Name.Bytes(buf), f.Value.Bytes(buf)
		switch {
		case len(name) == len("content-type") && equalFoldASCII(name, "content-type"):
			in.ContentType = value
		case len(name) == len("x-amz-storage-class") && equalFoldASCII(name, "x-amz-storage-class"):
			in.StorageClass = value
		default:
			in.Checksums |= policy.ChecksumsOf(name, value)
		}
	}
	r := pol.Check(&in)
	d.noOverwrite = r.NoOverwrite
	return policyErrors[r.Violated]
}
