package s3test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

const jsPut = `
const fs = require("fs");
const { S3Client, PutObjectCommand } = require("@aws-sdk/client-s3");
const [bucket, key, file] = process.argv.slice(1);
const s3 = new S3Client({ endpoint: process.env.MIZUCHI_ENDPOINT, forcePathStyle: true });
s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: fs.readFileSync(file) })).then(
  (r) => console.log(r.ETag),
  (e) => { console.error(e); process.exit(1); });
`

func TestRunNodeJSSDKPutObject(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.CreateBucket(t, "js-bkt")
	data := RandomBytes(1<<20+5, 4)
	stdout, stderr, err := RunNode(t, s.Env(), jsPut, "js-bkt", "from/js sdk", TempFile(t, data))
	if err != nil {
		t.Fatalf("node PutObject: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	body, head := s.GetObject(t, "js-bkt", "from/js sdk")
	if !bytes.Equal(body, data) {
		t.Fatalf("GetObject body: got %d bytes, want the %d put by the JS SDK", len(body), len(data))
	}
	if got, want := strings.TrimSpace(stdout), aws.ToString(head.ETag); got != want {
		t.Errorf("ETag: the JS SDK printed %s; HeadObject says %s", got, want)
	}
	if stderr != "" {
		t.Errorf("node wrote to stderr: %s", stderr)
	}
}

// The packages node loads are the versions scripts/node/package.json pins.
func TestRunNodeVersions(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "scripts", "node", "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Dependencies map[string]string }
	if err := json.Unmarshal(raw, &pkg); err != nil {
		t.Fatal(err)
	}
	if len(pkg.Dependencies) != 3 {
		t.Fatalf("scripts/node/package.json has %d dependencies; want the 3 AWS SDK packages", len(pkg.Dependencies))
	}
	const script = `
const out = {};
for (const p of process.argv.slice(1)) out[p] = require(p + "/package.json").version;
console.log(JSON.stringify(out));
`
	var names []string
	for name, v := range pkg.Dependencies {
		if strings.ContainsAny(v, "^~<>=* ") {
			t.Errorf("scripts/node/package.json: %s %q is not an exact version", name, v)
		}
		names = append(names, name)
	}
	stdout, stderr, err := RunNode(t, ClientEnv{}, script, names...)
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	var got map[string]string
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("node printed %q: %v", stdout, err)
	}
	for name, v := range pkg.Dependencies {
		if got[name] != v {
			t.Errorf("node loads %s %s; package.json pins %s", name, got[name], v)
		}
	}
}

// Not parallel: t.Setenv.
func TestRunNodeEnvironment(t *testing.T) {
	t.Setenv("AWS_PROFILE", "leaky")
	t.Setenv("AWS_CA_BUNDLE", "/nonexistent/ca.pem")
	t.Setenv("NODE_EXTRA_CA_CERTS", "/nonexistent/ca.pem")
	t.Setenv("NODE_OPTIONS", "--require /nonexistent/preload.js") // node would fail to start with it
	t.Setenv("NODE_PATH", "/nonexistent")
	e := ClientEnv{Endpoint: "http://127.0.0.1:1", AccessKey: "AK", SecretKey: "SK", Region: "eu-west-3",
		Extra: []string{"MIZUCHI_X=1"}}
	const script = `
for (const k of Object.keys(process.env).sort()) {
  if (/^(AWS_|MIZUCHI_|NODE_)/.test(k)) console.log(k + "=" + process.env[k]);
}
`
	stdout, stderr, err := RunNode(t, e, script)
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr)
	}
	mods, err := NodeModulesPath()
	if err != nil {
		t.Fatal(err)
	}
	got := envLines(stdout)
	want := []string{
		"AWS_ACCESS_KEY_ID=AK",
		"AWS_CONFIG_FILE",
		"AWS_DEFAULT_REGION=eu-west-3",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_REGION=eu-west-3",
		"AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true",
		"AWS_SECRET_ACCESS_KEY=SK",
		"AWS_SHARED_CREDENTIALS_FILE",
		"MIZUCHI_ENDPOINT=http://127.0.0.1:1",
		"MIZUCHI_X=1",
		"NODE_PATH=" + mods,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("node environment:\ngot  %q\nwant %q", got, want)
	}
}

// fakeNodeRoot makes a repository root with scripts/node/package*.json and an install script.
func fakeNodeRoot(t *testing.T, script string) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range map[string]string{
		"scripts/node/package.json":       `{"dependencies":{"@aws-sdk/client-s3":"3.1.0"}}`,
		"scripts/node/package-lock.json":  `{"lockfileVersion":3}`,
		"scripts/install-node-clients.sh": script,
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const fakeNodeInstall = "set -e\nmkdir -p .tools/node/node_modules/@aws-sdk/client-s3\n" +
	"echo '{}' > .tools/node/node_modules/@aws-sdk/client-s3/package.json\n" +
	"cp scripts/node/package.json scripts/node/package-lock.json .tools/node/\necho ran >> ran.log\n"

func TestEnsureNodeClientsRunsInstallScript(t *testing.T) {
	t.Parallel()
	root := fakeNodeRoot(t, fakeNodeInstall)
	for range 2 { // the second call finds the install and does not run the script
		got, err := ensureNodeClients(root)
		if err != nil {
			t.Fatalf("ensureNodeClients: %v", err)
		}
		if want := filepath.Join(root, ".tools", "node", "node_modules"); got != want {
			t.Fatalf("ensureNodeClients: got %s; want %s", got, want)
		}
	}
	// A changed lock (e.g. a version bump pulled from git) makes it install again.
	if err := os.WriteFile(filepath.Join(root, "scripts", "node", "package-lock.json"), []byte(`{"lockfileVersion":3,"x":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureNodeClients(root); err != nil {
		t.Fatalf("ensureNodeClients after a lock change: %v", err)
	}
	if log, _ := os.ReadFile(filepath.Join(root, "ran.log")); string(log) != "ran\nran\n" {
		t.Errorf("install script runs: got %q; want exactly two", log)
	}
}

func TestEnsureNodeClientsFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, script, errHas string
	}{
		{"script fails", "echo 'npm error code ETARGET' >&2\nexit 1\n", "npm error code ETARGET"},
		{"script installs nothing", "exit 0\n", "after"},
		{"script installs another lock", strings.Replace(fakeNodeInstall, "cp scripts/node/package.json scripts/node/package-lock.json .tools/node/",
			"cp scripts/node/package.json .tools/node/ && echo '{}' > .tools/node/package-lock.json", 1), "differs"},
	} {
		_, err := ensureNodeClients(fakeNodeRoot(t, tc.script))
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: got %v; want an error containing %q", tc.name, err, tc.errHas)
		}
	}
}

func TestNodeInstallScriptIdempotent(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NodeModulesPath(); err != nil {
		t.Fatal(err)
	}
	wantQuickNoop(t, root, "install-node-clients.sh", "already installed")
}
