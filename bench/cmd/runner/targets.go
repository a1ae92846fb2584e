package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
	"github.com/mizuchi/uploadr/bench/internal/procstat"
	"github.com/mizuchi/uploadr/internal/freeport"
)

// Credentials every client, proxy and upstream of a run uses (loopback only; versitygw's root).
const (
	accessKey = "mizuchi-bench"
	secretKey = "mizuchi-bench-secret"
	region    = "us-east-1"
)

// proc is a process the runner started and stops.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited and was reaped
}

// target is one way to reach the upstream.
type target struct {
	name string
	addr string // host:port the load goes to
	// bucket and openBucket are the paths' first segment for signed and for auth: none loads.
	bucket, openBucket string
	main               *proc // nil for direct
	multi              bool  // measure main and its children (nginx master + workers)
	tls                bool  // the load speaks https to addr (TLS phase)
	// start starts a fresh process of this target (on a new port); nil for direct.
	start func() (*target, error)
}

// restart replaces t's process by a fresh one, so that memory figures do not carry what earlier
// workloads left in the heap.
func (r *runner) restart(t *target) error {
	if t.start == nil {
		return nil
	}
	r.stop(t.main)
	start := t.start
	nt, err := start()
	if err != nil {
		return fmt.Errorf("restart %s: %w", t.name, err)
	}
	*t = *nt
	t.start = start // keep it for the next restart
	return nil
}

// pids returns the processes whose CPU and memory are the target's cost; none for direct.
func (t *target) pids() ([]int, error) {
	if t.main == nil {
		return nil, nil
	}
	pid := t.main.cmd.Process.Pid
	if !t.multi {
		return []int{pid}, nil
	}
	kids, err := procstat.Children(pid)
	if err != nil {
		return nil, err
	}
	return append([]int{pid}, kids...), nil
}

