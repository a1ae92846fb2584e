package s3test

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/internal/freeport"
)

// Timeouts of the server's life cycle.
const (
	startTimeout = 20 * time.Second // from exec to GET /health == 200, all port retries included
	stopGrace    = 5 * time.Second  // SIGTERM to SIGKILL
	portAttempts = 5                // new ports tried when the one picked was taken meanwhile
)

// Server is one running versitygw S3 server on loopback. Its fields are read-only after Start; the
// data directory belongs to the server (objects are files under DataDir/<bucket>/). Methods are safe
// for concurrent use.
type Server struct {
	Endpoint  string // "http://127.0.0.1:PORT" ("https://..." from StartTLS)
	Addr      string // "127.0.0.1:PORT"
	AccessKey string // root access key, random per server
	SecretKey string // root secret key, random per server
	Region    string // "us-east-1"
	DataDir   string // the posix backend's root directory
	// StartTLS only: the CA that signed the server's certificate, as a pool and as a PEM file.
	RootCAs *x509.CertPool
	CAFile  string

	tls    *tlsFiles   // nil: plain http
	proc   *process    // the running (or last) versitygw; Restart replaces it
	output *tailBuffer // every versitygw process's stdout and stderr, last 64 KiB

	clientOnce sync.Once
	client     *s3.Client
}

// Start runs a fresh versitygw (`--port 127.0.0.1:PORT --health /health --keep-alive --quiet posix
// DATADIR`, random root keys in ROOT_ACCESS_KEY/ROOT_SECRET_KEY) on a free loopback port with a data
// directory from t.TempDir, and waits until GET /health answers 200 (at most 20 s). It builds the
// binary first if it is missing (see VersitygwPath). Any failure fails the test with the server's
// output; Start never skips. The server is stopped in t.Cleanup (SIGTERM, SIGKILL after 5 s).
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	s, err := start(dir, freeport.Pick)
	if err != nil {
		t.Fatalf("s3test: Start: %v", err)
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			if out := tail(s.output.Bytes(), 4096); len(out) > 0 {
				t.Logf("s3test: versitygw on %s said:\n%s", s.Addr, out)
			}
		}
	})
	return s
}

// StartMain is Start for TestMain, where no testing.TB exists: the data directory is a new
// directory under os.TempDir. The returned stop function stops the server and removes the data
// directory; it is idempotent and safe to call from several goroutines. On error nothing is left
// running.
//
//	func TestMain(m *testing.M) {
//		srv, stop, err := s3test.StartMain()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
func StartMain() (*Server, func(), error) {
	dir, err := os.MkdirTemp("", "s3test-")
	if err != nil {
		return nil, nil, fmt.Errorf("s3test: %w", err)
	}
	s, err := start(dir, freeport.Pick)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, fmt.Errorf("s3test: StartMain: %w", err)
	}
	var once sync.Once
	return s, func() {
		once.Do(func() {
			s.stop()
			_ = os.RemoveAll(dir)
		})
	}, nil
}

// start launches versitygw on dataDir on a port from pickPort, retrying with a new one when the
// picked port was taken between the pick and the server's bind.
func start(dataDir string, pickPort func() (int, error)) (*Server, error) {
	return startWith(dataDir, pickPort, nil)
}

// startWith is start serving https with tf's certificate when tf is not nil.
func startWith(dataDir string, pickPort func() (int, error), tf *tlsFiles) (*Server, error) {
	bin, err := VersitygwPath()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(startTimeout)
	for attempt := 1; ; attempt++ {
		port, err := pickPort()
		if err != nil {
			return nil, err
		}
		s, err := launch(bin, port, dataDir, tf)
		if err != nil {
			return nil, err
		}
		err = s.waitHealthy(deadline)
		if err == nil {
			return s, nil
		}
		s.stop()
		if errors.Is(err, errAddrInUse) && attempt < portAttempts && time.Now().Before(deadline) {
			continue
		}
		return nil, err
	}
}

var errAddrInUse = errors.New("address already in use")

func launch(bin string, port int, dataDir string, tf *tlsFiles) (*Server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{
		Endpoint:  "http://" + addr,
		Addr:      addr,
		AccessKey: "S3T" + rand.Text()[:17],
		SecretKey: (rand.Text() + rand.Text())[:40],
		Region:    "us-east-1",
		DataDir:   dataDir,
		output:    &tailBuffer{max: 64 << 10},
		tls:       tf,
	}
	if tf != nil {
		s.Endpoint, s.RootCAs, s.CAFile = "https://"+addr, tf.pool, tf.ca
	}
	if err := s.spawn(bin); err != nil {
		return nil, err
	}
	return s, nil
}

// spawn starts a versitygw process for s (flags from s.args, the root keys in its environment).
// The previous process, if any, must have exited.
func (s *Server) spawn(bin string) error {
	cmd := exec.Command(bin, s.args()...)
	// versitygw reads many flags from VGW_* variables: keep the machine's out of it.
	cmd.Env = append(filterEnv(os.Environ(), "VGW_", "ROOT_ACCESS_KEY", "ROOT_SECRET_KEY"),
		"ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	p, err := spawn("versitygw on "+s.Addr, cmd, s.output)
	if err != nil {
		return err
	}
	s.proc = p
	return nil
}

// waitHealthy polls GET /health until it answers 200, the process exits or the deadline passes.
func (s *Server) waitHealthy(deadline time.Time) error {
	return s.proc.waitOK(s.Endpoint+"/health", deadline, s.transport(false))
}

// stop stops the versitygw process (SIGTERM, SIGKILL after stopGrace). Idempotent.
func (s *Server) stop() { s.proc.stop() }

// filterEnv returns env without the variables whose names start with any of prefixes.
func filterEnv(env []string, prefixes ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// tailBuffer is an io.Writer, safe for concurrent use, that keeps the last max bytes written.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of what the buffer holds.
func (b *tailBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}
