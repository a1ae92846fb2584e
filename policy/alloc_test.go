//go:build !race

package policy

import "testing"

func TestCheckAllocs(t *testing.T) {
	p := mustCompile(t,
		RuleSet{When: When{Claims: map[string]string{"group": "admins"}}},
		RuleSet{MaxObjectSize: 100, AllowedContentTypes: []string{"image/*"}, KeyTemplate: "{jwt.tenant}/{principal}/*",
			RequireChecksum: []string{"crc32c"}, AllowedStorageClasses: []string{"STANDARD"}, NoOverwrite: true})
	in := Input{Op: OpPutObject, Key: []byte("acme/alice/a.jpg"), Size: 10, Principal: "alice",
		Claims: map[string]any{"tenant": "acme", "group": []any{"users"}}, ContentType: []byte("image/jpeg; q=1"), Checksums: CRC32C}
	if n := testing.AllocsPerRun(100, func() {
		if r := p.Check(&in); r.Violated != RuleNone {
			t.Fatalf("refused: %v", r.Violated)
		}
		_ = ChecksumsOf([]byte("x-amz-trailer"), []byte("x-amz-checksum-crc32c"))
	}); n != 0 {
		t.Errorf("Check: %v allocs; want 0", n)
	}
}
