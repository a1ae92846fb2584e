package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// proc is a proxy process started with arbitrary arguments; stdout (the access log) and stderr
// are kept apart.
type proc struct {
	cmd            *exec.Cmd
	addr, admin    string
	stdout, stderr *lockedBuffer
	exited         chan struct{}
	exitCode       int
}

// cleanEnv is the test's environment without credentials a config-less start would pick up.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "MIZUCHI_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// launch runs the binary with args (which must set -listen and -admin-address to addr and admin)
// and env. It does not wait for readiness. Cleanup sends SIGTERM and waits.
func launch(t *testing.T, addr, admin string, args, env []string) *proc {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	return startProc(t, "proxy", cmd, addr, admin, false)
}

// startProc starts cmd (the proxy, or a script that runs it on addr and admin) with its output
// kept. At cleanup it sends SIGTERM and waits up to 20 s (then kills it and fails: "<name> did not
// exit after SIGTERM"); when the test failed it logs the stderr (and the stdout, withStdout).
func startProc(t *testing.T, name string, cmd *exec.Cmd, addr, admin string, withStdout bool) *proc {
	t.Helper()
	p := &proc{cmd: cmd, addr: addr, admin: admin, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		p.exitCode = cmd.ProcessState.ExitCode()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // run-local.sh's trap passes it on to the proxy and versitygw
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not exit after SIGTERM", name)
		}
		switch {
		case !t.Failed():
		case withStdout:
			t.Logf("%s stdout:\n%s\nstderr:\n%s", name, p.stdout.String(), p.stderr.String())
		default:
			t.Logf("%s stderr:\n%s", name, p.stderr.String())
		}
	})
	return p
}

// addrs returns a free proxy address and a free admin address on loopback.
func addrs(t *testing.T) (string, string) {
	return fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t))
}

// waitReady polls /readyz until 200.
func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := p.get(t, "/readyz")
		if code == 200 {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("proxy exited with %d:\n%s", p.exitCode, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy not ready: %d %s\n%s", code, body, p.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get fetches an admin path; code 0 if the admin listener does not answer.
func (p *proc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.admin + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.exitCode
	case <-time.After(d):
		t.Fatalf("proxy still running %v later:\n%s", d, p.stderr.String())
		return -1
	}
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// scrape reads /metrics into series -> value.
func scrape(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

var seriesRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$`)
var labelRe = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// sum adds the series of metric name whose labels include every label given ("k", "v", ...),
// whatever their order or other labels.
func sum(m map[string]float64, name string, labels ...string) float64 {
	var total float64
	for series, v := range m {
		sm := seriesRe.FindStringSubmatch(series)
		if sm == nil || sm[1] != name {
			continue
		}
		have := map[string]string{}
		for _, lm := range labelRe.FindAllStringSubmatch(sm[2], -1) {
			have[lm[1]] = lm[2]
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				ok = false
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// signedHead returns a SigV4-signed (UNSIGNED-PAYLOAD) request head for method path with
// Content-Length size, signed with the client credentials ak/sk, plus extra headers (signed too).
func signedHead(t *testing.T, method, addr, path string, size int64, ak, sk string, extra map[string]string) string {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: addr, Path: path}
	req, _ := http.NewRequest(method, u.String(), nil)
	req.ContentLength = size
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, req,
		"UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, u.EscapedPath(), addr, size)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
	}
	head.WriteString("\r\n")
	return head.String()
}

// client is one keep-alive client connection to the proxy.
type client struct {
	t    *testing.T
	addr string
	c    net.Conn
	br   *bufio.Reader
}

func dialClient(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, addr: addr, c: c, br: bufio.NewReader(c)}
}

// put sends a signed PUT of size pattern bytes on the connection and reads the answer.
func (cl *client) put(bucket, key string, size int64) (*http.Response, string, error) {
	return cl.putAs(bucket, key, size, clientAK, clientSK, nil)
}

func (cl *client) putAs(bucket, key string, size int64, ak, sk string, extra map[string]string) (*http.Response, string, error) {
	head := signedHead(cl.t, "PUT", cl.addr, "/"+bucket+"/"+key, size, ak, sk, extra)
	_ = cl.c.SetDeadline(time.Now().Add(60 * time.Second))
	go func() {
		_, _ = io.WriteString(cl.c, head)
		_, _ = io.CopyN(cl.c, &pattern{}, size)
	}()
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		return nil, "", err
	}
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), nil
}
