package server

import (
	"io"
	"log/slog"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// NewLogger builds the process logger from LogConfig (level and format).
func NewLogger(c LogConfig, w io.Writer) (*slog.Logger, error) {
	lvl, err := parseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	return newSlog(c.Format, w, lvl), nil
}

// NewAccessLogger builds the access logger: one Info line per request, in the log format, whatever
// the log level. Give it an AccessWriter so that a slow reader of w never blocks the event loops.
func NewAccessLogger(c LogConfig, w io.Writer) *slog.Logger {
	return newSlog(c.Format, w, slog.LevelInfo)
}

func newSlog(format string, w io.Writer, lvl slog.Level) *slog.Logger {
	ho := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		ho.ReplaceAttr = durationSeconds
		return slog.New(slog.NewJSONHandler(w, ho))
	}
	return slog.New(slog.NewTextHandler(w, ho))
}

// durationSeconds writes a time.Duration as seconds (a float: 0.25), as Prometheus and most log
// pipelines expect, instead of slog's JSON default of integer nanoseconds. Text logs keep Go's
// "250ms".
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.Float64Value(a.Value.Duration().Seconds())
	}
	return a
}

// accessLogDropped counts access-log lines dropped because the output did not keep up.
var accessLogDropped = metrics.NewCounter(`mizuchi_access_log_dropped_total`)

// AccessWriter buffers writes in memory and writes them to the underlying writer from its own
// goroutine, so that logging from an event loop never waits for a pipe or a terminal. When more
// than its limit is pending, whole writes (log lines) are dropped and counted in
// mizuchi_access_log_dropped_total. Safe for concurrent use; Close flushes what is pending.
type AccessWriter struct {
	w     io.Writer
	limit int

	mu      sync.Mutex
	pending []byte
	spare   []byte
	closed  bool

	kick chan struct{}
	done chan struct{}
}

// NewAccessWriter starts an AccessWriter on w holding at most limit bytes pending (and up to twice
// that in memory: the batch being written and the one filling).
func NewAccessWriter(w io.Writer, limit int) *AccessWriter {
	a := &AccessWriter{w: w, limit: limit, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go a.loop()
	return a
}

// Write queues p (one log line: slog handlers write each record with one call). It never blocks
// on the output and never fails; p is copied.
func (a *AccessWriter) Write(p []byte) (int, error) {
	a.mu.Lock()
	if a.closed || len(a.pending)+len(p) > a.limit {
		a.mu.Unlock()
		accessLogDropped.Inc()
		return len(p), nil
	}
	wake := len(a.pending) == 0 // else the flusher has not taken the earlier lines yet and will come back
	a.pending = append(a.pending, p...)
	a.mu.Unlock()
	if wake {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// loop flushes after each wake-up until nothing is pending.
func (a *AccessWriter) loop() {
	defer close(a.done)
	for range a.kick {
		for {
			wrote, closed := a.flush()
			if closed {
				return
			}
			if !wrote {
				break
			}
		}
	}
}

// flush writes what is pending; it reports whether there was anything and whether the writer was
// closed.
func (a *AccessWriter) flush() (wrote, closed bool) {
	a.mu.Lock()
	closed = a.closed
	if len(a.pending) == 0 {
		a.mu.Unlock()
		return false, closed
	}
	// Swap: the writer fills spare while buf is written; pending and spare never share an array.
	buf := a.pending
	a.pending, a.spare = a.spare[:0], nil
	a.mu.Unlock()
	_, _ = a.w.Write(buf)
	a.mu.Lock()
	a.spare = buf[:0] // at most limit bytes: pending never grows past it
	a.mu.Unlock()
	return true, closed
}

// Close writes what is pending and stops the writer; later writes are dropped.
func (a *AccessWriter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		<-a.done
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	select {
	case a.kick <- struct{}{}:
	default:
	}
	<-a.done
	a.flush()
	return nil
}
