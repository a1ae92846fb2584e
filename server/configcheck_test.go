package server

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// One pass reports every problem of a file, YAML type errors and validation problems alike, each
// as file:line: message at the line of the key it names, ordered by line.
func TestCheckPlacesEveryProblem(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	writeFile(t, path, `server:
  event_loops: abc
  max_head_bytes: 64k
  tls: {address: "nohost"}
metrics:
  address: not-an-address
buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
    upload:
      part_size: 1MiB
      concurrent_parts: 100
  - name: other
    s3: {bucket: b, endpoint: "not a url", access_key: k, secret_key: s}
    auth: none
  - name: third
    path_prefix: bad/x
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: {sigv4: {credentials: [{access_key: a, secret_key: b}, {access_key: a, secret_key: c}]}}
    policy: {max_parts: -1}
    cors:
      - allowed_origins: ["https://a.example"]
        allowed_methods: [PUT]
      - allowed_origins: ["https://*.*.example"]
        allowed_methods: [PUT, PATCH]
`)
	f := parseFlags(t, "-config", path)
	_, err := f.Config(env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		path + ":2: cannot unmarshal !!str `abc` into int",
		path + `:4: server.tls.address "nohost": want host:port`,
		path + `:6: metrics.address "not-an-address": want host:port`,
		path + `:12: bucket "uploads": upload.part_size 1048576 is below S3's 5 MiB minimum`,
		path + `:13: bucket "uploads": upload.concurrent_parts 100: want 1..64`,
		path + `:15: bucket "other": upstream endpoint "not a url"`,
		path + `:18: bucket "third": path_prefix "bad/x" must be one path segment`,
		path + `:20: bucket "third": client access key listed twice`,
		path + `:21: bucket "third": policy:`,
		path + `:25: bucket "third": cors[1].allowed_origins "https://*.*.example": `,
		path + `:26: bucket "third": cors[1].allowed_methods "PATCH": `,
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("no problem reads %q:\n%v", w, err)
		}
	}
	prev := 0
	for _, g := range got {
		if !strings.HasPrefix(g, path+":") {
			t.Errorf("problem without its file: %q", g)
			continue
		}
		rest := strings.TrimPrefix(g, path+":")
		n := 0
		for _, c := range rest {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		if n == 0 {
			t.Errorf("problem without a line: %q", g)
		}
		if n < prev {
			t.Errorf("problems not ordered by line:\n%v", err)
		}
		prev = n
	}
	if strings.Contains(err.Error(), "max_head_bytes") {
		t.Errorf("64k (nginx's binary k) refused:\n%v", err)
	}
}

// Sizes: KiB, MiB, GiB, TiB and nginx's k, m, g are binary; KB, MB, GB, TB decimal.
func TestParseByteSizeUnits(t *testing.T) {
	for in, want := range map[string]int64{
		"5": 5, "64k": 65536, "64K": 65536, "1m": 1 << 20, "1M": 1 << 20, "2g": 2 << 30, "2G": 2 << 30, " 8 k ": 8192,
		"64KiB": 65536, "64KB": 64000, "1MB": 1e6, "1MiB": 1 << 20, "5GiB": 5 << 30, "1TB": 1e12, "10B": 10,
	} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "64kb", "64kib", "-1k", "1.5m", "64 parsecs", "1t"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
	var b ByteSize
	if err := b.UnmarshalYAML(scalar("64k")); err != nil || b != 65536 {
		t.Errorf("YAML 64k: %d %v", b, err)
	}
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v, Line: 1} }

// A negative duration given by a flag is a problem too (the file refuses them when parsing).
func TestNegativeDurationFlags(t *testing.T) {
	f := parseFlags(t, "-bucket", "b", "-upstream", "http://127.0.0.1:1", "-auth-none", "-head-timeout=-5s", "-dial-timeout=-1s")
	_, err := f.Config(env(map[string]string{EnvUpstreamAccessKey: "k", EnvUpstreamSecretKey: "s"}))
	if err == nil || !strings.Contains(err.Error(), "server.head_timeout -5s: must be >= 0") ||
		!strings.Contains(err.Error(), "upstream.dial_timeout -1s: must be >= 0") {
		t.Errorf("negative durations: %v", err)
	}
}
