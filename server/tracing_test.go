package server

import (
	"strings"
	"testing"
)

// -check places tracing problems on their lines: a bad endpoint, a ratio outside 0..1 and a
// negative queue size, whether tracing is enabled or not.
func TestCheckTracing(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	writeFile(t, path, `tracing:
  enabled: false
  endpoint: "127.0.0.1:4318"
  sample_ratio: 1.5
  queue_size: -1
buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
`)
	_, err := parseFlags(t, "-config", path).Config(env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		path + `:3: tracing.endpoint "127.0.0.1:4318": want an http:// or https:// URL`,
		path + `:4: tracing.sample_ratio 1.5: want 0..1`,
		path + `:5: tracing.queue_size -1: must be >= 0`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("no problem reads %q:\n%v", w, err)
		}
	}
}

// Flags override the file's tracing keys; the defaults fill the rest.
func TestTracingFlags(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	writeFile(t, path, `tracing: {enabled: false, sample_ratio: 0.1, headers: {Authorization: "Bearer ${TOK}"}}
buckets:
  - name: uploads
    s3: {bucket: b, endpoint: "http://127.0.0.1:1", access_key: k, secret_key: s}
    auth: none
`)
	c, err := parseFlags(t, "-config", path, "-tracing", "-tracing-endpoint", "http://collector:4318",
		"-tracing-record-keys").Config(env(map[string]string{"TOK": "secret-token"}))
	if err != nil {
		t.Fatal(err)
	}
	tc := c.Tracing
	if !tc.Enabled || tc.Endpoint != "http://collector:4318" || tc.SampleRatio != 0.1 || !tc.RecordKeys ||
		tc.ServiceName != DefaultTracingService || tc.QueueSize != DefaultTracingQueue || tc.Headers["Authorization"] != "Bearer secret-token" {
		t.Errorf("tracing config %+v", tc)
	}
}
