package server

import (
	"errors"
	"flag"
	"strings"
)

// policyFlags are the -policy-* flags: one rule set for the bucket of a config-less start (with
// -config, policies are written in the file, per bucket).
type policyFlags struct {
	maxSize                 sizeFlag
	keyTemplate             string
	noOverwrite             bool
	maxParts                int
	types, checksums, class listFlag
}

// registerPolicyFlags defines the -policy-* flags on fs.
func (f *Flags) registerPolicyFlags(fs *flag.FlagSet) {
	p := &f.pol
	p.maxSize = newSize("0")
	const cl = "config-less start, bucket policy: "
	fs.Var(&p.maxSize, "policy-max-object-size", cl+"largest object (PutObject) or part (UploadPart) `size`; 0 = no limit")
	fs.Var(&p.types, "policy-content-type", cl+"allowed Content-Type `pattern` (type/subtype, type/* or */*); repeatable")
	fs.StringVar(&p.keyTemplate, "policy-key-template", "", cl+"`template` every key must match, e.g. users/{principal}/*")
	fs.BoolVar(&p.noOverwrite, "policy-no-overwrite", false, cl+"send If-None-Match: * upstream on PutObject and Complete")
	fs.Var(&p.checksums, "policy-require-checksum", cl+"digest `algorithm` (crc32, crc32c, crc64nvme, sha1, sha256, md5) of which one must come with a body; repeatable")
	fs.Var(&p.class, "policy-storage-class", cl+"allowed x-amz-storage-class `name` (none sent = STANDARD); repeatable")
	fs.IntVar(&p.maxParts, "policy-max-parts", 0, cl+"highest UploadPart `partNumber`, 1..10000; 0 = 10000")
}

// policySet reports whether any -policy-* flag was given.
func (f *Flags) policySet() bool {
	found := false
	f.fs.Visit(func(fl *flag.Flag) { found = found || strings.HasPrefix(fl.Name, "policy-") })
	return found
}

// errPolicyFlagsWithConfig: the -policy-* flags describe the config-less bucket only.
var errPolicyFlagsWithConfig = errors.New("-policy-* flags configure the bucket of a config-less start; with -config, write policy in the file")

// policyConfig is the rule set of the -policy-* flags; nil when none was given.
func (f *Flags) policyConfig() PolicyConfig {
	if !f.policySet() {
		return nil
	}
	p := &f.pol
	return PolicyConfig{{
		MaxObjectSize:         ByteSize(p.maxSize.v),
		AllowedContentTypes:   append([]string(nil), p.types...),
		KeyTemplate:           p.keyTemplate,
		NoOverwrite:           p.noOverwrite,
		RequireChecksum:       append([]string(nil), p.checksums...),
		AllowedStorageClasses: append([]string(nil), p.class...),
		MaxParts:              p.maxParts,
	}}
}