// freePort is a loopback address on a port below the kernel's ephemeral range, where the load's
// own connections never take it before the target binds it (freeport).
func freePort() (string, error) {
	p, err := freeport.Pick()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

func (r *runner) start(name string, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(r.work, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	r.procs = append(r.procs, p)
	go func() {
		_ = cmd.Wait() // the exit status does not matter: liveness is checked by dialing
		close(p.done)
	}()
	return p, nil
}

// waitReady dials addr until it accepts or 15 s pass.
func waitReady(p *proc, addr string) error {
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
	}
	tail, _ := os.ReadFile(p.log)
	return fmt.Errorf("%s did not listen on %s within 15 s; log:\n%s", p.name, addr, lastLines(string(tail), 20))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func (r *runner) stopAll() {
	for i := len(r.procs) - 1; i >= 0; i-- {
		r.stop(r.procs[i])
	}
	r.procs = nil
}

func (r *runner) stop(p *proc) {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// upstream is where every target forwards: the sink or versitygw.
type upstream struct {
	name    string
	addr    string
	tlsAddr string // the sink's https address (TLS phase); empty otherwise
	proc    *proc
	data    string // versitygw's data dir, removed at the end
}

// startSink starts the sink; withTLS adds its https listener (the TLS phase's upstream, which
// serves plain http on addr as well, for the proxies whose TLS is on the client side).
func (r *runner) startSink(withTLS bool) (*upstream, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-listen", addr}
	name := "sink"
	tlsAddr := ""
	if withTLS {
		if tlsAddr, err = freePort(); err != nil {
			return nil, err
		}
		files, err := r.tlsFiles()
		if err != nil {
			return nil, err
		}
		args = append(args, "-tls-listen", tlsAddr, "-tls-cert", files.Cert, "-tls-key", files.Key)
		name = "sink-tls"
	}
	p, err := r.start(name, nil, filepath.Join(r.bin, "sink"), args...)
	if err != nil {
		return nil, err
	}
	u := &upstream{name: name, addr: addr, tlsAddr: tlsAddr, proc: p}
	if err := waitReady(p, addr); err != nil || tlsAddr == "" {
		return u, err
	}
	return u, waitReady(p, tlsAddr)
}

func (r *runner) startVersitygw() (*upstream, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := "/dev/shm"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = r.work
	}
	data, err := os.MkdirTemp(dir, "mizuchi-bench-versitygw-")
	if err != nil {
		return nil, err
	}
	p, err := r.start("versitygw", []string{"ROOT_ACCESS_KEY=" + accessKey, "ROOT_SECRET_KEY=" + secretKey},
		r.versitygw, "--port", addr, "--health", "/health", "--keep-alive", "--quiet", "posix", data)
	if err != nil {
		return nil, err
	}
	u := &upstream{name: "versitygw", addr: addr, proc: p, data: data}
	if err := waitReady(p, addr); err != nil {
		return u, err
	}
	out, err := exec.Command(filepath.Join(r.bin, "loadgen"), "-mkbucket", "-addr", addr, "-bucket", "bench",
		"-access-key", accessKey, "-secret-key", secretKey).CombinedOutput()
	if err != nil {
		return u, fmt.Errorf("create bucket on versitygw: %v: %s", err, out)
	}
	return u, nil
}

// startTargets starts every selected proxy in front of up (the baseline when there is one) and
// returns them with "direct" first.
func (r *runner) startTargets(ctx context.Context, up *upstream) ([]*target, error) {
	var ts []*target
	if r.want("direct") {
		ts = append(ts, &target{name: "direct", addr: up.addr, bucket: "bench", openBucket: "bench"})
	}
	type starter struct {
		name  string
		start func() (*target, error)
	}
	starts := []starter{
		{"mizuchi-splice", func() (*target, error) { return r.startMizuchi("mizuchi-splice", r.mizuchi, true, up, tlsSides{}) }},
	}
	if r.baseline != "" {
		starts = append(starts, starter{baseTarget, func() (*target, error) { return r.startMizuchi(baseTarget, r.baseline, true, up, tlsSides{}) }})
	}
	starts = append(starts, starter{"mizuchi-copy", func() (*target, error) { return r.startMizuchi("mizuchi-copy", r.mizuchi, false, up, tlsSides{}) }})
	if r.nginx != "" {
		starts = append(starts, starter{"nginx", func() (*target, error) { return r.startNginx("nginx", up, tlsSides{}) }})
	}
	if r.haproxy != "" {
		starts = append(starts, starter{"haproxy", func() (*target, error) { return r.startHAProxy("haproxy", up, tlsSides{}) }})
	}
	starts = append(starts, starter{"splicerelay", func() (*target, error) { return r.startRelay("splicerelay", up) }})
	if r.targets[threadsRelay] { // an experiment: only when -targets names it
		starts = append(starts, starter{threadsRelay, func() (*target, error) { return r.startRelay(threadsRelay, up, "-threads") }})
	}
	starts = append(starts, starter{"goproxy", func() (*target, error) {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		p, err := r.start("goproxy-"+up.name, nil, filepath.Join(r.bin, "goproxy"), "-listen", addr, "-upstream", "http://"+up.addr,
			"-access-key", accessKey, "-secret-key", secretKey, "-region", region)
		if err != nil {
			return nil, err
		}
		return &target{name: "goproxy", addr: addr, bucket: "bench", openBucket: "bench", main: p}, waitReady(p, addr)
	}})
	for _, s := range starts {
		if !r.want(s.name) {
			continue
		}
		t, err := s.start()
		if err != nil {
			return nil, err
		}
		t.start = s.start
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return nil, fmt.Errorf("no target selected")
	}
	return ts, ctx.Err()
}

// threadsRelay is the bare relay with filling and draining overlapped by a reader and a writer
// thread (splicerelay -threads). It runs only when -targets names it.
const threadsRelay = "splicerelay-threads"

// startRelay starts bench/cmd/splicerelay in front of up as target name, with args added.
func (r *runner) startRelay(name string, up *upstream, args ...string) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	args = append([]string{"-listen", addr, "-upstream", up.addr}, args...)
	p, err := r.start(name+"-"+up.name, nil, filepath.Join(r.bin, "splicerelay"), args...)
	if err != nil {
		return nil, err
	}
	return &target{name: name, addr: addr, bucket: "bench", openBucket: "bench", main: p}, waitReady(p, addr)
}

// want reports whether target name is selected (-targets).
func (r *runner) want(name string) bool { return r.targets == nil || r.targets[name] }

// mizuchiConfig writes the configuration file of a mizuchi target. Like nginx's access_log off, it
// turns the access log off (log.access: false) if bin takes that key; a binary that predates the key
// refuses the file (`-check` exits non-zero on an unknown key) and runs with the plain one, its access
// log at its default (revisions before the key wrote none — 0425cbc logs nothing — so both then log
// nothing). How each binary ran goes into the results (mizuchi_access_log, baseline_access_log). The
// flags (-zero-copy) go into the probe too: a binary that does not know one is an error, not a
// fallback, since leaving the flag out would quietly measure another path (every revision the harness
// can measure has -zero-copy).
func (r *runner) mizuchiConfig(bin, conf, quiet, plain string, args []string) error {
	probe := func(text string) (string, error) {
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return "", err
		}
		out, err := exec.Command(bin, append([]string{"-check", "-config", conf}, args...)...).CombinedOutput()
		if err != nil {
			return string(bytes.TrimSpace(out)), nil
		}
		return "", nil
	}
	if r.accessLog == nil {
		r.accessLog = map[string]string{}
	}
	why, err := probe(quiet)
	if err != nil || why == "" {
		if err == nil {
			r.accessLog[bin] = "off"
		}
		return err
	}
	why2, err := probe(plain)
	if err != nil {
		return err
	}
	if why2 != "" {
		return fmt.Errorf("%s refuses the bench configuration or flags %q even without log.access: %s", bin, args, why2)
	}
	if r.accessLog[bin] != "default" {
		fmt.Fprintf(os.Stderr, "runner: %s does not take log.access (%s); its access log is left at its default\n", bin, why)
	}
	r.accessLog[bin] = "default"
	return nil
}

