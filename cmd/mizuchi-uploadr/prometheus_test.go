package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// rawScrape returns the text of the admin listener's /metrics.
func rawScrape(t *testing.T, admin string) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// runPromtool runs Debian's promtool (scripts/setup.sh installs it) with stdin and a deadline.
func runPromtool(t *testing.T, dir, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "promtool", args...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// family metadata of a scrape: family -> HELP text and TYPE; series names seen.
type exposition struct {
	help, typ map[string]string
	series    map[string]bool // metric names (histogram _bucket/_sum/_count included)
}

func parseExposition(t *testing.T, text string) exposition {
	t.Helper()
	e := exposition{help: map[string]string{}, typ: map[string]string{}, series: map[string]bool{}}
	for _, line := range strings.Split(text, "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "# HELP "):
			f := strings.SplitN(strings.TrimPrefix(line, "# HELP "), " ", 2)
			if len(f) < 2 {
				f = append(f, "")
			}
			e.help[f[0]] = f[1]
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(strings.TrimPrefix(line, "# TYPE "))
			if len(f) != 2 {
				t.Fatalf("bad TYPE line %q", line)
			}
			e.typ[f[0]] = f[1]
		case line[0] == '#':
		default:
			name := line[:strings.IndexAny(line, "{ ")]
			e.series[name] = true
		}
	}
	return e
}

// familyOf maps a series name to its family given the TYPEs seen.
func (e exposition) familyOf(name string) string {
	if _, ok := e.typ[name]; ok {
		return name
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(name, suf); ok {
			if typ := e.typ[f]; typ == "histogram" || typ == "summary" {
				return f
			}
		}
	}
	return ""
}

// mixedTraffic sends through the plain listener an accepted PUT (inline), a large one (spliced)
// and one refused for a wrong secret, and through the https listener an SDK PUT.
func mixedTraffic(t *testing.T, p *tlsProxy) {
	t.Helper()
	cl := dialClient(t, p.addr)
	for i, size := range []int64{1000, 3 << 20} {
		resp, body, err := cl.put("uploads", fmt.Sprintf("m/%d", i), size)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT %d: %v %v %s", size, err, resp, body)
		}
	}
	resp, _, err := dialClient(t, p.addr).putAs("uploads", "m/bad", 10, clientAK, "not-the-secret", nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("wrong secret: %v %v; want 403", err, resp)
	}
	if _, err := p.sdk(t).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("uploads"),
		Key: aws.String("m/https"), Body: bytes.NewReader(randomBytes(t, 2000))}); err != nil {
		t.Fatal(err)
	}
}

