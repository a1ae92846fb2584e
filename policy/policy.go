package policy

import (
	"fmt"
	"strings"
)

// A Policy is a list of rule sets; the first whose When matches the request's principal applies,
// and a request no rule set matches is refused (RuleNoMatch). A rule set without When matches
// every principal, so it belongs last, as the default. Within the chosen set every rule must pass.
// Which operations each rule applies to:
//
//	rule                     PutObject  CreateMPU  UploadPart  Complete  Abort  ListParts
//	key_template             yes        yes        yes         yes       yes    yes
//	max_object_size          object     -          each part   -         -      -
//	allowed_content_types    yes        yes        -           -         -      -
//	allowed_storage_classes  yes        yes        -           -         -      -
//	require_checksum         yes        -          yes         -         -      -
//	max_parts                -          -          partNumber  -         -      -
//	no_overwrite             yes        -          -           yes       -      -
//
// no_overwrite is not a check: Result.NoOverwrite asks the caller to make the upstream write
// conditional (If-None-Match: *), so the upstream refuses to replace an object (412).
//
// A Policy is immutable once compiled and safe for concurrent use.
type Policy struct {
	sets []ruleSet
}

// RuleSet is one rule set as configured. Zero values disable a rule.
type RuleSet struct {
	// When selects the principals the set applies to; the zero When matches all.
	When When
	// MaxObjectSize bounds the declared size in bytes: a PutObject's object (Content-Length, or
	// x-amz-decoded-content-length for aws-chunked bodies) and each UploadPart's part. 0 = none.
	MaxObjectSize int64
	// AllowedContentTypes are media types ("application/pdf"), type wildcards ("image/*") or
	// "*/*", compared case-insensitively with the Content-Type's media type (parameters after ';'
	// ignored). A request without Content-Type matches none. Empty = any.
	AllowedContentTypes []string
	// KeyTemplate is the pattern the decoded object key must match: literal bytes, '*' (any run of
	// bytes, '/' included) and placeholders {principal}, {jwt.sub} and {jwt.<claim>} (a string
	// claim). A placeholder whose value is missing, empty or holds '/' matches nothing, so one
	// principal can never reach into another's prefix. "" = any key.
	KeyTemplate string
	// NoOverwrite makes PutObject and CompleteMultipartUpload conditional (If-None-Match: *).
	NoOverwrite bool
	// RequireChecksum names digests (crc32, crc32c, crc64nvme, sha1, sha256, md5) of which at
	// least one must come with a PutObject or UploadPart body. Empty = none required.
	RequireChecksum []string
	// AllowedStorageClasses are the x-amz-storage-class values allowed (exact, e.g. STANDARD); a
	// request without the header is STANDARD. Empty = any.
	AllowedStorageClasses []string
	// MaxParts bounds UploadPart's partNumber (1..10000). 0 = S3's 10,000.
	MaxParts int
}

// When selects principals. Every condition given must hold.
type When struct {
	// Principal is the principal id (SigV4 access key id, JWT subject), compared exactly.
	Principal string
	// Claims maps claim names to a value: the claim must be that string, or a list holding it.
	Claims map[string]string
}

// Op is the S3 operation of a request.
type Op uint8

// The operations an upload proxy serves.
const (
	OpPutObject Op = iota + 1
	OpCreateMultipartUpload
	OpUploadPart
	OpCompleteMultipartUpload
	OpAbortMultipartUpload
	OpListParts
)

// Input is what Check decides on, filled by the caller from the request head. Slices are
// borrowed: Check does not keep them.
type Input struct {
	Op  Op
	Key []byte // the object key, percent-decoded
	// Size is the declared size: the object's for PutObject, the part's for UploadPart.
	Size       int64
	PartNumber int    // UploadPart; 0 otherwise
	Principal  string // the principal id; "" when anonymous
	// Claims are the principal's verified claims (JWT); nil when there are none. Read only.
	Claims       map[string]any
	ContentType  []byte    // the Content-Type header's value; nil when absent
	StorageClass []byte    // x-amz-storage-class; nil when absent (STANDARD)
	Checksums    Checksums // digests that come with the body (see ChecksumsOf)
}

// Rule names a rule; a Result's Violated is the one that failed.
type Rule uint8

// The rules, by their configuration key.
const (
	RuleNone Rule = iota // nothing failed: the request may proceed
	RuleNoMatch
	RuleKeyTemplate
	RuleMaxObjectSize
	RuleContentType
	RuleStorageClass
	RuleChecksum
	RuleMaxParts
)

var ruleNames = [...]string{"", "when", "key_template", "max_object_size", "allowed_content_types",
	"allowed_storage_classes", "require_checksum", "max_parts"}

// String is the rule's configuration key ("when" for RuleNoMatch, "" for RuleNone).
func (r Rule) String() string { return ruleNames[r] }

// Result is Check's answer.
type Result struct {
	// Violated is the first rule that failed, RuleNone when the request may proceed.
	Violated Rule
	// Set is the index of the rule set that applied, -1 when none did.
	Set int
	// NoOverwrite: make the upstream write conditional (If-None-Match: *). Only ever set for
	// PutObject and CompleteMultipartUpload.
	NoOverwrite bool
}

// ruleSet is a compiled RuleSet.
type ruleSet struct {
	when         When
	maxSize      int64
	contentTypes []string // lowercased patterns
	key          template
	hasKey       bool
	noOverwrite  bool
	checksums    Checksums
	classes      []string
	maxParts     int
}

