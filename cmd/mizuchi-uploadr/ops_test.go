package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// configless starts the binary with flags and environment alone in front of up's bucket upBucket
// (client bucket "uploads", client credentials clientAK/clientSK).
func configless(t *testing.T, up *s3test.Server, upBucket string, extra ...string) *proc {
	t.Helper()
	addr, admin := addrs(t)
	args := append([]string{"-bucket", "uploads", "-upstream", up.Endpoint, "-upstream-bucket", upBucket,
		"-listen", addr, "-admin-address", admin, "-event-loops", "2"}, extra...)
	p := launch(t, addr, admin, args, cleanEnv(
		"MIZUCHI_UPSTREAM_ACCESS_KEY="+up.AccessKey, "MIZUCHI_UPSTREAM_SECRET_KEY="+up.SecretKey,
		"MIZUCHI_CLIENT_ACCESS_KEY="+clientAK, "MIZUCHI_CLIENT_SECRET_KEY="+clientSK))
	p.waitReady(t)
	return p
}

// Flags and environment alone run a bucket; -listen, -admin-address and -max-head-bytes are in force.
func TestConfiglessStartAndFlagOverrides(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "real")
	p := configless(t, up, "real", "-max-head-bytes", "2KiB")

	cl := dialClient(t, p.addr)
	resp, body, err := cl.put("uploads", "flags/one", 300<<10)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT through a config-less proxy: %v %v %s", err, resp, body)
	}
	if got, _ := up.GetObject(t, "real", "flags/one"); len(got) != 300<<10 {
		t.Errorf("stored %d bytes", len(got))
	}
	// A 1.5 KiB head passes, a 3 KiB head is refused with 431 at the new limit.
	resp, body, err = cl.putAs("uploads", "flags/small-head", 10, clientAK, clientSK, map[string]string{"X-Amz-Meta-Pad": strings.Repeat("p", 900)})
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("1.5 KiB head: %v %v %s", err, resp, body)
	}
	big := dialClient(t, p.addr)
	resp, body, err = big.putAs("uploads", "flags/big-head", 10, clientAK, clientSK, map[string]string{"X-Amz-Meta-Pad": strings.Repeat("p", 3<<10)})
	if err != nil || resp.StatusCode != 431 {
		t.Errorf("3 KiB head with -max-head-bytes 2KiB: %v %v %s; want 431", err, resp, body)
	}
	if code, _ := p.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz on -admin-address: %d", code)
	}
}

// A config-less start without credentials fails and names the variables; secrets are not flags.
func TestConfiglessStartNeedsCredentials(t *testing.T) {
	cmd := exec.Command(binPath, "-bucket", "b", "-upstream", "http://127.0.0.1:1")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "MIZUCHI_UPSTREAM_ACCESS_KEY") || !strings.Contains(string(out), "MIZUCHI_CLIENT_ACCESS_KEY") {
		t.Errorf("without credentials: %v\n%s", err, out)
	}
	help, _ := exec.Command(binPath, "-h").CombinedOutput()
	for _, f := range []string{"-secret", "-access-key", "-password"} {
		if strings.Contains(string(help), f) {
			t.Errorf("-h offers %s: secrets must not be flags", f)
		}
	}
}

// -h lists every flag with its default and unit.
func TestHelpListsEveryFlag(t *testing.T) {
	out, err := exec.Command(binPath, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("-h: %v", err)
	}
	h := string(out)
	for _, f := range []string{"-listen address", "-event-loops number", "-zero-copy", "-pipe-size size", "-min-pipe-size size", "-pipe-pool pipes", "-read-batch size",
		"-max-head-bytes size", "-max-uri-bytes size", "-inline-body-max size", "-max-object-size size", "-complete-body-budget size",
		"-head-timeout duration", "-idle-timeout duration", "-body-stall-timeout duration", "-response-timeout duration", "-drain-timeout duration",
		"-dial-timeout duration", "-upstream-max-idle connections", "-upstream-max-conns connections", "-upstream-idle-timeout duration",
		"-multipart-threshold size", "-part-size size", "-concurrent-parts parts", "-admin-address address", "-metrics",
		"-log-level level", "-log-format format", "-access-log", "-bucket name", "-upstream URL", "-upstream-bucket name", "-region region", "-auth-none", "-check", "-config file"} {
		if !strings.Contains(h, "  "+f) {
			t.Errorf("-h does not list %q", f)
		}
	}
	for _, d := range []string{"(default 1MiB)", "(default 256KiB)", "(default 5TiB)", "(default 32MiB)", "(default 50MiB)", "(default 100MiB)", "(default 30s)", "(default 5m0s)", "(default 5s)", "(default 64)", "(default 4)", `(default "127.0.0.1:9090")`, "(default true)"} {
		if !strings.Contains(h, d) {
			t.Errorf("-h does not show %s", d)
		}
	}
}

