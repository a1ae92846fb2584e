package s3test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ClientEnv is what a real client subprocess is told about the S3 endpoint it talks to (the proxy
// under test, or a Server directly).
type ClientEnv struct {
	Endpoint  string   // "http://host:port", given to aws as --endpoint-url and to Python as MIZUCHI_ENDPOINT
	AccessKey string   // AWS_ACCESS_KEY_ID
	SecretKey string   // AWS_SECRET_ACCESS_KEY
	Region    string   // AWS_DEFAULT_REGION; "us-east-1" when empty
	Extra     []string // more "NAME=value" variables, applied last (they win over the ones above)
}

// Env returns the ClientEnv that talks to the server directly with its root credentials.
func (s *Server) Env() ClientEnv {
	return ClientEnv{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, Region: s.Region}
}

// pathStyleConfig is the AWS config file every client subprocess gets: path-style addressing, so
// bucket names never become host names (ours are loopback addresses).
const pathStyleConfig = "[default]\ns3 =\n    addressing_style = path\n"

// RunAWS runs `aws --endpoint-url E args...` (aws cli v1 from PATH) and returns its stdout, its
// stderr and the error of exec.Cmd.Run (an *exec.ExitError on a non-zero exit). The environment is
// the test's with every AWS_* variable removed (AWS_CA_BUNDLE included), then AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION from e, AWS_EC2_METADATA_DISABLED=true,
// AWS_SHARED_CREDENTIALS_FILE pointing at an empty temp file and AWS_CONFIG_FILE at a temp file that
// only forces path-style addressing, then e.Extra. The process is killed if the test binary dies.
func RunAWS(t testing.TB, e ClientEnv, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return run(t, e, "aws", append([]string{"--endpoint-url", e.Endpoint}, args...))
}

// RunPython runs `python3 -c script args...` (sys.argv[1:] == args) with the environment RunAWS
// uses plus MIZUCHI_ENDPOINT=e.Endpoint; boto3 picks up the credentials and region from the AWS_*
// variables and path-style addressing from AWS_CONFIG_FILE, so a script needs only
//
//	s3 = boto3.client("s3", endpoint_url=os.environ["MIZUCHI_ENDPOINT"])
func RunPython(t testing.TB, e ClientEnv, script string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return run(t, e, "python3", append([]string{"-c", script}, args...))
}

// run runs name with args in the clean client environment; variables of the test's whose names
// start with one of drop are removed as well.
func run(t testing.TB, e ClientEnv, name string, args []string, drop ...string) (string, string, error) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(cfg, []byte(pathStyleConfig), 0o600); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	if err := os.WriteFile(creds, nil, 0o600); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	region := e.Region
	if region == "" {
		region = "us-east-1"
	}
	env := append(filterEnv(os.Environ(), append([]string{"AWS_", "MIZUCHI_ENDPOINT"}, drop...)...),
		"AWS_ACCESS_KEY_ID="+e.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+e.SecretKey,
		"AWS_DEFAULT_REGION="+region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+cfg,
		"AWS_SHARED_CREDENTIALS_FILE="+creds,
		"MIZUCHI_ENDPOINT="+e.Endpoint,
	)
	cmd := exec.Command(name, args...)
	cmd.Env = append(env, e.Extra...) // exec keeps the last value of a duplicated name
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}