// extraFlags are the -mizuchi-flags for bin: the measured binary takes them, the baseline does not
// (it is the reference, and may not know a new flag).
func (r *runner) extraFlags(bin string) []string {
	if bin != r.mizuchi || bin == r.baseline {
		return nil
	}
	return strings.Fields(r.mizuchiFlags)
}

// startMizuchi starts a mizuchi-uploadr target. With tls.client the load goes to its https listener
// (server.tls, TLS 1.3 only, the run's certificate); with tls.upstream its buckets' endpoint is the
// sink's https address, verified with the run's CA (s3.ca_file).
func (r *runner) startMizuchi(name, bin string, zeroCopy bool, up *upstream, tls tlsSides) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	admin, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(r.work, name+"-"+up.name+".yaml")
	endpoint, extra := "http://"+up.addr, ""
	if tls.upstream {
		endpoint, extra = "https://"+up.tlsAddr, fmt.Sprintf(", ca_file: %q", r.tls.CA)
	}
	bucket := func(name, auth string) string {
		return fmt.Sprintf("  - name: %s\n    s3: {bucket: bench, region: %s, endpoint: \"%s\", access_key: %s, secret_key: %s%s}\n    auth: %s\n",
			name, region, endpoint, accessKey, secretKey, extra, auth)
	}
	serverTLS, loadAddr := "", addr
	if tls.client {
		if loadAddr, err = freePort(); err != nil {
			return nil, err
		}
		driver := ""
		if tls.goroutine {
			driver = ", driver: goroutine"
		}
		serverTLS = fmt.Sprintf("  tls: {address: %q, cert_file: %q, key_file: %q, min_version: \"1.3\"%s}\n", loadAddr, r.tls.Cert, r.tls.Key, driver)
	}
	yaml := fmt.Sprintf("server:\n  address: %q\n  idle_timeout: 300s\n%supstream:\n  max_idle: 1024\nmetrics: {enabled: true, address: %q}\nlog: {level: warn}\nbuckets:\n", addr, serverTLS, admin) +
		bucket("bench", fmt.Sprintf("{sigv4: {credentials: [{access_key: %s, secret_key: %s}]}}", accessKey, secretKey)) +
		bucket("open", "none")
	// Like nginx's access_log off: no access-log line per request, where the binary knows the key.
	quiet := strings.Replace(yaml, "log: {level: warn}", "log: {level: warn, access: false}", 1)
	flags := append([]string{fmt.Sprintf("-zero-copy=%v", zeroCopy)}, r.extraFlags(bin)...)
	if err := r.mizuchiConfig(bin, conf, quiet, yaml, flags); err != nil {
		return nil, err
	}
	p, err := r.start(name+"-"+up.name, nil, bin, append([]string{"-config", conf}, flags...)...)
	if err != nil {
		return nil, err
	}
	if err := waitReady(p, loadAddr); err != nil {
		return nil, err
	}
	return &target{name: name, addr: loadAddr, bucket: "bench", openBucket: "open", main: p, tls: tls.client}, nil
}

