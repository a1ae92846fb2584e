package server

import (
	"flag"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// A file with many problems gets all of them reported, each with its line, in one error.
func TestParseConfigListsEveryProblem(t *testing.T) {
	y := `server:
  adress: x
  zero_copy: {enabled: true, pipe_sise: 1MiB}
  max_head_bytes: 12 parsecs
  head_timeout: soon
upstreem: {}
buckets:
  - name: a
    s3: {bucket: b, endpoint: "http://x:1", access_key: k, secret_key: "${NOPE}", regoin: eu}
    auth: {sigv4: {credentials: [{access_key: ak, secret_kee: s}]}}
    upload: {part_size: 1MiB, concurrent_parts: lots}
`
	_, err := ParseConfig([]byte(y), env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		`line 2: unknown key "adress" in server`,
		`line 3: unknown key "pipe_sise" in server.zero_copy`,
		`line 4: invalid size "12 parsecs"`,
		`line 5: invalid duration "soon"`,
		`line 6: unknown key "upstreem" in the top level`,
		`line 9: environment variable NOPE is not set`,
		`line 9: unknown key "regoin" in buckets[0].s3`,
		`line 10: unknown key "secret_kee" in buckets[0].auth.sigv4.credentials[0]`,
		`line 11: cannot unmarshal !!str ` + "`lots`",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
	// Ordered by line.
	lines := regexp.MustCompile(`(?m)^line (\d+):`).FindAllStringSubmatch(strings.TrimPrefix(err.Error(), "config: "), -1)
	var nums []int
	for _, m := range lines {
		n, _ := strconv.Atoi(m[1])
		nums = append(nums, n)
	}
	if len(nums) != 9 || !sort.IntsAreSorted(nums) {
		t.Errorf("problems not ordered by line:\n%v", err)
	}
}

// Flags, file problems and validation problems come back together from Flags.Config.
func TestFlagsConfigJoinsParseAndValidation(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/c.yaml"
	writeFile(t, path, `server: {adress: x}
buckets:
  - name: a
    s3: {bucket: b, endpoint: "http://x:1", access_key: k, secret_key: "${NOPE}"}
    auth: none
    upload: {part_size: 1MiB}
  - name: a
    s3: {bucket: b, endpoint: "http://x:1", access_key: k, secret_key: s}
    auth: none
`)
	f := parseFlags(t, "-config", path)
	_, err := f.Config(env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{path + `:1: unknown key "adress"`, path + ":4: environment variable NOPE is not set", "part_size 1048576 is below S3's 5 MiB minimum", `bucket "a": defined twice`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
	if strings.Count(err.Error(), "5 MiB") != 1 {
		t.Errorf("part size reported more than once:\n%v", err)
	}
}

func parseFlags(t *testing.T, args ...string) *Flags {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f
}

// Every flag's default is the default in force: giving every flag its own default changes nothing.
func TestFlagDefaultsAreTheDefaults(t *testing.T) {
	base := func() *Config {
		c, err := ParseConfig([]byte(sample), env(sampleEnv))
		if err != nil {
			t.Fatal(err)
		}
		c.Metrics = MetricsConfig{}
		c.Server = ServerConfig{}
		c.Buckets[0].Upload = UploadConfig{}
		return c
	}
	want := base()
	want.Normalize()

	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	f := RegisterFlags(fs)
	var args []string
	fs.VisitAll(func(fl *flag.Flag) {
		switch fl.Name {
		case "config", "check", "bucket", "upstream", "upstream-bucket", "region", "auth-none":
			return
		}
		args = append(args, "-"+fl.Name+"="+fl.DefValue)
	})
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	got := base()
	if err := f.Apply(got); err != nil {
		t.Fatal(err)
	}
	got.Normalize()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flags at their defaults changed the configuration:\n got %+v\nwant %+v", got, want)
	}
}

// Every tuning key of the file has a flag naming it in its usage, and every flag that names a key
// sets that key.
func TestEveryTuningKeyHasAFlag(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	RegisterFlags(fs)
	named := map[string]string{}
	keyRe := regexp.MustCompile(`\(([a-z_.\[\]]+)\)$`)
	fs.VisitAll(func(fl *flag.Flag) {
		if m := keyRe.FindStringSubmatch(fl.Usage); m != nil {
			named[m[1]] = fl.Name
		}
	})
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for name, ft := range yamlFields(t) {
			k := join(prefix, name)
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, k)
				continue
			}
			keys = append(keys, k)
		}
	}
	for _, sec := range []struct {
		name string
		t    reflect.Type
	}{{"server", reflect.TypeOf(ServerConfig{})}, {"upstream", reflect.TypeOf(UpstreamConfig{})},
		{"metrics", reflect.TypeOf(MetricsConfig{})}, {"log", reflect.TypeOf(LogConfig{})},
		{"buckets[].upload", reflect.TypeOf(UploadConfig{})}, {"tracing", reflect.TypeOf(TracingConfig{})}} {
		walk(sec.t, sec.name)
	}
	sort.Strings(keys)
	// Secrets are never flags: a config-less start reads them from the environment (tracing.headers
	// carries a backend's key: the file, with ${ENV} expansion).
	secrets := map[string]bool{"server.upload_id_secrets": true, "tracing.headers": true}
	keys = slices.DeleteFunc(keys, func(k string) bool { return secrets[k] })
	for _, k := range keys {
		if _, ok := named[k]; !ok {
			t.Errorf("config key %s has no flag", k)
		}
	}
	if len(named) != len(keys) {
		t.Errorf("%d flags name a key, %d tuning keys exist: %v", len(named), len(keys), named)
	}
}

