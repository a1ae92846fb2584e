package systemd

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// TestUnitSandboxAllowsTheProxy runs the static proxy under strace while it serves real uploads
// (inline, spliced, auto-chunked), reloads on SIGHUP and drains on SIGTERM, and checks what it did
// against the unit's sandbox, which cannot be started here (no systemd as PID 1): every system call
// is in SystemCallFilter (@system-service minus @privileged, as `systemd-analyze syscall-filter`
// expands them), every socket is of a family RestrictAddressFamilies allows, and no memory is
// mapped writable and executable (MemoryDenyWriteExecute).
func TestUnitSandboxAllowsTheProxy(t *testing.T) {
	bin := buildBinary(t, t.TempDir())
	up := s3test.Start(t)
	up.CreateBucket(t, "sandbox-bucket")

	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
	cfg := fmt.Sprintf(`server: {address: %q, event_loops: 2, drain_timeout: 10s}
metrics: {enabled: true, address: %q}
buckets:
  - name: uploads
    s3: {bucket: sandbox-bucket, endpoint: %q, access_key: "${UP_AK}", secret_key: "${UP_SK}"}
    auth: {sigv4: {credentials: [{access_key: AKIDSANDBOX, secret_key: "${CLIENT_SK}"}]}}
    upload: {multipart_threshold: 10MiB, part_size: 5MiB}
`, addr, admin, up.Endpoint)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(dir, "strace.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "strace", "-f", "-qq", "-e", "signal=none", "-o", trace, bin, "-config", cfgPath)
	cmd.Env = append(os.Environ(), "UP_AK="+up.AccessKey, "UP_SK="+up.SecretKey, "CLIENT_SK=sandbox-secret")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("strace: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("proxy stderr:\n%s", stderr.String())
		}
	}()
	waitReady(t, admin, exited)

	uploadThrough(t, addr, up)
	if _, err := http.Get("http://" + admin + "/metrics"); err != nil {
		t.Fatal(err)
	}
	reloadAndDrain(t, cmd.Process.Pid, exited, &stderr)
	checkTrace(t, trace)
}

// uploadThrough puts an inline, a spliced and an auto-chunked object through the proxy on addr and
// checks that each reached the upstream whole.
func uploadThrough(t *testing.T, addr string, up *s3test.Server) {
	t.Helper()
	c, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDSANDBOX", "sandbox-secret", "")),
		config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(c, func(o *s3.Options) { o.BaseEndpoint = aws.String("http://" + addr); o.UsePathStyle = true })
	for i, size := range []int{4 << 10, 2 << 20, 12 << 20} { // inline, spliced, auto-chunked
		body := s3test.RandomBytes(size, int64(i))
		key := fmt.Sprintf("obj-%d", size)
		pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err := client.PutObject(pctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String(key), Body: bytes.NewReader(body)})
		pcancel()
		if err != nil {
			t.Fatalf("PutObject %d bytes: %v", size, err)
		}
		if got, _ := up.GetObject(t, "sandbox-bucket", key); !bytes.Equal(got, body) {
			t.Fatalf("%s differs on versitygw", key)
		}
	}
}

// reloadAndDrain sends SIGHUP, then SIGTERM to the proxy under strace (pid: strace's) and waits
// for it to drain and exit 0; its log must show the reload.
func reloadAndDrain(t *testing.T, stracePID int, exited chan error, stderr *bytes.Buffer) {
	t.Helper()
	// strace's child is the proxy: signal it, not strace.
	pid := proxyPID(t, stracePID)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("proxy under strace exited with %v; want 0 after the drain", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("proxy did not exit within a minute of SIGTERM")
	}
	if !strings.Contains(stderr.String(), "reload") {
		t.Errorf("no reload in the proxy's log after SIGHUP")
	}
}

