package s3test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/freeport"
)

var openfgaTool = &goTool{name: "openfga", module: "github.com/openfga/openfga", version: "v1.22.1", script: "install-openfga.sh"}

// OpenFGAPath returns the OpenFGA v1.22.1 binary in <repo root>/.tools/bin, building it first with
// scripts/install-openfga.sh when it is missing or another version (7 to 10 minutes cold). Safe for
// concurrent use.
func OpenFGAPath() (string, error) { return openfgaTool.path() }

// OpenFGA is one running OpenFGA server with its in-memory datastore, every listener on loopback.
type OpenFGA struct {
	URL  string // the HTTP API, "http://127.0.0.1:PORT"
	proc *process
}

// StartOpenFGA runs `openfga run --datastore-engine memory` with its HTTP, gRPC and metrics
// listeners on free loopback ports (the playground off), and waits until GET /healthz answers 200
// (at most 20 s). It builds the binary first if needed (OpenFGAPath). Any failure fails the test;
// the server is stopped in t.Cleanup.
func StartOpenFGA(t testing.TB) *OpenFGA {
	t.Helper()
	bin, err := OpenFGAPath()
	if err != nil {
		t.Fatalf("s3test: StartOpenFGA: %v", err)
	}
	deadline := time.Now().Add(startTimeout)
	for attempt := 1; ; attempt++ {
		var ports [3]int
		for i := range ports {
			if ports[i], err = freeport.Pick(); err != nil {
				t.Fatalf("s3test: StartOpenFGA: %v", err)
			}
		}
		f := &OpenFGA{URL: "http://" + loopback(ports[0])}
		f.proc, err = startProcess("openfga on "+loopback(ports[0]), bin, "run",
			"--datastore-engine", "memory", "--http-addr", loopback(ports[0]),
			"--grpc-addr", loopback(ports[1]), "--metrics-addr", loopback(ports[2]),
			"--playground-enabled=false", "--log-level", "error")
		if err == nil {
			if err = f.proc.waitOK(f.URL+"/healthz", deadline, plainTransport()); err == nil {
				t.Cleanup(f.proc.stop)
				return f
			}
			f.proc.stop()
		}
		if !errors.Is(err, errAddrInUse) || attempt >= portAttempts {
			t.Fatalf("s3test: StartOpenFGA: %v", err)
		}
	}
}

// Stop stops the server (SIGTERM, SIGKILL after 5 s); its in-memory stores are gone.
func (f *OpenFGA) Stop() { f.proc.stop() }

// post sends a JSON document and decodes the JSON answer into out (when not nil); any status but
// 200 or 201 fails the test.
func (f *OpenFGA) post(t testing.TB, path string, in, out any) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("s3test: openfga %s: %v", path, err)
	}
	resp, err := http.Post(f.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("s3test: openfga %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("s3test: openfga POST %s: %s: %s", path, resp.Status, tail(raw, 2048))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("s3test: openfga POST %s: %v: %s", path, err, tail(raw, 2048))
		}
	}
}

// CreateStore creates a store named name and returns its id.
func (f *OpenFGA) CreateStore(t testing.TB, name string) string {
	t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	f.post(t, "/stores", map[string]string{"name": name}, &out)
	if out.ID == "" {
		t.Fatal("s3test: openfga: store created without an id")
	}
	return out.ID
}

// WriteModel writes an authorization model (its JSON form: schema_version, type_definitions) to
// store and returns the model's id.
func (f *OpenFGA) WriteModel(t testing.TB, store, model string) string {
	t.Helper()
	var out struct {
		ID string `json:"authorization_model_id"`
	}
	f.post(t, "/stores/"+store+"/authorization-models", json.RawMessage(model), &out)
	if out.ID == "" {
		t.Fatal("s3test: openfga: model written without an id")
	}
	return out.ID
}

// FGATuple is a relationship tuple: User has Relation to Object.
type FGATuple struct {
	User     string `json:"user"`
	Relation string `json:"relation"`
	Object   string `json:"object"`
}

// WriteTuples writes tuples to store under model (duplicates ignored, so a store can be re-seeded).
func (f *OpenFGA) WriteTuples(t testing.TB, store, model string, tuples ...FGATuple) {
	t.Helper()
	f.post(t, "/stores/"+store+"/write", map[string]any{
		"writes":                 map[string]any{"tuple_keys": tuples, "on_duplicate": "ignore"},
		"authorization_model_id": model,
	}, nil)
}

// String describes the server for test messages.
func (f *OpenFGA) String() string { return fmt.Sprintf("openfga at %s", f.URL) }