func TestConfiglessStart(t *testing.T) {
	up := map[string]string{EnvUpstreamAccessKey: "uak", EnvUpstreamSecretKey: "usk"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error; nil = success
	}{
		{"named variables", []string{"-bucket", "up", "-upstream", "http://127.0.0.1:7070"}, with(up, EnvClientAccessKey, "cak", EnvClientSecretKey, "csk"), nil},
		{"aws variables", []string{"-bucket", "up", "-upstream", "http://127.0.0.1:7070", "-auth-none"}, map[string]string{EnvAWSAccessKey: "a", EnvAWSSecretKey: "s"}, nil},
		{"no upstream credentials", []string{"-bucket", "up", "-upstream", "http://h:1", "-auth-none"}, nil, []string{EnvUpstreamAccessKey, EnvAWSAccessKey}},
		{"half a pair", []string{"-bucket", "up", "-upstream", "http://h:1", "-auth-none"}, map[string]string{EnvUpstreamAccessKey: "x"}, []string{"set both " + EnvUpstreamAccessKey}},
		{"no client credentials", []string{"-bucket", "up", "-upstream", "http://h:1"}, up, []string{EnvClientAccessKey, "-auth-none"}},
		{"auth-none and client keys", []string{"-bucket", "up", "-upstream", "http://h:1", "-auth-none"}, with(up, EnvClientAccessKey, "a", EnvClientSecretKey, "b"), []string{"choose one"}},
		{"credentials in the URL", []string{"-bucket", "up", "-upstream", "http://k:s@h:1", "-auth-none"}, up, []string{"must not carry credentials"}},
		{"no upstream", []string{"-bucket", "up", "-auth-none"}, up, []string{"-upstream is required"}},
		{"with a config file", []string{"-config", "x.yaml", "-bucket", "up"}, up, []string{"with -config, put buckets in the file"}},
		{"nothing", nil, up, []string{"give -config FILE, or -bucket NAME -upstream URL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := parseFlags(t, tc.args...)
			c, err := f.Config(env(tc.env))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				b := c.Buckets[0]
				if b.Name != "up" || b.S3.Bucket != "up" || b.S3.Endpoint != "http://127.0.0.1:7070" || b.S3.Region != "us-east-1" || b.S3.SecretKey == "" {
					t.Errorf("bucket = %+v", b)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			for _, secret := range []string{"usk", "csk"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
}

// The new flags land in the configuration and in the engine options; the upload flags apply to
// every bucket.
func TestNewFlagsReachEngineOptions(t *testing.T) {
	f := parseFlags(t, "-bucket", "up", "-upstream", "http://h:1", "-upstream-bucket", "real", "-region", "eu-west-1", "-auth-none",
		"-dial-timeout", "2s", "-response-timeout", "7s", "-upstream-max-idle", "3", "-upstream-max-conns", "9",
		"-upstream-idle-timeout", "11s", "-multipart-threshold", "6MiB", "-part-size", "5MiB", "-concurrent-parts", "2",
		"-max-object-size", "1GiB", "-max-uri-bytes", "2KiB", "-min-pipe-size", "64KiB", "-access-log=false", "-metrics=false",
		"-complete-body-budget", "16MiB")
	c, err := f.Config(env(map[string]string{EnvAWSAccessKey: "a", EnvAWSSecretKey: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Log.Access || *c.Metrics.Enabled {
		t.Errorf("access log %v, metrics %v; want both off", *c.Log.Access, *c.Metrics.Enabled)
	}
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := o.Upstream
	if u.DialTimeout.String() != "2s" || u.MaxIdle != 3 || u.MaxConns != 9 || u.IdleTimeout.String() != "11s" || o.ResponseTimeout.String() != "7s" {
		t.Errorf("upstream options %+v, response timeout %v", u, o.ResponseTimeout)
	}
	if o.MaxObjectSize != 1<<30 || o.MaxURIBytes != 2<<10 || o.Transfer.MinPipeSize != 64<<10 || o.CompleteBodyBudget != 16<<20 {
		t.Errorf("sizes %d %d %d %d", o.MaxObjectSize, o.MaxURIBytes, o.Transfer.MinPipeSize, o.CompleteBodyBudget)
	}
	b := o.Buckets[0]
	if b.Upstream.Bucket != "real" || b.Upstream.Region != "eu-west-1" || !b.AuthNone ||
		b.Upload.MultipartThreshold != 6<<20 || b.Upload.PartSize != 5<<20 || b.Upload.ConcurrentParts != 2 {
		t.Errorf("bucket %+v", b)
	}
}

func TestBadFlagValues(t *testing.T) {
	for _, args := range [][]string{{"-pipe-size", "big"}, {"-part-size", "-1"}, {"-drain-timeout", "soon"}} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		RegisterFlags(fs)
		if err := fs.Parse(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	f := parseFlags(t, "-upstream-max-conns", "-1", "-bucket", "b", "-upstream", "http://h:1", "-auth-none")
	if _, err := f.Config(env(map[string]string{EnvAWSAccessKey: "a", EnvAWSSecretKey: "s"})); err == nil || !strings.Contains(err.Error(), "-upstream-max-conns -1") {
		t.Errorf("negative max conns: %v", err)
	}
}

// The any-bucket entry and virtual host suffixes reach the engine, and -check's route lines
// explain them.
func TestWildcardAndVirtualHostConfig(t *testing.T) {
	raw := []byte(`
server:
  virtual_host_suffixes: [s3.example.com, S3.Internal]
buckets:
  - name: uploads
    s3: {bucket: up-uploads, endpoint: "http://127.0.0.1:7070", access_key: k, secret_key: s}
    auth: none
  - name: "*"
    s3: {bucket: "*", endpoint: "http://127.0.0.1:7071", access_key: k2, secret_key: s2}
    auth: {sigv4: {credentials: [{access_key: cak, secret_key: csk}]}}
`)
	c, err := ParseConfig(raw, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.VirtualHostSuffixes, []string{"s3.example.com", "S3.Internal"}) {
		t.Errorf("VirtualHostSuffixes = %q", o.VirtualHostSuffixes)
	}
	if w := o.Buckets[1]; w.Name != "*" || w.Upstream.Bucket != "" || w.Upstream.Endpoint != "http://127.0.0.1:7071" || w.Credentials["cak"] != "csk" {
		t.Errorf("wildcard entry = %+v", w)
	}
	routes := strings.Join(c.Routes(), "\n")
	for _, want := range []string{"bucket uploads -> bucket up-uploads at http://127.0.0.1:7070 (auth none)",
		"bucket *: any other bucket name B", "-> bucket B at http://127.0.0.1:7071 (auth sigv4; named buckets take precedence)",
		"Host <bucket>.{s3.example.com,S3.Internal}[:port]"} {
		if !strings.Contains(routes, want) {
			t.Errorf("Routes() lacks %q:\n%s", want, routes)
		}
	}
	if strings.Contains(routes, "csk") || strings.Contains(routes, "s2") {
		t.Errorf("Routes() prints a secret:\n%s", routes)
	}

	// Flags: repeatable, replacing the file's list.
	f := parseFlags(t, "-virtual-host-suffix", "a.example", "-virtual-host-suffix", "b.example")
	if err := f.Apply(c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Server.VirtualHostSuffixes, []string{"a.example", "b.example"}) {
		t.Errorf("after flags: %q", c.Server.VirtualHostSuffixes)
	}

	for _, bad := range []string{
		"server: {virtual_host_suffixes: [\"http://s3.example.com\"]}\nbuckets: [{name: \"*\", s3: {endpoint: \"http://h:1\", access_key: k, secret_key: s}, auth: none}]",
		"buckets: [{name: \"*\", s3: {bucket: named, endpoint: \"http://h:1\", access_key: k, secret_key: s}, auth: none}]",
		"buckets: [{name: x, path_prefix: \"/*\", s3: {bucket: b, endpoint: \"http://h:1\", access_key: k, secret_key: s}, auth: none}]",
		"buckets: [{name: \"*\", path_prefix: /x, s3: {endpoint: \"http://h:1\", access_key: k, secret_key: s}, auth: none}]",
	} {
		c, err := ParseConfig([]byte(bad), env(nil))
		if err != nil {
			t.Fatalf("%s: %v", bad, err)
		}
		c.Normalize()
		if err := c.Validate(); err == nil {
			t.Errorf("Validate accepted %s", bad)
		}
	}
}
