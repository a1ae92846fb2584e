package policy

import (
	"errors"
	"testing"
)

func mustCompile(t *testing.T, sets ...RuleSet) *Policy {
	t.Helper()
	p, err := Compile(sets)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	p := mustCompile(t,
		RuleSet{When: When{Claims: map[string]string{"group": "admins"}}},
		RuleSet{When: When{Principal: "AKIDBOT"}, KeyTemplate: "bots/*", MaxParts: 3},
		RuleSet{
			MaxObjectSize:         100,
			AllowedContentTypes:   []string{"image/*", "application/PDF"},
			KeyTemplate:           "users/{principal}/*",
			NoOverwrite:           true,
			RequireChecksum:       []string{"crc32c", "SHA256"},
			AllowedStorageClasses: []string{"STANDARD"},
			MaxParts:              10,
		})
	put := func(mod func(*Input)) Input {
		in := Input{Op: OpPutObject, Key: []byte("users/alice/a.jpg"), Size: 10, Principal: "alice",
			ContentType: []byte("image/jpeg"), Checksums: CRC32C}
		if mod != nil {
			mod(&in)
		}
		return in
	}
	cases := []struct {
		name    string
		in      Input
		want    Rule
		set     int
		noOverw bool
	}{
		{"ok", put(nil), RuleNone, 2, true},
		{"admins claim string", put(func(in *Input) { in.Claims = map[string]any{"group": "admins"}; in.Key = []byte("x") }), RuleNone, 0, false},
		{"admins claim list", put(func(in *Input) { in.Claims = map[string]any{"group": []any{"users", "admins"}}; in.Size = 1 << 40 }), RuleNone, 0, false},
		{"other claim", put(func(in *Input) { in.Claims = map[string]any{"group": "users"} }), RuleNone, 2, true},
		{"bot principal", put(func(in *Input) { in.Principal = "AKIDBOT"; in.Key = []byte("bots/x") }), RuleNone, 1, false},
		{"bot outside prefix", put(func(in *Input) { in.Principal = "AKIDBOT" }), RuleKeyTemplate, 1, false},
		{"bot part 4", Input{Op: OpUploadPart, Principal: "AKIDBOT", Key: []byte("bots/x"), PartNumber: 4}, RuleMaxParts, 1, false},
		{"other user's prefix", put(func(in *Input) { in.Key = []byte("users/bob/a.jpg") }), RuleKeyTemplate, 2, false},
		{"prefix of a longer name", put(func(in *Input) { in.Key = []byte("users/alicex/a.jpg") }), RuleKeyTemplate, 2, false},
		{"anonymous", put(func(in *Input) { in.Principal = ""; in.Key = []byte("users//a") }), RuleKeyTemplate, 2, false},
		{"principal with slash", put(func(in *Input) { in.Principal = "alice/x"; in.Key = []byte("users/alice/x/a") }), RuleKeyTemplate, 2, false},
		{"too large", put(func(in *Input) { in.Size = 101 }), RuleMaxObjectSize, 2, false},
		{"exactly max", put(func(in *Input) { in.Size = 100 }), RuleNone, 2, true},
		{"pdf with params", put(func(in *Input) { in.ContentType = []byte(" Application/Pdf ; charset=x") }), RuleNone, 2, true},
		{"text", put(func(in *Input) { in.ContentType = []byte("text/plain") }), RuleContentType, 2, false},
		{"no content type", put(func(in *Input) { in.ContentType = nil }), RuleContentType, 2, false},
		{"image alone", put(func(in *Input) { in.ContentType = []byte("image/") }), RuleContentType, 2, false},
		{"imagex", put(func(in *Input) { in.ContentType = []byte("imagex/png") }), RuleContentType, 2, false},
		{"glacier", put(func(in *Input) { in.StorageClass = []byte("GLACIER") }), RuleStorageClass, 2, false},
		{"standard explicit", put(func(in *Input) { in.StorageClass = []byte("STANDARD") }), RuleNone, 2, true},
		{"no checksum", put(func(in *Input) { in.Checksums = 0 }), RuleChecksum, 2, false},
		{"md5 only", put(func(in *Input) { in.Checksums = MD5 }), RuleChecksum, 2, false},
		{"sha256", put(func(in *Input) { in.Checksums = SHA256 | MD5 }), RuleNone, 2, true},
		{"create ok", Input{Op: OpCreateMultipartUpload, Principal: "alice", Key: []byte("users/alice/big"), ContentType: []byte("image/png"), Size: 0}, RuleNone, 2, false},
		{"create bad type", Input{Op: OpCreateMultipartUpload, Principal: "alice", Key: []byte("users/alice/big"), ContentType: []byte("text/html")}, RuleContentType, 2, false},
		{"part ok", Input{Op: OpUploadPart, Principal: "alice", Key: []byte("users/alice/big"), Size: 100, PartNumber: 10, Checksums: CRC32C}, RuleNone, 2, false},
		{"part too large", Input{Op: OpUploadPart, Principal: "alice", Key: []byte("users/alice/big"), Size: 101, PartNumber: 1, Checksums: CRC32C}, RuleMaxObjectSize, 2, false},
		{"part no checksum", Input{Op: OpUploadPart, Principal: "alice", Key: []byte("users/alice/big"), Size: 1, PartNumber: 1}, RuleChecksum, 2, false},
		{"part 11", Input{Op: OpUploadPart, Principal: "alice", Key: []byte("users/alice/big"), Size: 1, PartNumber: 11, Checksums: SHA256}, RuleMaxParts, 2, false},
		{"complete", Input{Op: OpCompleteMultipartUpload, Principal: "alice", Key: []byte("users/alice/big"), Size: 500}, RuleNone, 2, true},
		{"complete other key", Input{Op: OpCompleteMultipartUpload, Principal: "alice", Key: []byte("users/bob/big")}, RuleKeyTemplate, 2, false},
		{"abort", Input{Op: OpAbortMultipartUpload, Principal: "alice", Key: []byte("users/alice/big")}, RuleNone, 2, false},
		{"list parts other key", Input{Op: OpListParts, Principal: "alice", Key: []byte("elsewhere")}, RuleKeyTemplate, 2, false},
	}
	for _, tc := range cases {
		r := p.Check(&tc.in)
		if r.Violated != tc.want || r.Set != tc.set || r.NoOverwrite != tc.noOverw {
			t.Errorf("%s: got %v (%q), set %d, no_overwrite %v; want %v (%q), set %d, no_overwrite %v",
				tc.name, r.Violated, r.Violated, r.Set, r.NoOverwrite, tc.want, tc.want, tc.set, tc.noOverw)
		}
	}
}