// -check lists every problem of a file, with lines, exits non-zero and never dials.
func TestCheckListsEveryProblem(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dialed := make(chan struct{}, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
			dialed <- struct{}{}
		}
	}()
	path := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(path, []byte(`server:
  adress: x
  max_head_bytes: 12 parsecs
buckets:
  - name: a
    s3: {bucket: b, endpoint: "http://`+l.Addr().String()+`", access_key: k, secret_key: "${MISSING_SECRET}"}
    auth: {sigv4: {credentials: [{access_key: a, secret: s}]}}
    upload: {part_size: 1MiB}
  - name: a
    s3: {bucket: b, endpoint: "http://`+l.Addr().String()+`", access_key: k, secret_key: s}
    auth: none
`), 0o600)
	cmd := exec.Command(binPath, "-check", "-config", path)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Errorf("-check of a bad file: %v; want a non-zero exit", err)
	}
	for _, w := range []string{`:2: unknown key "adress"`, `:3: invalid size "12 parsecs"`, ":6: environment variable MISSING_SECRET is not set",
		`:7: unknown key "secret" in buckets[0].auth.sigv4.credentials[0]`, `:8: bucket "a": upload.part_size 1048576 is below S3's 5 MiB minimum`,
		`:9: bucket "a": defined twice`} {
		if !strings.Contains(string(out), "\n"+path+w) {
			t.Errorf("-check output does not mention %q:\n%s", w, out)
		}
	}
	select {
	case <-dialed:
		t.Error("-check dialed the upstream")
	case <-time.After(200 * time.Millisecond):
	}
}

