package policy

import "errors"

// Compile's sentinels. Its error wraps the sentinel of the first problem (compare with errors.Is)
// and lists every problem, each naming its rule set and key.
var (
	// ErrTemplate: a key_template is malformed (unbalanced braces, an unknown placeholder).
	ErrTemplate = errors.New("policy: invalid key template")
	// ErrContentType: an allowed_content_types entry is not type/subtype, type/* or */*.
	ErrContentType = errors.New("policy: invalid content type pattern")
	// ErrChecksum: a require_checksum entry names no known algorithm.
	ErrChecksum = errors.New("policy: unknown checksum algorithm")
	// ErrStorageClass: an allowed_storage_classes entry is not an S3 storage class name.
	ErrStorageClass = errors.New("policy: invalid storage class")
	// ErrLimit: max_object_size or max_parts is out of range.
	ErrLimit = errors.New("policy: limit out of range")
	// ErrWhen: a when condition is malformed, or a rule set can never apply.
	ErrWhen = errors.New("policy: invalid when")
)
