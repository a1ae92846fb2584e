package server

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/policy"
)

const policyBucket = `buckets:
  - name: a
    s3: {bucket: b, endpoint: "http://x:1", access_key: k, secret_key: s}
    auth: {sigv4: {credentials: [{access_key: AKID, secret_key: sk}]}}
`

// One rule set written as a mapping, as the README's example, reaches the engine compiled.
func TestPolicyMapping(t *testing.T) {
	y := policyBucket + `    policy:
      max_object_size: 100MiB
      allowed_content_types: ["image/*", "application/pdf"]
      key_template: "users/{principal}/*"
      no_overwrite: true
      require_checksum: [crc32c, sha256]
      allowed_storage_classes: [STANDARD]
      max_parts: 1000
`
	c, err := ParseConfig([]byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := PolicyRuleConfig{MaxObjectSize: 100 << 20, AllowedContentTypes: []string{"image/*", "application/pdf"},
		KeyTemplate: "users/{principal}/*", NoOverwrite: true, RequireChecksum: []string{"crc32c", "sha256"},
		AllowedStorageClasses: []string{"STANDARD"}, MaxParts: 1000}
	if p := c.Buckets[0].Policy; len(p) != 1 || p[0].KeyTemplate != want.KeyTemplate || p[0].MaxObjectSize != want.MaxObjectSize ||
		!p[0].NoOverwrite || p[0].MaxParts != 1000 || len(p[0].RequireChecksum) != 2 || len(p[0].AllowedContentTypes) != 2 {
		t.Fatalf("policy = %+v; want [%+v]", p, want)
	}
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pol := o.Buckets[0].Policy
	if pol == nil {
		t.Fatal("engine bucket has no policy")
	}
	in := policy.Input{Op: policy.OpPutObject, Key: []byte("users/AKID/a.png"), Principal: "AKID", Size: 100 << 20,
		ContentType: []byte("image/png"), Checksums: policy.SHA256}
	if r := pol.Check(&in); r.Violated != policy.RuleNone || !r.NoOverwrite {
		t.Errorf("allowed put: %+v", r)
	}
	in.Size++
	if r := pol.Check(&in); r.Violated != policy.RuleMaxObjectSize {
		t.Errorf("put over 100MiB: %+v", r)
	}
}

// A list of rule sets with when: first match wins; a bucket without policy has none.
func TestPolicyList(t *testing.T) {
	y := policyBucket + `    policy:
      - when: {claim: {group: admins}}
      - when: {principal: AKIDBOT}
        key_template: "bots/*"
      - key_template: "users/{jwt.sub}/*"
        max_parts: 10
  - name: c
    s3: {bucket: b, endpoint: "http://x:1", access_key: k, secret_key: s}
    auth: none
`
	c, err := ParseConfig([]byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Buckets[1].Policy != nil {
		t.Error("bucket without policy got one")
	}
	pol := o.Buckets[0].Policy
	for _, tc := range []struct {
		in   policy.Input
		want policy.Rule
		set  int
	}{
		{policy.Input{Op: policy.OpPutObject, Key: []byte("x"), Claims: map[string]any{"group": "admins"}}, policy.RuleNone, 0},
		{policy.Input{Op: policy.OpPutObject, Key: []byte("bots/x"), Principal: "AKIDBOT"}, policy.RuleNone, 1},
		{policy.Input{Op: policy.OpPutObject, Key: []byte("users/u1/x"), Principal: "u1", Claims: map[string]any{"sub": "u1"}}, policy.RuleNone, 2},
		{policy.Input{Op: policy.OpPutObject, Key: []byte("users/u2/x"), Principal: "u1", Claims: map[string]any{"sub": "u1"}}, policy.RuleKeyTemplate, 2},
	} {
		if r := pol.Check(&tc.in); r.Violated != tc.want || r.Set != tc.set {
			t.Errorf("%s by %q: got %v in set %d; want %v in set %d", tc.in.Key, tc.in.Principal, r.Violated, r.Set, tc.want, tc.set)
		}
	}
}

// Unknown keys are found in both forms, with their line; bad values are named by -check
// (Validate), every one of them.
func TestPolicyErrors(t *testing.T) {
	for _, y := range []string{
		policyBucket + "    policy:\n      max_size: 1MiB\n",
		policyBucket + "    policy:\n      - when: {principal: x}\n      - max_size: 1MiB\n",
	} {
		_, err := ParseConfig([]byte(y), env(nil))
		if err == nil || !strings.Contains(err.Error(), "max_size") || !strings.Contains(err.Error(), "line ") ||
			!strings.Contains(err.Error(), "max_object_size") {
			t.Errorf("unknown policy key: %v", err)
		}
	}
	if _, err := ParseConfig([]byte(policyBucket+"    policy:\n      max_object_size: lots\n"), env(nil)); err == nil ||
		!strings.Contains(err.Error(), "invalid size") {
		t.Errorf("bad size: %v", err)
	}
	y := policyBucket + `    policy:
      - key_template: "users/{user}/*"
        allowed_content_types: [image]
        require_checksum: [crc16]
        allowed_storage_classes: [standard]
        max_parts: 20000
      - when: {principal: never}
`
	c, err := ParseConfig([]byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	err = c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{`bucket "a"`, "key_template", "{user}", "allowed_content_types", "crc16", "allowed_storage_classes", "max_parts", "never applies"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("validation error does not mention %q:\n%v", w, err)
		}
	}
}

// The -policy-* flags give the config-less bucket one rule set; with -config they are refused.
func TestPolicyFlags(t *testing.T) {
	e := env(map[string]string{EnvUpstreamAccessKey: "uak", EnvUpstreamSecretKey: "usk", EnvClientAccessKey: "cak", EnvClientSecretKey: "csk"})
	f := parseFlags(t, "-bucket", "up", "-upstream", "http://127.0.0.1:7070",
		"-policy-max-object-size", "1MiB", "-policy-content-type", "image/*", "-policy-content-type", "application/pdf",
		"-policy-key-template", "users/{principal}/*", "-policy-no-overwrite", "-policy-require-checksum", "crc32c",
		"-policy-storage-class", "STANDARD", "-policy-max-parts", "5")
	c, err := f.Config(e)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pol := o.Buckets[0].Policy
	if pol == nil {
		t.Fatal("no policy")
	}
	in := policy.Input{Op: policy.OpPutObject, Key: []byte("users/cak/a.pdf"), Principal: "cak", Size: 1 << 20,
		ContentType: []byte("application/pdf"), Checksums: policy.CRC32C}
	if r := pol.Check(&in); r.Violated != policy.RuleNone || !r.NoOverwrite {
		t.Errorf("allowed put: %+v", r)
	}
	for _, mod := range []func(*policy.Input){
		func(in *policy.Input) { in.Size++ },
		func(in *policy.Input) { in.ContentType = []byte("text/plain") },
		func(in *policy.Input) { in.Key = []byte("x") },
		func(in *policy.Input) { in.Checksums = policy.SHA256 },
		func(in *policy.Input) { in.StorageClass = []byte("GLACIER") },
		func(in *policy.Input) { in.Op, in.PartNumber = policy.OpUploadPart, 6 },
	} {
		bad := in
		mod(&bad)
		if r := pol.Check(&bad); r.Violated == policy.RuleNone {
			t.Errorf("%+v allowed", bad)
		}
	}
	// Without -policy-* flags the bucket has no policy.
	c, err = parseFlags(t, "-bucket", "up", "-upstream", "http://127.0.0.1:7070").Config(e)
	if err != nil || len(c.Buckets[0].Policy) != 0 {
		t.Errorf("policy without flags: %v %+v", err, c.Buckets[0].Policy)
	}
	// A bad flag value is named by the configuration check.
	if _, err := parseFlags(t, "-bucket", "up", "-upstream", "http://127.0.0.1:7070", "-policy-require-checksum", "crc16").Config(e); err == nil ||
		!strings.Contains(err.Error(), "crc16") {
		t.Errorf("bad checksum flag: %v", err)
	}
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte(policyBucket), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := parseFlags(t, "-config", path, "-policy-no-overwrite").Config(e); !errors.Is(err, errPolicyFlagsWithConfig) {
		t.Errorf("-policy-* with -config: %v", err)
	}
}