// nginxConf is a plain reverse proxy: request bodies streamed (proxy_request_buffering off),
// HTTP/1.1 to the upstream with a keep-alive pool, the client's Host passed (so that a client's
// signature still verifies at versitygw), no access log.
const nginxConf = `worker_processes %[8]s;
worker_rlimit_nofile 19000;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
daemon off;
%[4]s
events { worker_connections 40000; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  client_max_body_size 0;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  upstream up {
    server %[3]s;
    keepalive 1024;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen %[2]s%[5]s;
    location / {
      proxy_pass %[6]s://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_request_buffering off;
%[7]s    }
  }
}
`

// nginxTLSListen and nginxTLSUpstream are the server and location additions of the TLS targets:
// TLS 1.3 only, pinned to benchtls.Suite, the run's certificate; to the upstream: sessions reused,
// the sink's certificate verified against the run's CA (for the name localhost, on its SAN).
const (
	nginxTLSListen = ` ssl;
    ssl_certificate %[1]s;
    ssl_certificate_key %[2]s;
    ssl_protocols TLSv1.3;
    ssl_conf_command Ciphersuites %[3]s;
    ssl_session_cache shared:SSL:10m`
	nginxTLSUpstream = `      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_conf_command Ciphersuites %[2]s;
      proxy_ssl_session_reuse on;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate %[1]s;
      proxy_ssl_name localhost;
`
)

// startNginx starts an nginx target (tls: see nginxTLSListen, nginxTLSUpstream).
func (r *runner) startNginx(name string, up *upstream, tls tlsSides) (*target, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	listen, scheme, upTLS, upAddr := "", "http", "", up.addr
	if tls.client {
		listen = fmt.Sprintf(nginxTLSListen, r.tls.Cert, r.tls.Key, benchtls.Suite)
	}
	if tls.upstream {
		scheme, upTLS, upAddr = "https", fmt.Sprintf(nginxTLSUpstream, r.tls.CA, benchtls.Suite), up.tlsAddr
	}
	dir := filepath.Join(r.work, name+"-"+up.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, dir, addr, upAddr, user, listen, scheme, upTLS, r.nginxWorkers()), 0o644); err != nil {
		return nil, err
	}
	p, err := r.start(name+"-"+up.name, nil, r.nginx, "-p", dir, "-c", conf)
	if err != nil {
		return nil, err
	}
	if err := waitReady(p, addr); err != nil {
		return nil, err
	}
	// The master listens before it forks its workers: a run measured before they exist would
	// count the master alone (no CPU).
	if err := waitChildren(p, r.peerThreadCount()); err != nil {
		return nil, err
	}
	return &target{name: name, addr: addr, bucket: "bench", openBucket: "bench", main: p, multi: true, tls: tls.client}, nil
}

// waitChildren waits until p has n child processes, for up to 15 s.
func waitChildren(p *proc, n int) error {
	var kids []int
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		var err error
		if kids, err = procstat.Children(p.cmd.Process.Pid); err != nil || len(kids) >= n {
			return err
		}
	}
	return fmt.Errorf("%s has %d worker processes after 15 s; want %d", p.name, len(kids), n)
}