// Compile checks and prepares rule sets. Its error names every problem (errors wrapping this
// package's sentinels). Compile(nil) is a Policy with no rule set, which refuses everything: pass
// no Policy at all for "no rules".
func Compile(sets []RuleSet) (*Policy, error) {
	p := &Policy{}
	var errs []string
	var first error
	fail := func(i int, sentinel error, format string, args ...any) {
		if first == nil {
			first = sentinel
		}
		errs = append(errs, fmt.Sprintf("rule set %d: ", i)+fmt.Sprintf(format, args...))
	}
	for i, s := range sets {
		c := ruleSet{when: When{Principal: s.When.Principal}, maxSize: s.MaxObjectSize, noOverwrite: s.NoOverwrite, maxParts: s.MaxParts}
		if i > 0 && sets[i-1].When.isZero() {
			fail(i, ErrWhen, "follows a rule set without when, so it never applies")
		}
		for name, v := range s.When.Claims {
			if name == "" {
				fail(i, ErrWhen, "when.claim: a claim name is empty")
			}
			if c.when.Claims == nil {
				c.when.Claims = map[string]string{}
			}
			c.when.Claims[name] = v // a copy: the Policy stays immutable
		}
		if s.MaxObjectSize < 0 {
			fail(i, ErrLimit, "max_object_size %d: want >= 0", s.MaxObjectSize)
		}
		if s.MaxParts < 0 || s.MaxParts > 10000 {
			fail(i, ErrLimit, "max_parts %d: want 1..10000 (0 = 10000)", s.MaxParts)
		}
		for _, ct := range s.AllowedContentTypes {
			if !validMediaPattern(ct) {
				fail(i, ErrContentType, "allowed_content_types %q: want type/subtype, type/* or */*", ct)
				continue
			}
			c.contentTypes = append(c.contentTypes, strings.ToLower(ct))
		}
		for _, name := range s.RequireChecksum {
			bit, ok := ParseChecksum(name)
			if !ok {
				fail(i, ErrChecksum, "require_checksum %q: want crc32, crc32c, crc64nvme, sha1, sha256 or md5", name)
			}
			c.checksums |= bit
		}
		for _, sc := range s.AllowedStorageClasses {
			if !validStorageClass(sc) {
				fail(i, ErrStorageClass, "allowed_storage_classes %q: want an S3 storage class such as STANDARD (A-Z, 0-9, '_')", sc)
			}
			c.classes = append(c.classes, sc)
		}
		if s.KeyTemplate != "" {
			t, err := parseTemplate(s.KeyTemplate)
			if err != nil {
				fail(i, ErrTemplate, "key_template %q: %v", s.KeyTemplate, err)
			}
			c.key, c.hasKey = t, true
		}
		p.sets = append(p.sets, c)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %s", first, strings.Join(errs, "; "))
	}
	return p, nil
}

func (w When) isZero() bool { return w.Principal == "" && len(w.Claims) == 0 }

// Check decides on in. It allocates nothing and is safe for concurrent use.
func (p *Policy) Check(in *Input) Result {
	for i := range p.sets {
		s := &p.sets[i]
		if !s.when.matches(in) {
			continue
		}
		r := Result{Set: i, Violated: s.check(in)}
		r.NoOverwrite = s.noOverwrite && r.Violated == RuleNone &&
			(in.Op == OpPutObject || in.Op == OpCompleteMultipartUpload)
		return r
	}
	return Result{Violated: RuleNoMatch, Set: -1}
}

func (s *ruleSet) check(in *Input) Rule {
	if s.hasKey && !s.key.match(in.Key, in) {
		return RuleKeyTemplate
	}
	switch in.Op {
	case OpPutObject, OpCreateMultipartUpload:
		if in.Op == OpPutObject && s.maxSize > 0 && in.Size > s.maxSize {
			return RuleMaxObjectSize
		}
		if len(s.contentTypes) > 0 && !matchMediaType(s.contentTypes, in.ContentType) {
			return RuleContentType
		}
		if len(s.classes) > 0 && !matchClass(s.classes, in.StorageClass) {
			return RuleStorageClass
		}
		if in.Op == OpPutObject && s.checksums != 0 && s.checksums&in.Checksums == 0 {
			return RuleChecksum
		}
	case OpUploadPart:
		if s.maxSize > 0 && in.Size > s.maxSize {
			return RuleMaxObjectSize
		}
		if s.checksums != 0 && s.checksums&in.Checksums == 0 {
			return RuleChecksum
		}
		if s.maxParts > 0 && in.PartNumber > s.maxParts {
			return RuleMaxParts
		}
	}
	return RuleNone
}

// matches reports whether the principal in in is one w selects.
func (w *When) matches(in *Input) bool {
	if w.Principal != "" && w.Principal != in.Principal {
		return false
	}
	for name, want := range w.Claims {
		if !claimHas(in.Claims[name], want) {
			return false
		}
	}
	return true
}

// claimHas reports whether a claim's value is want, or a list (JSON array) holding want.
func claimHas(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case []string:
		for _, s := range v {
			if s == want {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

func matchClass(classes []string, got []byte) bool {
	if len(got) == 0 {
		got = standard
	}
	for _, c := range classes {
		if c == string(got) {
			return true
		}
	}
	return false
}

var standard = []byte("STANDARD")

// validStorageClass: S3's storage class names are upper-case letters, digits and '_'.
func validStorageClass(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
