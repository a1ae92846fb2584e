// Package exposition writes the process's metrics (the default VictoriaMetrics/metrics set) in the
// Prometheus text format with a HELP text and a TYPE line for every family, so that Prometheus
// knows each family's type and `promtool check metrics` finds nothing to report.
//
// The packages that register metrics describe each family once with Help, next to its
// registration; WritePrometheus fills those texts into the metadata lines the library writes
// (metrics.ExposeMetadata is switched on by this package). The library's own Go runtime and
// process families (go_*, process_*) get a generic text naming their source.
package exposition

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

func init() { metrics.ExposeMetadata(true) }

var (
	mu   sync.RWMutex
	help = map[string]string{}
)

// Help records the HELP text of a metric family (the name without labels and without the
// _bucket/_sum/_count suffixes of a histogram). A later call replaces the text. Safe for concurrent
// use; call it at registration, never per request.
func Help(family, text string) {
	mu.Lock()
	help[family] = text
	mu.Unlock()
}

// Family returns the family of a series name: the part before its labels.
func Family(series string) string {
	if i := strings.IndexByte(series, '{'); i >= 0 {
		return series[:i]
	}
	return series
}

// HelpOf returns the text recorded for family, and whether there is one.
func HelpOf(family string) (string, bool) {
	mu.RLock()
	defer mu.RUnlock()
	t, ok := help[family]
	return t, ok
}

// Families returns the families that have a HELP text.
func Families() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(help))
	for f := range help {
		out = append(out, f)
	}
	return out
}

// WritePrometheus writes every metric of the default set, the Go runtime and process metrics
// included, with HELP and TYPE lines. A family nobody described gets a text that says so (a test
// of each package checks its own families are described). The few library families whose name or
// type breaks the Prometheus naming rules are renamed or retyped (see fixes).
func WritePrometheus(w io.Writer) {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, true)
	out := bufio.NewWriterSize(w, 32<<10)
	for line := range bytes.Lines(b.Bytes()) {
		switch {
		case bytes.HasPrefix(line, []byte("# HELP ")):
			fam := string(bytes.TrimSpace(line[len("# HELP "):]))
			text, described := "", false
			if i := strings.IndexByte(fam, ' '); i >= 0 { // a text is there already
				fam, text, described = fam[:i], fam[i+1:], true
			}
			if f, ok := fixes[fam]; ok {
				fam = f.name
			}
			if !described {
				text = escape(textFor(fam))
			}
			_, _ = out.WriteString("# HELP " + fam + " " + text + "\n")
		case bytes.HasPrefix(line, []byte("# TYPE ")):
			f := strings.Fields(string(line[len("# TYPE "):]))
			if len(f) == 2 {
				if fix, ok := fixes[f[0]]; ok {
					f[0], f[1] = fix.name, fix.typ
				}
				_, _ = out.WriteString("# TYPE " + f[0] + " " + f[1] + "\n")
			} else {
				_, _ = out.Write(line)
			}
		default:
			n := bytes.IndexAny(line, "{ ")
			if n > 0 {
				if fix, ok := fixes[string(line[:n])]; ok {
					_, _ = out.WriteString(fix.name)
					_, _ = out.Write(line[n:])
					continue
				}
			}
			_, _ = out.Write(line)
		}
	}
	_ = out.Flush()
}

// fixes renames or retypes library families that `promtool check metrics` flags: counters must
// end in _total and only counters may; only histograms and summaries may end in _count.
var fixes = map[string]struct{ name, typ string }{
	"go_cgo_calls_count":                     {"go_cgo_calls_total", "counter"},
	"go_gc_forced_count":                     {"go_gc_forced_total", "counter"},
	"go_cpu_count":                           {"go_cpus", "gauge"},
	"process_io_read_bytes_total":            {"process_io_read_bytes_total", "counter"},
	"process_io_read_syscalls_total":         {"process_io_read_syscalls_total", "counter"},
	"process_io_storage_read_bytes_total":    {"process_io_storage_read_bytes_total", "counter"},
	"process_io_storage_written_bytes_total": {"process_io_storage_written_bytes_total", "counter"},
	"process_io_write_syscalls_total":        {"process_io_write_syscalls_total", "counter"},
	"process_io_written_bytes_total":         {"process_io_written_bytes_total", "counter"},
}

func textFor(fam string) string {
	if t, ok := HelpOf(fam); ok {
		return t
	}
	switch {
	case strings.HasPrefix(fam, "go_"):
		return "Go runtime metric " + fam + " (VictoriaMetrics/metrics, from runtime/metrics and runtime.MemStats)."
	case strings.HasPrefix(fam, "process_"):
		return "Process metric " + fam + " (VictoriaMetrics/metrics, from /proc)."
	}
	return "Undocumented metric " + fam + "."
}

// escape applies the text format's HELP escaping: backslash and line feed.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}