// /metrics passes `promtool check metrics` (no lint problem: HELP and TYPE everywhere, counters
// named _total, units in names), every mizuchi_ family has a written HELP text, the histograms are
// Prometheus ones (le buckets), mizuchi_build_info names the binary and the certificate expiry
// gauge reads the served certificate's NotAfter.
func TestMetricsPassPromtool(t *testing.T) {
	p := startTLSProxy(t, "promlint")
	mixedTraffic(t, p)
	text := rawScrape(t, p.admin)
	if out, err := runPromtool(t, "", text, "check", "metrics"); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	e := parseExposition(t, text)
	for name := range e.series {
		fam := e.familyOf(name)
		if fam == "" {
			t.Errorf("%s: no TYPE line for its family", name)
			continue
		}
		if strings.HasPrefix(fam, "mizuchi_") && (e.help[fam] == "" || strings.HasPrefix(e.help[fam], "Undocumented")) {
			t.Errorf("%s: HELP %q", fam, e.help[fam])
		}
	}
	for fam, typ := range map[string]string{
		"mizuchi_requests_total": "counter", "mizuchi_request_duration_seconds": "histogram",
		"mizuchi_request_body_bytes": "histogram", "mizuchi_connections_active": "gauge",
		"mizuchi_upstream_open_connections": "gauge", "mizuchi_upstream_idle_connections": "gauge",
		"mizuchi_multipart_abort_retries_pending": "gauge", "mizuchi_build_info": "gauge",
		"mizuchi_tls_certificate_expiry_timestamp_seconds": "gauge", "mizuchi_ready": "gauge",
	} {
		if e.typ[fam] != typ {
			t.Errorf("TYPE %s = %q; want %s", fam, e.typ[fam], typ)
		}
	}
	m := scrape(t, p.admin)
	for _, le := range []string{"0.001", "600", "+Inf"} {
		if _, ok := m[`mizuchi_request_duration_seconds_bucket{operation="PutObject",le="`+le+`"}`]; !ok {
			t.Errorf("no duration bucket le=%s", le)
		}
	}
	if n := sum(m, "mizuchi_request_body_bytes_count", "operation", "PutObject"); n < 3 {
		t.Errorf("body size histogram counted %v PutObjects; want >= 3", n)
	}
	if v := sum(m, "mizuchi_request_body_bytes_bucket", "operation", "PutObject", "le", "1024"); v < 1 {
		t.Errorf("no PutObject body in the 1 KiB bucket: %v", v)
	}
	if v := sum(m, "mizuchi_build_info", "goversion", runtime.Version()); v != 1 {
		t.Errorf("mizuchi_build_info{goversion=%q} = %v; want 1\n%s", runtime.Version(), v, grepLines(text, "mizuchi_build_info"))
	}
	if !regexp.MustCompile(`(?m)^mizuchi_build_info\{version="[^"]+",revision="[^"]+",goversion="go[^"]+"\} 1$`).MatchString(text) {
		t.Errorf("build info: %s", grepLines(text, "mizuchi_build_info"))
	}
	pemBytes, err := os.ReadFile(p.certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if v := m["mizuchi_tls_certificate_expiry_timestamp_seconds"]; v != float64(cert.NotAfter.Unix()) {
		t.Errorf("certificate expiry %v; want %d", v, cert.NotAfter.Unix())
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// prometheus is a real Prometheus server (Debian's package) scraping the proxy every second.
type prometheus struct {
	url string
}

// startPrometheus runs prometheus on a free loopback port with a temporary configuration and
// database scraping target (and loading rules, if any), and stops it by pid at the end of the test.
func startPrometheus(t *testing.T, target string, rules ...string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"+
		"scrape_configs:\n  - job_name: mizuchi\n    static_configs: [{targets: [%q]}]\n", target)
	if len(rules) > 0 {
		cfg += "rule_files:\n"
		for _, r := range rules {
			cfg += fmt.Sprintf("  - %q\n", r)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
	var out lockedBuffer
	cmd := exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--web.listen-address="+addr, "--storage.tsdb.path="+filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("prometheus: %v (scripts/setup.sh installs Debian's prometheus package)", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("prometheus did not stop within 10 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	p := &prometheus{url: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) value(t *testing.T) float64 {
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample value %v: %v", s.Value, err)
	}
	return v
}

// query runs an instant query through the HTTP API.
func (p *prometheus) query(t *testing.T, q string) []sample {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %s %s", q, err, r.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		t.Fatalf("query %s: result type %s", q, r.Data.ResultType)
	}
	return r.Data.Result
}

// waitQuery polls q until ok accepts its result.
func (p *prometheus) waitQuery(t *testing.T, q string, d time.Duration, ok func([]sample) bool) []sample {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := p.query(t, q)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s: %v after %s", q, r, d)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// A real Prometheus scrapes /metrics: the request rate and the p90 latency from the le histogram
// come back through its HTTP API, and the scrape is healthy (up == 1, no sample refused).
func TestPrometheusScrapesProxy(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "promreal")
	r := startBinary(t, up, "promreal", nil, nil)
	prom := startPrometheus(t, r.admin)
	puts := func(round, n int) {
		cl := dialClient(t, r.addr)
		for i := 0; i < n; i++ {
			resp, body, err := cl.put("uploads", fmt.Sprintf("p/%d-%d", round, i), int64(1000*(i+1)))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("PUT: %v %v %s", err, resp, body)
			}
		}
	}
	// Round one creates the series; once Prometheus holds a sample of them, round two makes the
	// rate positive.
	puts(1, 5)
	prom.waitQuery(t, `mizuchi_requests_total{job="mizuchi",operation="PutObject",status="200"}`, 20*time.Second,
		func(s []sample) bool { return len(s) == 1 && s[0].value(t) >= 5 })
	puts(2, 10)
	prom.waitQuery(t, `sum(mizuchi_requests_total{operation="PutObject",status="200"})`, 10*time.Second,
		func(s []sample) bool { return len(s) == 1 && s[0].value(t) >= 15 })

	rate := prom.waitQuery(t, `sum by (operation, status) (rate(mizuchi_requests_total[1m]))`, 10*time.Second,
		func(s []sample) bool {
			for _, x := range s {
				if x.Metric["operation"] == "PutObject" && x.Metric["status"] == "200" && x.value(t) > 0 {
					return true
				}
			}
			return false
		})
	t.Logf("rate: %v", rate)
	p90 := prom.waitQuery(t, `histogram_quantile(0.9, sum by (le) (rate(mizuchi_request_duration_seconds_bucket{operation="PutObject"}[1m])))`,
		10*time.Second, func(s []sample) bool {
			if len(s) != 1 {
				return false
			}
			v := s[0].value(t)
			return v > 0 && v <= 600 // NaN fails both
		})
	t.Logf("p90 PutObject duration: %v s", p90[0].value(t))
	size := prom.query(t, `histogram_quantile(0.5, sum by (le) (rate(mizuchi_request_body_bytes_bucket{operation="PutObject"}[1m])))`)
	if len(size) != 1 || !(size[0].value(t) >= 1024 && size[0].value(t) <= 16<<10) {
		t.Errorf("median PutObject body size: %v; want within 1..16 KiB", size)
	}
	if s := prom.query(t, `up{job="mizuchi"}`); len(s) != 1 || s[0].value(t) != 1 {
		t.Errorf("up: %v", s)
	}
	// Prometheus knows each family's type from the metadata (none is "unknown").
	resp, err := http.Get(prom.url + "/api/v1/targets/metadata?match_target=" + url.QueryEscape(`{job="mizuchi"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct {
		Data []struct {
			Metric string `json:"metric"`
			Type   string `json:"type"`
			Help   string `json:"help"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, m := range md.Data {
		types[m.Metric] = m.Type
		if m.Type == "unknown" || m.Help == "" {
			t.Errorf("Prometheus metadata of %s: type %q help %q", m.Metric, m.Type, m.Help)
		}
	}
	if types["mizuchi_request_duration_seconds"] != "histogram" || types["mizuchi_requests_total"] != "counter" ||
		types["mizuchi_connections_active"] != "gauge" {
		t.Errorf("Prometheus metadata: %v", types)
	}
}