func TestNoMatch(t *testing.T) {
	p := mustCompile(t, RuleSet{When: When{Principal: "alice"}})
	in := Input{Op: OpPutObject, Principal: "bob", Key: []byte("k")}
	if r := p.Check(&in); r.Violated != RuleNoMatch || r.Set != -1 {
		t.Errorf("got %v set %d; want %v set -1", r.Violated, r.Set, RuleNoMatch)
	}
}

func TestTemplateClaims(t *testing.T) {
	p := mustCompile(t, RuleSet{KeyTemplate: "{jwt.tenant}/{jwt.sub}/*.png"})
	cases := []struct {
		key    string
		claims map[string]any
		want   bool
	}{
		{"acme/u1/a.png", map[string]any{"tenant": "acme", "sub": "u1"}, true},
		{"acme/u1/x/y.png", map[string]any{"tenant": "acme", "sub": "u1"}, true},
		{"acme/u1/a.jpg", map[string]any{"tenant": "acme", "sub": "u1"}, false},
		{"acme/u2/a.png", map[string]any{"tenant": "acme", "sub": "u1"}, false},
		{"acme/u1/a.png", map[string]any{"tenant": "acme"}, false},
		{"acme/1/a.png", map[string]any{"tenant": "acme", "sub": 1.0}, false},
		{"acme/u1/a.png", nil, false},
	}
	for _, tc := range cases {
		in := Input{Op: OpPutObject, Key: []byte(tc.key), Claims: tc.claims, Principal: "u1"}
		if got := p.Check(&in).Violated == RuleNone; got != tc.want {
			t.Errorf("key %q claims %v: got %v; want %v", tc.key, tc.claims, got, tc.want)
		}
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, key string
		want     bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "any/thing", true},
		{"a*", "a", true},
		{"a*b", "ab", true},
		{"a*b", "axxb", true},
		{"a*b", "axxbc", false},
		{"a*b*c", "abbbcbc", true},
		{"*a*a*a", "aaa", true},
		{"*a*a*a", "aa", false},
		{"x/**/y", "x//y", true},
		{"users/*/", "users/a/b/", true},
		{"abc", "ab", false},
		{"ab", "abc", false},
	}
	for _, tc := range cases {
		tpl, err := parseTemplate(tc.pat)
		if err != nil {
			t.Fatalf("%q: %v", tc.pat, err)
		}
		if got := tpl.match([]byte(tc.key), &Input{}); got != tc.want {
			t.Errorf("%q ~ %q: got %v; want %v", tc.pat, tc.key, got, tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		sets []RuleSet
		want error
	}{
		{"open brace", []RuleSet{{KeyTemplate: "users/{principal"}}, ErrTemplate},
		{"close brace", []RuleSet{{KeyTemplate: "users/}"}}, ErrTemplate},
		{"unknown placeholder", []RuleSet{{KeyTemplate: "{user}"}}, ErrTemplate},
		{"empty claim", []RuleSet{{KeyTemplate: "{jwt.}"}}, ErrTemplate},
		{"content type", []RuleSet{{AllowedContentTypes: []string{"image"}}}, ErrContentType},
		{"content type star type", []RuleSet{{AllowedContentTypes: []string{"*/png"}}}, ErrContentType},
		{"checksum", []RuleSet{{RequireChecksum: []string{"crc16"}}}, ErrChecksum},
		{"class", []RuleSet{{AllowedStorageClasses: []string{"standard"}}}, ErrStorageClass},
		{"size", []RuleSet{{MaxObjectSize: -1}}, ErrLimit},
		{"parts", []RuleSet{{MaxParts: 10001}}, ErrLimit},
		{"unreachable", []RuleSet{{}, {When: When{Principal: "a"}}}, ErrWhen},
		{"empty claim name", []RuleSet{{When: When{Claims: map[string]string{"": "x"}}}}, ErrWhen},
	}
	for _, tc := range cases {
		if _, err := Compile(tc.sets); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v; want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Compile([]RuleSet{{AllowedContentTypes: []string{"*/*", "image/*", "application/vnd.api+json"},
		KeyTemplate: "a/{principal}/{jwt.x-y}/*", RequireChecksum: []string{"crc64nvme", "md5"}, MaxParts: 10000}}); err != nil {
		t.Errorf("valid set: %v", err)
	}
}

func TestChecksumsOf(t *testing.T) {
	hex := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	cases := []struct {
		name, value string
		want        Checksums
	}{
		{"x-amz-checksum-crc32", "AAAAAA==", CRC32},
		{"X-Amz-Checksum-CRC32C", "AAAAAA==", CRC32C},
		{"x-amz-checksum-crc64nvme", "AAAAAAAAAAA=", CRC64NVME},
		{"x-amz-checksum-sha1", "x", SHA1},
		{"x-amz-checksum-sha256", "x", SHA256},
		{"x-amz-checksum-md5", "x", 0},
		{"x-amz-checksum-crc32", "", 0},
		{"x-amz-checksum-algorithm", "CRC32", 0},
		{"x-amz-checksum-type", "FULL_OBJECT", 0},
		{"Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==", MD5},
		{"x-amz-content-sha256", hex, SHA256},
		{"x-amz-content-sha256", "UNSIGNED-PAYLOAD", 0},
		{"x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", 0},
		{"x-amz-trailer", "x-amz-checksum-crc32c", CRC32C},
		{"x-amz-trailer", " x-amz-checksum-crc32 , X-Amz-Checksum-Sha1", CRC32 | SHA1},
		{"x-amz-trailer", "x-amz-meta-a,", 0},
		{"x-amz-sdk-checksum-algorithm", "CRC32", 0},
		{"content-type", "x", 0},
	}
	for _, tc := range cases {
		if got := ChecksumsOf([]byte(tc.name), []byte(tc.value)); got != tc.want {
			t.Errorf("%s: %q: got %b; want %b", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestRuleNames(t *testing.T) {
	for r, want := range map[Rule]string{RuleKeyTemplate: "key_template", RuleMaxObjectSize: "max_object_size",
		RuleContentType: "allowed_content_types", RuleStorageClass: "allowed_storage_classes",
		RuleChecksum: "require_checksum", RuleMaxParts: "max_parts", RuleNoMatch: "when"} {
		if r.String() != want {
			t.Errorf("%d: got %q; want %q", r, r.String(), want)
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	p, err := Compile([]RuleSet{
		{When: When{Claims: map[string]string{"group": "admins"}}},
		{MaxObjectSize: 100 << 20, AllowedContentTypes: []string{"image/*", "application/pdf"}, KeyTemplate: "users/{principal}/*",
			RequireChecksum: []string{"crc32c", "sha256"}, AllowedStorageClasses: []string{"STANDARD"}, MaxParts: 1000, NoOverwrite: true},
	})
	if err != nil {
		b.Fatal(err)
	}
	in := Input{Op: OpPutObject, Key: []byte("users/AKIDEXAMPLE/photos/2026/12/01/cat.jpg"), Size: 1 << 20, Principal: "AKIDEXAMPLE",
		ContentType: []byte("image/jpeg"), Checksums: CRC32C}
	b.SetBytes(int64(len(in.Key)))
	b.ReportAllocs()
	for b.Loop() {
		if r := p.Check(&in); r.Violated != RuleNone {
			b.Fatal(r.Violated)
		}
	}
}