// After real uploads, the counters moved by exactly what was sent.
func TestMetricsAfterUploads(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "metered")
	p := configless(t, up, "metered")
	before := scrape(t, p.admin)
	sizes := []int64{1 << 10, 200 << 10, 3 << 20}
	var total int64
	cl := dialClient(t, p.addr)
	for i, size := range sizes {
		resp, body, err := cl.put("uploads", "m/"+string(rune('a'+i)), size)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT %d bytes: %v %v %s", size, err, resp, body)
		}
		total += size
	}
	// One refusal (unknown bucket) and one authentication failure, each on its own connection.
	if resp, _, err := dialClient(t, p.addr).put("elsewhere", "x", 10); err != nil || resp.StatusCode != 403 {
		t.Fatalf("unknown bucket: %v %v", err, resp)
	}
	if resp, _, err := dialClient(t, p.addr).putAs("uploads", "x", 10, clientAK, "wrong-secret", nil); err != nil || resp.StatusCode != 403 {
		t.Fatalf("bad signature: %v %v", err, resp)
	}
	// A request's counters move just after its answer is written: wait for the last one.
	after := scrape(t, p.admin)
	for deadline := time.Now().Add(5 * time.Second); sum(after, "mizuchi_request_duration_seconds_count")-sum(before, "mizuchi_request_duration_seconds_count") < 3 &&
		time.Now().Before(deadline); after = scrape(t, p.admin) {
		time.Sleep(20 * time.Millisecond)
	}
	delta := func(name string, labels ...string) float64 {
		return sum(after, name, labels...) - sum(before, name, labels...)
	}
	checks := []struct {
		what string
		got  float64
		want float64
	}{
		{"requests PutObject 200", delta("mizuchi_requests_total", "bucket", "uploads", "operation", "PutObject", "status", "200"), 3},
		{"requests 403", delta("mizuchi_requests_total", "status", "403"), 2},
		{"request bytes", delta("mizuchi_request_bytes_total"), float64(total)},
		{"transfer bytes", delta("mizuchi_transfer_bytes_total"), float64(total)},
		{"spliced bytes ≥ the two large bodies minus what came with the heads", boolf(delta("mizuchi_transfer_bytes_total", "mode", "splice") >= float64(sizes[2]-(1<<20))), 1},
		{"duration histogram count", delta("mizuchi_request_duration_seconds_count", "operation", "PutObject"), 3},
		{"auth failures", delta("mizuchi_auth_failures_total", "reason", "SignatureDoesNotMatch"), 1},
		{"refusals AccessDenied", delta("mizuchi_refusals_total", "reason", "AccessDenied"), 1},
		{"uploads active", sum(after, "mizuchi_uploads_active"), 0},
		{"ready", sum(after, "mizuchi_ready"), 1},
		{"upstream up", sum(after, "mizuchi_upstream_up", "endpoint", up.Endpoint), 1},
		{"response bytes moved", boolf(delta("mizuchi_response_bytes_total") > 0), 1},
		{"go runtime metrics", boolf(sum(after, "go_goroutines") > 0), 1},
		{"process metrics", boolf(sum(after, "process_resident_memory_bytes") > 0), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v; want %v", c.what, c.got, c.want)
		}
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// The access log has one JSON line per request with the documented fields and the request id the
// client saw; no log holds a secret, a signature or an Authorization value, even at debug level.
func TestAccessLogAndNoSecretsInLogs(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "logged")
	p := configless(t, up, "logged", "-log-format", "json", "-log-level", "debug")

	cl := dialClient(t, p.addr)
	resp, body, err := cl.put("uploads", "dir/file one", 2<<20)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT: %v %v %s", err, resp, body)
	}
	resp, _, err = dialClient(t, p.addr).putAs("uploads", "bad", 10, clientAK, "wrong-secret", nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("bad signature: %v %v", err, resp)
	}
	refusedID := resp.Header.Get("X-Amz-Request-Id")
	f := s3test.TempFile(t, s3test.RandomBytes(6<<20, 1))
	env := s3test.ClientEnv{Endpoint: "http://" + p.addr, AccessKey: clientAK, SecretKey: clientSK}
	if out, errOut, err := s3test.RunAWS(t, env, "s3", "cp", f, "s3://uploads/cli/object"); err != nil {
		t.Fatalf("aws s3 cp: %v\n%s\n%s", err, out, errOut)
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	lines := strings.Split(strings.TrimSpace(p.stdout.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d access log lines; want 3:\n%s", len(lines), p.stdout.String())
	}
	var recs []map[string]any
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("access log line is not JSON: %q", l)
		}
		for _, k := range []string{"time", "request_id", "remote", "principal", "bucket", "key", "operation", "status", "bytes_in", "bytes_out", "duration_ms", "mode", "upstream_status"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("access log line lacks %s: %s", k, l)
			}
		}
		recs = append(recs, rec)
	}
	// A line is written once its answer is sent, so the next request's line may come first: put
	// them in request order (request ids are a per-process prefix and a counter, in hex).
	order := []int{0, 1, 2}
	sort.Slice(order, func(a, b int) bool {
		return recs[order[a]]["request_id"].(string) < recs[order[b]]["request_id"].(string)
	})
	recs = []map[string]any{recs[order[0]], recs[order[1]], recs[order[2]]}
	lines = []string{lines[order[0]], lines[order[1]], lines[order[2]]}
	if r := recs[0]; r["key"] != "dir/file one" || r["status"] != 200.0 || r["bytes_in"] != float64(2<<20) || r["principal"] != clientAK ||
		r["operation"] != "PutObject" || r["upstream_status"] != 200.0 || r["bucket"] != "uploads" || r["mode"] != "splice" {
		t.Errorf("access log line of the PUT: %s", lines[0])
	}
	if r := recs[1]; r["request_id"] != refusedID || r["status"] != 403.0 || r["principal"] != "" || r["mode"] != "refused" {
		t.Errorf("access log line of the refused PUT (client got request id %q): %s", refusedID, lines[1])
	}
	if r := recs[2]; r["key"] != "cli/object" || r["bytes_in"] != float64(6<<20) || r["status"] != 200.0 {
		t.Errorf("access log line of aws s3 cp: %s", lines[2])
	}
	logs := p.stdout.String() + p.stderr.String()
	for _, secret := range []string{clientSK, up.SecretKey, "Signature=", "AWS4-HMAC-SHA256 Credential", "wrong-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %q", secret)
		}
	}
	if !strings.Contains(p.stderr.String(), `"level":"INFO"`) {
		t.Errorf("process log is not JSON on stderr:\n%s", p.stderr.String())
	}
}

