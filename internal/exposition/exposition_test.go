package exposition

import (
	"bytes"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func TestWritePrometheus(t *testing.T) {
	Help("exptest_things_total", "Things seen.\nSecond line with a \\ backslash.")
	metrics.GetOrCreateCounter(`exptest_things_total{kind="a"}`).Inc()
	metrics.GetOrCreateCounter(`exptest_things_total{kind="b"}`).Add(2)
	metrics.GetOrCreateGauge(`exptest_level`, nil).Set(3)
	var b bytes.Buffer
	WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		"# HELP exptest_things_total Things seen.\\nSecond line with a \\\\ backslash.\n# TYPE exptest_things_total counter\n" +
			"exptest_things_total{kind=\"a\"} 1\nexptest_things_total{kind=\"b\"} 2\n",
		"# HELP exptest_level Undocumented metric exptest_level.\n# TYPE exptest_level gauge\nexptest_level 3\n",
		"# TYPE go_cgo_calls_total counter\ngo_cgo_calls_total ",
		"# TYPE go_cpus gauge\ngo_cpus ",
		"# TYPE process_io_read_bytes_total counter\n",
		"# HELP go_goroutines Go runtime metric go_goroutines",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
	for _, gone := range []string{"go_cgo_calls_count", "go_cpu_count", "# HELP exptest_level\n"} {
		if strings.Contains(out, gone) {
			t.Errorf("still has %q", gone)
		}
	}
	if f := Family(`a_b{c="d"}`); f != "a_b" {
		t.Errorf("Family: %q", f)
	}
}
