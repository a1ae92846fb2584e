package server

import (
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"

	"github.com/mizuchi/uploadr/internal/exposition"
	"github.com/mizuchi/uploadr/transfer"
)

// server.copy_memory_max reaches the engine's transfer options (default 64 MiB); below one copy
// buffer or above 16 GiB it is refused by name.
func TestCopyMemoryMaxKey(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  int
		err   string
	}{
		{value: "", want: transfer.DefaultCopyMemoryMax},
		{value: "16MiB", want: 16 << 20},
		{value: "256KiB", want: 256 << 10},
		{value: "262143", err: "server.copy_memory_max 262143: want 256KiB..16GiB"},
		{value: "17GiB", err: "server.copy_memory_max 18253611008: want 256KiB..16GiB"},
	} {
		y := sample
		if tc.value != "" {
			y = strings.Replace(sample, "server:\n", "server:\n  copy_memory_max: "+tc.value+"\n", 1)
		}
		c, err := ParseConfig([]byte(y), env(sampleEnv))
		if err != nil {
			t.Fatal(err)
		}
		c.Normalize()
		err = c.Validate()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Count(err.Error(), "copy_memory_max") != 1 {
				t.Errorf("%s: Validate = %v; want one error %q", tc.value, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.value, err)
		}
		if o, err := c.EngineOptions(nil, nil); err != nil || o.Transfer.CopyMemoryMax != tc.want {
			t.Errorf("%s: Transfer.CopyMemoryMax = %d, %v; want %d", tc.value, o.Transfer.CopyMemoryMax, err, tc.want)
		}
	}
}

// -copy-memory-max overrides the file and reaches the engine; a bad size is refused.
func TestCopyMemoryMaxFlag(t *testing.T) {
	f := parseFlags(t, "-bucket", "up", "-upstream", "https://h:1", "-auth-none", "-copy-memory-max", "8MiB")
	c, err := f.Config(env(map[string]string{EnvAWSAccessKey: "a", EnvAWSSecretKey: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	o, err := c.EngineOptions(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Transfer.CopyMemoryMax != 8<<20 {
		t.Errorf("Transfer.CopyMemoryMax = %d; want 8 MiB", o.Transfer.CopyMemoryMax)
	}
	f = parseFlags(t, "-bucket", "up", "-upstream", "https://h:1", "-auth-none", "-copy-memory-max", "1KiB")
	if _, err := f.Config(env(map[string]string{EnvAWSAccessKey: "a", EnvAWSSecretKey: "s"})); err == nil || !strings.Contains(err.Error(), "server.copy_memory_max 1024") {
		t.Errorf("Config with -copy-memory-max 1KiB = %v; want the key refused", err)
	}
}

// The copy buffers' gauges are exported beside the pipes'.
func TestCopyBufferGauges(t *testing.T) {
	var b strings.Builder
	metrics.WritePrometheus(&b, false)
	for _, name := range []string{"mizuchi_copy_buffers_in_use", "mizuchi_copy_buffers_idle", "mizuchi_copy_buffers_waiting"} {
		if !strings.Contains(b.String(), "\n"+name+" ") && !strings.HasPrefix(b.String(), name+" ") {
			t.Errorf("metrics lack %s", name)
		}
	}
}

// How often the copy buffers' cap was reached is exported as counters: transfers that waited for a
// buffer, and overflow buffers lent past the cap (https clients, de-chunked bodies, PostObject).
func TestCopyBufferCapCounters(t *testing.T) {
	var b strings.Builder
	exposition.WritePrometheus(&b)
	for _, name := range []string{"mizuchi_copy_buffer_waits_total", "mizuchi_copy_buffer_overflows_total"} {
		if !strings.Contains(b.String(), "# TYPE "+name+" counter\n") {
			t.Errorf("metrics lack the counter %s:\n%s", name, b.String())
		}
		if !strings.Contains(b.String(), "# HELP "+name+" ") {
			t.Errorf("metrics lack the HELP of %s", name)
		}
	}
}