// slowUpload sends a head for size bytes and the first part bytes of the body; the caller sends
// the rest with more.
type slowUpload struct {
	c    net.Conn
	sent int64
	size int64
}

func startSlowUpload(t *testing.T, addr, key string, size, first int64) *slowUpload {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, signedHead(t, "PUT", addr, "/uploads/"+key, size, clientAK, clientSK, nil)); err != nil {
		t.Fatal(err)
	}
	u := &slowUpload{c: c, size: size}
	u.more(t, first)
	return u
}

// status reads the answer's status line.
func (u *slowUpload) status(t *testing.T) int {
	t.Helper()
	_ = u.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(u.c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (u *slowUpload) more(t *testing.T, n int64) {
	t.Helper()
	pat := &pattern{off: int(u.sent % 251)}
	if _, err := io.CopyN(u.c, pat, n); err != nil {
		t.Fatalf("body write after %d bytes: %v", u.sent, err)
	}
	u.sent += n
}

// SIGTERM with a slow upload in flight: /readyz turns 503 at once, new connections are refused,
// the upload completes, the process exits 0.
func TestDrainLetsUploadFinish(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "drain")
	p := configless(t, up, "drain", "-drain-timeout", "30s")
	const size = 8 << 20
	u := startSlowUpload(t, p.addr, "slow", size, 1<<20)
	waitMetric(t, p.admin, "mizuchi_uploads_active", 1)

	p.signal(t, syscall.SIGTERM)
	deadline := time.Now().Add(time.Second)
	for {
		code, body := p.get(t, "/readyz")
		if code == 503 && strings.Contains(body, "draining") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d %q one second after SIGTERM; want 503 draining", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := p.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz while draining: %d", code)
	}
	// Once the listeners are closed, a new connection gets no service: refused, or closed without an
	// answer. (One the kernel queued before that is served its first request, with Connection: close,
	// as engine's TestDrainServesAcceptedConnection shows: /readyz says draining a moment before the
	// listeners close, so the test waits for the log line that says they are.)
	waitUntil(t, func() bool { return strings.Contains(p.stderr.String(), "listeners closed") })
	if c, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = io.WriteString(c, signedHead(t, "PUT", p.addr, "/uploads/late", 1, clientAK, clientSK, nil)+"x")
		b, _ := io.ReadAll(c)
		if strings.HasPrefix(string(b), "HTTP/1.1 200") {
			t.Errorf("a new connection was served while draining: %q", b)
		}
		c.Close()
	}
	// The upload in flight finishes, slowly.
	for u.sent < size {
		time.Sleep(50 * time.Millisecond)
		u.more(t, min(1<<20, size-u.sent))
	}
	if code := u.status(t); code != 200 {
		t.Fatalf("upload in flight during the drain: %d", code)
	}
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d after a drain; want 0", code)
	}
	out, err := up.Client().HeadObject(context.Background(), headInput("drain", "slow"))
	if err != nil || aws.ToInt64(out.ContentLength) != size {
		t.Fatalf("upstream object after the drain: %v %+v", err, out)
	}
	if up.ObjectExists(t, "drain", "late") {
		t.Error("the request on a new connection reached the upstream")
	}
}