// checkTrace holds what the strace output in trace shows against the unit's sandbox: system
// calls, socket families, writable and executable mappings.
func checkTrace(t *testing.T, trace string) {
	t.Helper()
	raw, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	used, families, wx := parseTrace(string(raw))
	if !used["splice"] {
		t.Errorf("the trace has no splice call: the spliced upload did not happen as expected")
	}
	allowed := expand(t, "@system-service")
	for name := range expand(t, "@privileged") {
		delete(allowed, name)
	}
	// The filter as expanded is the real one: splice passes, reboot and setuid (privileged) do not.
	if !allowed["splice"] || allowed["reboot"] || allowed["setuid"] {
		t.Fatalf("the expanded filter is wrong: splice %v, reboot %v, setuid %v", allowed["splice"], allowed["reboot"], allowed["setuid"])
	}
	var refused []string
	for name := range used {
		if !allowed[name] {
			refused = append(refused, name)
		}
	}
	sort.Strings(refused)
	if len(refused) > 0 {
		t.Errorf("system calls outside SystemCallFilter=@system-service ~@privileged: %v", refused)
	}
	for f := range families {
		if f != "AF_INET" && f != "AF_INET6" && f != "AF_UNIX" {
			t.Errorf("socket family %s is outside RestrictAddressFamilies", f)
		}
	}
	for _, l := range wx {
		t.Errorf("writable and executable mapping (MemoryDenyWriteExecute): %s", l)
	}
	t.Logf("%d distinct system calls, all allowed; socket families %v", len(used), keys(families))
}

// waitReady polls /readyz until 200 (at most 30 s), failing early when the process exits.
func waitReady(t *testing.T, admin string, exited chan error) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("proxy exited before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// proxyPID is the pid of strace's (only) child.
func proxyPID(t *testing.T, stracePID int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", stracePID, stracePID))
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(raw), &pid); err != nil {
		t.Fatalf("strace %d has no child: %q", stracePID, raw)
	}
	return pid
}

var (
	callRe   = regexp.MustCompile(`^\d+\s+(?:<\.\.\. )?([a-z_][a-z0-9_]*)[( ]`)
	socketRe = regexp.MustCompile(`^\d+\s+socket(?:pair)?\((AF_[A-Z0-9]+)`)
	protRe   = regexp.MustCompile(`^\d+\s+(?:mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE.*PROT_EXEC|^\d+\s+(?:mmap|mprotect|pkey_mprotect)\(.*PROT_EXEC.*PROT_WRITE`)
)

// parseTrace returns the system calls an `strace -f` output shows, the socket families, and the
// lines that map memory writable and executable.
func parseTrace(trace string) (calls, families map[string]bool, wx []string) {
	calls, families = map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(trace, "\n") {
		if m := callRe.FindStringSubmatch(l); m != nil {
			calls[m[1]] = true
		}
		if m := socketRe.FindStringSubmatch(l); m != nil {
			families[m[1]] = true
		}
		if protRe.MatchString(l) {
			wx = append(wx, l)
		}
	}
	return calls, families, wx
}

// expand returns the system calls of a systemd syscall group, nested groups expanded, as
// `systemd-analyze syscall-filter` lists them.
func expand(t *testing.T, group string) map[string]bool {
	t.Helper()
	out, err := analyze(t, "syscall-filter", "--no-pager")
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v\n%s", err, out)
	}
	groups := map[string][]string{}
	cur := ""
	for _, l := range strings.Split(out, "\n") {
		switch f := strings.TrimSpace(l); {
		case f == "" || strings.HasPrefix(f, "#"):
		case strings.HasPrefix(l, "@"):
			cur = f
		case cur != "":
			groups[cur] = append(groups[cur], f)
		}
	}
	set := map[string]bool{}
	var walk func(string)
	walk = func(g string) {
		members, ok := groups[g]
		if !ok {
			t.Fatalf("systemd-analyze knows no group %s", g)
		}
		for _, m := range members {
			if strings.HasPrefix(m, "@") {
				walk(m)
			} else {
				set[m] = true
			}
		}
	}
	walk(group)
	return set
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
