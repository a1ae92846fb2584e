package s3test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	nodeMu      sync.Mutex
	nodeModules string // set once NodeModulesPath succeeded
)

// NodeModulesPath returns the absolute path of <repo root>/.tools/node/node_modules, which holds the
// AWS SDK for JavaScript v3 (@aws-sdk/client-s3, @aws-sdk/lib-storage, @aws-sdk/s3-request-presigner)
// at the versions scripts/node/package-lock.json locks. When .tools/node does not hold exactly that
// install it runs scripts/install-node-clients.sh first (`npm ci`, a few seconds; the script holds a
// file lock, so parallel test binaries install once). The result is cached for the life of the
// process. Safe for concurrent use.
func NodeModulesPath() (string, error) {
	nodeMu.Lock()
	defer nodeMu.Unlock()
	if nodeModules != "" {
		return nodeModules, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	dir, err := ensureNodeClients(root)
	if err != nil {
		return "", err
	}
	nodeModules = dir
	return dir, nil
}

// ensureNodeClients returns root/.tools/node/node_modules, running root/scripts/install-node-clients.sh
// first when that install is missing or was made from another lock.
func ensureNodeClients(root string) (string, error) {
	err := checkNodeClients(root)
	if err == nil {
		return filepath.Join(root, ".tools", "node", "node_modules"), nil
	}
	script := filepath.Join(root, "scripts", "install-node-clients.sh")
	cmd := exec.Command("bash", script)
	cmd.Dir = root
	out, rerr := cmd.CombinedOutput()
	if rerr != nil {
		return "", fmt.Errorf("s3test: %s (%v): %w\n%s", script, err, rerr, tail(out, 4096))
	}
	if err := checkNodeClients(root); err != nil {
		return "", fmt.Errorf("s3test: after %s: %w", script, err)
	}
	return filepath.Join(root, ".tools", "node", "node_modules"), nil
}

// checkNodeClients reports whether root/.tools/node was installed from the committed
// scripts/node/package.json and package-lock.json: the install script copies both there, the lock
// last, once `npm ci` has succeeded.
func checkNodeClients(root string) error {
	for _, f := range []string{"package.json", "package-lock.json"} {
		want, err := os.ReadFile(filepath.Join(root, "scripts", "node", f))
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(root, ".tools", "node", f))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs from scripts/node/%s", filepath.Join(root, ".tools", "node", f), f)
		}
	}
	_, err := os.Stat(filepath.Join(root, ".tools", "node", "node_modules", "@aws-sdk", "client-s3", "package.json"))
	return err
}

// RunNode runs `node -e script args...` (node from PATH, >= 20; process.argv.slice(1) == args) and
// returns its stdout, its stderr and the error of exec.Cmd.Run. The script is CommonJS: it can
// require("@aws-sdk/client-s3"), "@aws-sdk/lib-storage" and "@aws-sdk/s3-request-presigner" (they
// are installed first if needed, see NodeModulesPath; a failed install fails the test). The
// environment is RunAWS's (no AWS_* variable of the test's, AWS_CA_BUNDLE included; the client's
// credentials, AWS_EC2_METADATA_DISABLED, empty shared files, MIZUCHI_ENDPOINT) plus AWS_REGION
// (the variable the JS SDK reads), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true (the SDK
// warns on stderr that releases after early 2027 need node >= 22), NODE_PATH pointing at the
// installed node_modules, and the test's NODE_OPTIONS and NODE_EXTRA_CA_CERTS removed (a TLS test
// passes its CA in e.Extra); then e.Extra.
// The JS SDK does not read addressing_style from AWS_CONFIG_FILE: a script sets forcePathStyle, e.g.
//
//	const { S3Client } = require("@aws-sdk/client-s3");
//	const s3 = new S3Client({ endpoint: process.env.MIZUCHI_ENDPOINT, forcePathStyle: true });
func RunNode(t testing.TB, e ClientEnv, script string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	mods, err := NodeModulesPath()
	if err != nil {
		t.Fatalf("s3test: RunNode: %v", err)
	}
	region := e.Region
	if region == "" {
		region = "us-east-1"
	}
	e.Extra = append([]string{"AWS_REGION=" + region, "AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true",
		"NODE_PATH=" + mods}, e.Extra...)
	return run(t, e, "node", append([]string{"-e", script}, args...), "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "NODE_PATH")
}