// At the drain deadline, stalled uploads are cut: the process exits 0 soon after, the upstream holds
// neither a partial object nor an unfinished multipart upload.
func TestDrainDeadlineLeavesNoPartialObject(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "cut")
	p := configless(t, up, "cut", "-drain-timeout", "1s", "-multipart-threshold", "6MiB", "-part-size", "5MiB")
	before := scrape(t, p.admin)
	startSlowUpload(t, p.addr, "plain", 4<<20, 1<<20)
	startSlowUpload(t, p.addr, "chunked", 20<<20, 7<<20)
	// Wait until the first part of the auto-chunked upload was stored upstream.
	deadline := time.Now().Add(15 * time.Second)
	for sum(scrape(t, p.admin), "mizuchi_multipart_parts_sent_total")-sum(before, "mizuchi_multipart_parts_sent_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("first part not sent upstream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := len(up.ListMultipartUploads(t, "cut")); n != 1 {
		t.Fatalf("%d multipart uploads upstream before SIGTERM; want 1", n)
	}
	start := time.Now()
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d; want 0", code)
	}
	t.Logf("exited %v after SIGTERM with -drain-timeout 1s", time.Since(start).Round(time.Millisecond))
	time.Sleep(200 * time.Millisecond) // let the upstream notice the reset connections
	for _, key := range []string{"plain", "chunked"} {
		if up.ObjectExists(t, "cut", key) {
			t.Errorf("object %s exists upstream after its upload was cut", key)
		}
	}
	if ups := up.ListMultipartUploads(t, "cut"); len(ups) != 0 {
		t.Errorf("%d multipart uploads left upstream", len(ups))
	}
	if !strings.Contains(p.stderr.String(), "drain deadline") {
		t.Errorf("no drain-deadline line in the log:\n%s", p.stderr.String())
	}
}

// waitMetric waits until the sum of name's series with labels ("k", "v", ...) is want.
func waitMetric(t *testing.T, admin, name string, want float64, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for sum(scrape(t, admin), name, labels...) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v; want %v", name, labels, sum(scrape(t, admin), name, labels...), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGHUP adds a bucket without dropping a connection; a broken file keeps the running configuration.
func TestSIGHUPReload(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "first")
	up.CreateBucket(t, "second")
	addr, admin := addrs(t)
	bucket := func(name, upBucket string) string {
		return "  - name: " + name + "\n    s3: {bucket: " + upBucket + ", endpoint: \"" + up.Endpoint +
			"\", access_key: \"${UP_AK}\", secret_key: \"${UP_SK}\"}\n    auth: {sigv4: {credentials: [{access_key: " + clientAK + ", secret_key: \"${CLIENT_SK}\"}]}}\n"
	}
	head := "server: {address: \"" + addr + "\", event_loops: 2}\nmetrics: {address: \"" + admin + "\"}\nbuckets:\n"
	path := filepath.Join(t.TempDir(), "config.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(head + bucket("uploads", "first"))
	p := launch(t, addr, admin, []string{"-config", path}, cleanEnv("UP_AK="+up.AccessKey, "UP_SK="+up.SecretKey, "CLIENT_SK="+clientSK))
	p.waitReady(t)

	old := dialClient(t, addr)
	if resp, body, err := old.put("uploads", "before", 100<<10); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT before reload: %v %v %s", err, resp, body)
	}
	if resp, _, err := dialClient(t, addr).put("second", "x", 10); err != nil || resp.StatusCode != 403 {
		t.Fatalf("PUT to a bucket not yet configured: %v %v; want 403", err, resp)
	}

	write(head + bucket("uploads", "first") + bucket("second", "second"))
	p.signal(t, syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, _, err := dialClient(t, addr).put("second", "new", 64<<10)
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new bucket not served after SIGHUP: %v %v", err, resp)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !up.ObjectExists(t, "second", "new") {
		t.Error("object in the new bucket not stored")
	}
	// The connection opened before the reload is still alive and served.
	if resp, body, err := old.put("uploads", "after", 100<<10); err != nil || resp.StatusCode != 200 {
		t.Fatalf("PUT on the connection opened before the reload: %v %v %s", err, resp, body)
	}

	// A broken file is rejected; both buckets keep working on the old connection.
	write(head + bucket("uploads", "first") + "    bogus_key: 1\n")
	p.signal(t, syscall.SIGHUP)
	waitMetric(t, admin, "mizuchi_config_reloads_total", 1, "result", "error")
	if !strings.Contains(p.stderr.String(), "configuration reload failed") || !strings.Contains(p.stderr.String(), "bogus_key") {
		t.Errorf("reload failure not logged:\n%s", p.stderr.String())
	}
	if resp, body, err := old.put("second", "still", 10<<10); err != nil || resp.StatusCode != 200 {
		t.Errorf("bucket of the running configuration after a bad reload: %v %v %s", err, resp, body)
	}
	if code, _ := p.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz after a bad reload: %d", code)
	}
}

