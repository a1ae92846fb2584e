package s3test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// StartOPA serves the given policy on loopback; Stop takes it away and Restart brings it back on
// the same address.
func TestStartOPAStopRestart(t *testing.T) {
	o := StartOPA(t, "package t\n\nallow if input.x == 1\n")
	if !strings.HasPrefix(o.URL, "http://127.0.0.1:") {
		t.Errorf("URL %q is not on loopback", o.URL)
	}
	ask := func() (string, error) {
		resp, err := http.Post(o.URL+"/v1/data/t/allow", "application/json", strings.NewReader(`{"input":{"x":1}}`))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), nil
	}
	if got, err := ask(); err != nil || got != `{"result":true}` {
		t.Fatalf("decision: %q, %v", got, err)
	}
	o.Stop()
	if _, err := ask(); err == nil {
		t.Error("OPA answers after Stop")
	}
	o.Restart(t)
	if got, err := ask(); err != nil || got != `{"result":true}` {
		t.Errorf("decision after Restart: %q, %v", got, err)
	}
}
