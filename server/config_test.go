package server

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const sample = `server:
  address: "0.0.0.0:8080"
  zero_copy: {enabled: true, pipe_buffer_size: 1048576}
metrics: {enabled: true, address: "127.0.0.1:9090"}
buckets:
  - name: uploads                  # bucket name clients use; path_prefix defaults to /uploads
    s3: {bucket: my-bucket, region: us-east-1, endpoint: "http://127.0.0.1:7070",
         access_key: "${UPSTREAM_ACCESS_KEY}", secret_key: "${UPSTREAM_SECRET_KEY}"}
    auth: {sigv4: {credentials: [{access_key: "${CLIENT_ACCESS_KEY}", secret_key: "${CLIENT_SECRET_KEY}"}]}}
    upload: {multipart_threshold: 52428800, part_size: 104857600, concurrent_parts: 4}
`

var sampleEnv = map[string]string{"UPSTREAM_ACCESS_KEY": "uak", "UPSTREAM_SECRET_KEY": "usk$x",
	"CLIENT_ACCESS_KEY": "cak", "CLIENT_SECRET_KEY": "csk"}

func TestParseDocumentedConfig(t *testing.T) {
	c, err := ParseConfig([]byte(sample), env(sampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	b := c.Buckets[0]
	if b.PathPrefix != "/uploads" || b.S3.SecretKey != "usk$x" || b.Auth.SigV4.Credentials[0].SecretKey != "csk" {
		t.Errorf("bucket = %+v", b)
	}
	if c.Server.ZeroCopy.PipeBufferSize != 1<<20 || b.Upload.PartSize != 100<<20 {
		t.Errorf("sizes: %d %d", c.Server.ZeroCopy.PipeBufferSize, b.Upload.PartSize)
	}
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Buckets[0].Name != "uploads" || o.Buckets[0].Credentials["cak"] != "csk" || o.Buckets[0].AuthNone {
		t.Errorf("engine bucket = %+v", o.Buckets[0])
	}
	if o.CompleteBodyBudget != 32<<20 {
		t.Errorf("CompleteBodyBudget = %d; want the 32 MiB default", o.CompleteBodyBudget)
	}
}

// server.complete_body_budget reaches the engine; below one 4 MiB document it is refused by name.
func TestCompleteBodyBudgetKey(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int64
		err   string
	}{
		{value: "128MiB", want: 128 << 20},
		{value: "4MiB", want: 4 << 20},
		{value: "4194303", err: "server.complete_body_budget 4194303: want at least 4MiB"},
	} {
		y := strings.Replace(sample, "server:\n", "server:\n  complete_body_budget: "+tc.value+"\n", 1)
		c, err := ParseConfig([]byte(y), env(sampleEnv))
		if err != nil {
			t.Fatal(err)
		}
		c.Normalize()
		err = c.Validate()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Count(err.Error(), "4194303") != 1 {
				t.Errorf("%s: Validate = %v; want one error %q", tc.value, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.value, err)
		}
		if o, err := c.EngineOptions(nil, nil); err != nil || o.CompleteBodyBudget != tc.want {
			t.Errorf("%s: CompleteBodyBudget = %d, %v; want %d", tc.value, o.CompleteBodyBudget, err, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{"unknown key with line", "server:\n  address: x\n  adress: y\n", nil, []string{"line 3", "adress"}},
		{"missing variable", "buckets:\n  - name: a\n    s3: {secret_key: \"${NOPE}\"}\n", nil, []string{"line 3", "NOPE is not set"}},
		{"bad size", "server:\n  max_head_bytes: 12 parsecs\n", nil, []string{"line 2", "invalid size"}},
		{"bad duration", "server:\n  head_timeout: soon\n", nil, []string{"line 2", "invalid duration"}},
		{"bad auth scalar", "buckets:\n  - name: a\n    auth: maybe\n", nil, []string{"line 3", "none"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), env(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	y := `buckets:
  - name: a
    s3: {bucket: b, endpoint: "ftp://x", access_key: k, secret_key: s}
    upload: {part_size: 1MiB}
  - name: a
    s3: {bucket: b, endpoint: "http://x:1", access_key: k, secret_key: s}
    auth: none
log: {format: xml}
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
	for _, w := range []string{"part_size", "5 MiB", "scheme must be http or https", "defined twice", "no client credentials", "log.format"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("validation error does not mention %q:\n%v", w, err)
		}
	}
}

func TestAuthNoneIsExplicit(t *testing.T) {
	c, err := ParseConfig([]byte("buckets:\n  - name: a\n    s3: {bucket: b, endpoint: \"http://x:1\", access_key: k, secret_key: s}\n    auth: none\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Buckets[0].Auth.None {
		t.Fatal("auth: none not parsed")
	}
}

func TestFlagsOverrideConfig(t *testing.T) {
	c, err := ParseConfig([]byte(sample), env(sampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse([]string{"-listen", "127.0.0.1:1", "-pipe-size", "256KiB", "-zero-copy=false", "-idle-timeout", "5s", "-event-loops", "3"}); err != nil {
		t.Fatal(err)
	}
	if err := f.Apply(c); err != nil {
		t.Fatal(err)
	}
	if c.Server.Address != "127.0.0.1:1" || c.Server.ZeroCopy.PipeBufferSize != 256<<10 || *c.Server.ZeroCopy.Enabled ||
		time.Duration(c.Server.IdleTimeout) != 5*time.Second || c.Server.EventLoops != 3 {
		t.Errorf("flags not applied: %+v", c.Server)
	}
	// Flags not given leave the file's values alone.
	if c.Metrics.Address != "127.0.0.1:9090" {
		t.Errorf("metrics address changed: %q", c.Metrics.Address)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "1MiB": 1 << 20, "64 KiB": 64 << 10, "5GiB": 5 << 30, "5GB": 5e9, "12B": 12} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "1 parsec"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAutoChunkOff(t *testing.T) {
	y := "buckets:\n  - name: a\n    s3: {bucket: b, endpoint: \"http://x:1\", access_key: k, secret_key: s}\n    auth: none\n    upload: {auto_chunk: false}\n  - name: c\n    s3: {bucket: b, endpoint: \"http://x:1\", access_key: k, secret_key: s}\n    auth: none\n"
	c, err := ParseConfig([]byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Buckets[0].Upload.MultipartThreshold != 0 || o.Buckets[1].Upload.MultipartThreshold != 50<<20 {
		t.Errorf("thresholds %d, %d; want 0 (off) and the 50 MiB default", o.Buckets[0].Upload.MultipartThreshold, o.Buckets[1].Upload.MultipartThreshold)
	}
}

// auth.sigv4.regions lists the credential-scope regions a bucket accepts; it defaults to s3.region
// and each entry must look like a region.
func TestSigningRegions(t *testing.T) {
	load := func(t *testing.T, auth string) (*Config, error) {
		t.Helper()
		c, err := ParseConfig([]byte("buckets:\n  - name: a\n    s3: {bucket: b, region: eu-west-3, endpoint: \"http://x:1\", access_key: k, secret_key: s}\n    auth: "+auth+"\n"), env(nil))
		if err != nil {
			return nil, err
		}
		c.Normalize()
		return c, c.Validate()
	}
	creds := `{access_key: ak, secret_key: sk}`
	c, err := load(t, `{sigv4: {credentials: [`+creds+`], regions: [eu-west-3, auto]}}`)
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Buckets[0].SigningRegions; len(got) != 2 || got[0] != "eu-west-3" || got[1] != "auto" {
		t.Errorf("engine SigningRegions = %q; want [eu-west-3 auto]", got)
	}

	c, err = load(t, `{sigv4: {credentials: [`+creds+`]}}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Buckets[0].Auth.SigV4.Regions; len(got) != 1 || got[0] != "eu-west-3" {
		t.Errorf("default auth.sigv4.regions = %q; want [eu-west-3] (s3.region)", got)
	}
	if o, err = c.EngineOptions(nil, nil); err != nil || len(o.Buckets[0].SigningRegions) != 1 || o.Buckets[0].SigningRegions[0] != "eu-west-3" {
		t.Errorf("engine SigningRegions = %q, %v; want [eu-west-3]", o.Buckets[0].SigningRegions, err)
	}

	for _, bad := range []string{`[""]`, `["eu west"]`, `["eu/west"]`, `["<x>"]`, `[` + strings.Repeat("a", 65) + `]`} {
		_, err := load(t, `{sigv4: {credentials: [`+creds+`], regions: `+bad+`}}`)
		if err == nil || !strings.Contains(err.Error(), "auth.sigv4.regions") {
			t.Errorf("regions %s: %v; want an error naming auth.sigv4.regions", bad, err)
		}
	}
	if _, err := load(t, `{sigv4: {credentials: [`+creds+`], regoins: [x]}}`); err == nil || !strings.Contains(err.Error(), `unknown key "regoins"`) || !strings.Contains(err.Error(), "regions") {
		t.Errorf("misspelt key: %v", err)
	}

	c, err = load(t, "none")
	if err != nil {
		t.Fatal(err)
	}
	c.Buckets[0].Auth.SigV4.Regions = []string{"eu-west-3"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "auth is none") {
		t.Errorf("auth none with regions: %v", err)
	}
}

// server.zero_copy.read_batch (and -read-batch over it) reaches the mover; the default is the
// transfer package's, 1 turns batching off, and more than 1 GiB is refused by name.
func TestReadBatchKey(t *testing.T) {
	for _, tc := range []struct {
		value string // "" = key absent
		flags []string
		want  int
		err   string
	}{
		{want: 256 << 10},
		{value: "64KiB", want: 64 << 10},
		{value: "1", want: 1},
		{value: "64KiB", flags: []string{"-read-batch", "1MiB"}, want: 1 << 20},
		{value: "2GiB", err: "server.zero_copy.read_batch 2147483648: want 1 byte (off)..1GiB"},
	} {
		y := sample
		if tc.value != "" {
			y = strings.Replace(sample, "pipe_buffer_size: 1048576}", "pipe_buffer_size: 1048576, read_batch: "+tc.value+"}", 1)
		}
		c, err := ParseConfig([]byte(y), env(sampleEnv))
		if err != nil {
			t.Fatal(err)
		}
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		f := RegisterFlags(fs)
		if err := fs.Parse(tc.flags); err != nil {
			t.Fatal(err)
		}
		if err := f.Apply(c); err != nil {
			t.Fatal(err)
		}
		c.Normalize()
		err = c.Validate()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("read_batch %s: Validate = %v; want %q", tc.value, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("read_batch %q %v: %v", tc.value, tc.flags, err)
		}
		if o, err := c.EngineOptions(nil, nil); err != nil || o.Transfer.ReadBatch != tc.want {
			t.Errorf("read_batch %q %v: Transfer.ReadBatch = %d, %v; want %d", tc.value, tc.flags, o.Transfer.ReadBatch, err, tc.want)
		}
	}
}
