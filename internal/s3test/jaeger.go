package s3test

import (
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/freeport"
)

// Jaeger v1.76.0 (the v2, OpenTelemetry-collector-based binary) is built as the main module by
// scripts/install-jaeger.sh (`go install` refuses its go.mod), so its build info names no version:
// the script stamps it in with -ldflags, and `jaeger version` reports it.
const (
	jaegerModule  = "github.com/jaegertracing/jaeger"
	jaegerVersion = `"gitVersion":"v1.76.0"`
	jaegerStartup = 90 * time.Second // a loaded 2-core machine: the collector takes seconds to start
)

var jaegerOnce struct {
	mu  sync.Mutex
	bin string
}

// JaegerPath returns the Jaeger v1.76.0 binary in <repo root>/.tools/bin, building it first with
// scripts/install-jaeger.sh when it is missing or another version (about 5 minutes and 2.2 GB of
// RAM cold). Safe for concurrent use.
func JaegerPath() (string, error) {
	jaegerOnce.mu.Lock()
	defer jaegerOnce.mu.Unlock()
	if jaegerOnce.bin != "" {
		return jaegerOnce.bin, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(root, ".tools", "bin", "jaeger")
	if err := checkJaeger(bin); err != nil {
		script := filepath.Join(root, "scripts", "install-jaeger.sh")
		cmd := exec.Command("bash", script)
		cmd.Dir = root
		out, rerr := cmd.CombinedOutput()
		if rerr != nil {
			return "", fmt.Errorf("s3test: %s (binary: %v): %w\n%s", script, err, rerr, tail(out, 4096))
		}
		if err := checkJaeger(bin); err != nil {
			return "", fmt.Errorf("s3test: after %s: %w", script, err)
		}
	}
	jaegerOnce.bin = bin
	return bin, nil
}

func checkJaeger(bin string) error {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return err
	}
	if info.Path != jaegerModule+"/cmd/jaeger" {
		return fmt.Errorf("%s is %s, not %s/cmd/jaeger", bin, info.Path, jaegerModule)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.Contains(string(out), jaegerVersion) {
		return fmt.Errorf("%s version: %v %q; want %s (scripts/install-jaeger.sh builds it)", bin, err, tail(out, 512), jaegerVersion)
	}
	return nil
}

// Jaeger is one running Jaeger on loopback: in-memory storage, an OTLP/HTTP receiver and the query
// API, each on a free port (no other listener: parallel runs do not collide).
type Jaeger struct {
	OTLPURL  string // the OTLP/HTTP traces URL: "http://127.0.0.1:PORT/v1/traces"
	QueryURL string // the query API and UI: "http://127.0.0.1:PORT"
	proc     *process
}

// jaegerConfig is the collector configuration: the OTLP/HTTP receiver, a fast batch processor, the
// memory store and the query extension (HTTP and gRPC), nothing else (no metrics listener).
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: %s
    grpc:
      endpoint: %s
receivers:
  otlp:
    protocols:
      http:
        endpoint: %s
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`

// StartJaeger runs `jaeger --config FILE` on free loopback ports and waits until its query API
// answers (GET /api/services). It builds the binary first if needed (JaegerPath). Any failure fails
// the test; the server is stopped in t.Cleanup.
func StartJaeger(t testing.TB) *Jaeger {
	t.Helper()
	bin, err := JaegerPath()
	if err != nil {
		t.Fatalf("s3test: StartJaeger: %v", err)
	}
	deadline := time.Now().Add(jaegerStartup)
	for attempt := 1; ; attempt++ {
		j, err := launchJaeger(t, bin, deadline)
		if err == nil {
			t.Cleanup(j.proc.stop)
			return j
		}
		if !errors.Is(err, errAddrInUse) || attempt >= portAttempts {
			t.Fatalf("s3test: StartJaeger: %v", err)
		}
	}
}

func launchJaeger(t testing.TB, bin string, deadline time.Time) (*Jaeger, error) {
	var ports [3]int
	for i := range ports {
		p, err := freeport.Pick()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	query, grpc, otlp := loopback(ports[0]), loopback(ports[1]), loopback(ports[2])
	file := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(jaegerConfig, query, grpc, otlp)), 0o644); err != nil {
		return nil, err
	}
	p, err := startProcess("jaeger on "+query, bin, "--config", file)
	if err != nil {
		return nil, err
	}
	j := &Jaeger{OTLPURL: "http://" + otlp + "/v1/traces", QueryURL: "http://" + query, proc: p}
	if err := p.waitOK(j.QueryURL+"/api/services", deadline, plainTransport()); err != nil {
		p.stop()
		return nil, err
	}
	// The query API can answer before the OTLP receiver listens: a span posted in between is refused.
	if err := waitListening(p, otlp, time.Until(deadline)); err != nil {
		p.stop()
		if strings.Contains(string(p.output.Bytes()), "address already in use") {
			return nil, fmt.Errorf("%s: %w", p.name, errAddrInUse)
		}
		return nil, err
	}
	return j, nil
}

// JaegerTrace is one trace as the query API returns it (GET /api/traces/{id}).
type JaegerTrace struct {
	TraceID string       `json:"traceID"`
	Spans   []JaegerSpan `json:"spans"`
}

// JaegerSpan is one span of a JaegerTrace.
type JaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value any    `json:"value"`
	} `json:"tags"`
	ProcessID string `json:"processID"`
}

// Parent is the span id the span is a CHILD_OF; "" for a root.
func (s *JaegerSpan) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Tag returns the value of the tag key (numbers as float64) and whether the span has it.
func (s *JaegerSpan) Tag(key string) (any, bool) {
	for _, t := range s.Tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return nil, false
}

// Trace returns the trace traceID (32 hex digits) once it holds at least minSpans spans, polling
// the query API for up to timeout. Any failure fails the test.
func (j *Jaeger) Trace(t testing.TB, traceID string, minSpans int, timeout time.Duration) JaegerTrace {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for {
		resp, err := hc.Get(j.QueryURL + "/api/traces/" + traceID)
		if err == nil {
			var out struct {
				Data []JaegerTrace `json:"data"`
			}
			derr := json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			switch {
			case derr != nil:
				last = fmt.Sprintf("%s: %v", resp.Status, derr)
			case len(out.Data) == 1 && len(out.Data[0].Spans) >= minSpans:
				return out.Data[0]
			case len(out.Data) == 1:
				last = fmt.Sprintf("%d spans", len(out.Data[0].Spans))
			default:
				last = resp.Status
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("s3test: trace %s with %d spans not in Jaeger after %v (last: %s); jaeger output:\n%s",
				traceID, minSpans, timeout, last, tail(j.proc.output.Bytes(), 4096))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
