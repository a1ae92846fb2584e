package s3test

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A Go tool the tests run as a server (versitygw, OPA, OpenFGA): built once into <repo root>/.tools/bin
// by its install script, checked by its build info.
type goTool struct {
	name, module, version, script string

	mu  sync.Mutex
	bin string // set once ensured
}

// path returns the tool's binary in <repo root>/.tools/bin (see ensure), cached once found.
func (g *goTool) path() (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bin != "" {
		return g.bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin, err := g.ensure(root)
	if err != nil {
		return "", err
	}
	g.bin = bin
	return bin, nil
}

// ensure returns root/.tools/bin/<name>, running root/scripts/<script> first when the binary is
// missing or another version (the script holds a file lock, so parallel test binaries build it
// once).
func (g *goTool) ensure(root string) (string, error) {
	bin := filepath.Join(root, ".tools", "bin", g.name)
	err := g.check(bin)
	if err == nil {
		return bin, nil
	}
	script := filepath.Join(root, "scripts", g.script)
	cmd := exec.Command("bash", script)
	cmd.Dir = root
	out, rerr := cmd.CombinedOutput()
	if rerr != nil {
		return "", fmt.Errorf("s3test: %s (binary: %v): %w\n%s", script, err, rerr, tail(out, 4096))
	}
	if err := g.check(bin); err != nil {
		return "", fmt.Errorf("s3test: after %s: %w", script, err)
	}
	return bin, nil
}

// check reports whether bin is an executable Go binary whose main module is the tool's at the
// pinned version (the build info `go version -m` prints).
func (g *goTool) check(bin string) error {
	st, err := os.Stat(bin)
	if err != nil {
		return err
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", bin)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	if info.Main.Path != g.module || info.Main.Version != g.version {
		return fmt.Errorf("%s is %s %s, want %s %s", bin, info.Main.Path, info.Main.Version, g.module, g.version)
	}
	return nil
}

// process is a server the tests started: its output kept, stopped by pid with a deadline, and
// killed by the kernel if the test binary dies first.
type process struct {
	name     string // for messages: "opa on 127.0.0.1:PORT"
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been waited for
	waitErr  error         // valid after exited is closed
	output   *tailBuffer   // the process's stdout and stderr, last 64 KiB
	stopOnce sync.Once
}

// startProcess runs a Go tool's server: bin with args, in the test's environment without OPA_
// and OPENFGA_ variables.
func startProcess(name, bin string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = filterEnv(os.Environ(), "OPA_", "OPENFGA_")
	return spawn(name, cmd, &tailBuffer{max: 64 << 10})
}

// spawn starts cmd with its stdout and stderr going to output, and waits for it in the background.
func spawn(name string, cmd *exec.Cmd, output *tailBuffer) (*process, error) {
	p := &process{name: name, cmd: cmd, exited: make(chan struct{}), output: output}
	cmd.Stdout = output
	cmd.Stderr = output
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Args[0], err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitOK polls GET url through tr (keep-alives off) until it answers 200, the process exits
// (errAddrInUse when its output says so) or the deadline passes.
func (p *process) waitOK(url string, deadline time.Time, tr *http.Transport) error {
	hc := &http.Client{Transport: tr, Timeout: time.Second}
	lastErr := errors.New("no answer yet")
	for {
		select {
		case <-p.exited:
			out := p.output.Bytes()
			if strings.Contains(string(out), "address already in use") {
				return fmt.Errorf("%s: %w", p.name, errAddrInUse)
			}
			return fmt.Errorf("%s exited before it was healthy (%v):\n%s", p.name, p.waitErr, tail(out, 4096))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %v (last: %v); output:\n%s", p.name, startTimeout, lastErr, tail(p.output.Bytes(), 4096))
		}
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		lastErr = err
		select {
		case <-p.exited:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// plainTransport is the transport of a health check over http: no keep-alive, no proxy.
func plainTransport() *http.Transport {
	return &http.Transport{DisableKeepAlives: true, Proxy: nil}
}

// stop sends SIGTERM, waits up to stopGrace, then kills. Idempotent.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			_ = p.cmd.Process.Kill()
		}
		select {
		case <-p.exited:
		case <-time.After(stopGrace):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// loopback returns "127.0.0.1:PORT" for port.
func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