// /readyz is 503 while the upstream cannot be reached and turns 200 when it can; /healthz stays 200.
func TestReadyzFollowsUpstream(t *testing.T) {
	port := s3test.FreePort(t)
	upAddr := "127.0.0.1:" + strconv.Itoa(port)
	addr, admin := addrs(t)
	p := launch(t, addr, admin, []string{"-bucket", "uploads", "-upstream", "http://" + upAddr, "-auth-none",
		"-listen", addr, "-admin-address", admin, "-dial-timeout", "500ms"},
		cleanEnv("AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=s"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := p.get(t, "/readyz")
		if code == 503 && strings.Contains(body, upAddr+" unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d %q; want 503 naming the unreachable upstream", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := p.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz with the upstream down: %d", code)
	}
	if v := sum(scrape(t, admin), "mizuchi_upstream_up"); v != 0 {
		t.Errorf("mizuchi_upstream_up = %v with the upstream down", v)
	}
	l, err := net.Listen("tcp", upAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	p.waitReady(t)
}

// A second SIGTERM cuts a long drain short: the stalled upload is cut (nothing stored), exit 0.
func TestSecondSignalCutsDrain(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "twice")
	p := configless(t, up, "twice", "-drain-timeout", "5m")
	startSlowUpload(t, p.addr, "stalled", 4<<20, 1<<20)
	waitMetric(t, p.admin, "mizuchi_uploads_active", 1)
	p.signal(t, syscall.SIGTERM)
	waitMetric(t, p.admin, "mizuchi_draining", 1)
	time.Sleep(200 * time.Millisecond)
	select {
	case <-p.exited:
		t.Fatal("exited before the drain timeout with an upload in flight")
	default:
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Errorf("exit code %d; want 0", code)
	}
	if up.ObjectExists(t, "twice", "stalled") {
		t.Error("partial object stored")
	}
	if !strings.Contains(p.stderr.String(), "second signal") {
		t.Errorf("no second-signal line:\n%s", p.stderr.String())
	}
}

// -upstream-max-conns 1: while one upload holds the only upstream connection, another request waits
// -dial-timeout and gets 503 SlowDown; -zero-copy=false moves bodies by copy; -access-log=false
// leaves stdout empty.
func TestUpstreamMaxConnsCopyAndNoAccessLog(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "limited")
	p := configless(t, up, "limited", "-upstream-max-conns", "1", "-dial-timeout", "300ms", "-zero-copy=false", "-access-log=false")
	u := startSlowUpload(t, p.addr, "holder", 2<<20, 1<<20)
	waitMetric(t, p.admin, "mizuchi_upstream_open_connections", 1)
	start := time.Now()
	resp, body, err := dialClient(t, p.addr).put("uploads", "second", 10)
	if err != nil || resp.StatusCode != 503 || !strings.Contains(body, "SlowDown") {
		t.Fatalf("request beyond -upstream-max-conns: %v %v %s; want 503 SlowDown", err, resp, body)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("answered after %v; want a wait of about -dial-timeout 300ms", waited)
	}
	u.more(t, 1<<20)
	if code := u.status(t); code != 200 {
		t.Fatalf("holder upload: %d", code)
	}
	// The counters move just after the answer is written.
	deadline := time.Now().Add(5 * time.Second)
	for sum(scrape(t, p.admin), "mizuchi_transfer_bytes_total", "mode", "copy") < 2<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("copied %v bytes; want at least %d", sum(scrape(t, p.admin), "mizuchi_transfer_bytes_total", "mode", "copy"), 2<<20)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := sum(scrape(t, p.admin), "mizuchi_transfer_bytes_total", "mode", "splice"); s != 0 {
		t.Errorf("spliced %v bytes with -zero-copy=false", s)
	}
	p.signal(t, syscall.SIGTERM)
	p.wait(t, 15*time.Second)
	if out := p.stdout.String(); out != "" {
		t.Errorf("stdout with -access-log=false: %q", out)
	}
}
