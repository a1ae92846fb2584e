package tracing

import (
	"context"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// queue is the span processor: ended spans go into a bounded channel (never blocking: a full queue
// drops the span and counts it) and one goroutine exports them in batches of up to BatchSize, at
// least every BatchInterval.
type queue struct {
	exp      sdktrace.SpanExporter
	ch       chan sdktrace.ReadOnlySpan
	flush    chan chan struct{}
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	size     int
	interval time.Duration
	timeout  time.Duration
	c        *Config
}

func newQueue(exp sdktrace.SpanExporter, c *Config) *queue {
	q := &queue{exp: exp, size: c.BatchSize, interval: c.BatchInterval, timeout: c.Timeout, c: c,
		flush: make(chan chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	if q.size <= 0 {
		q.size = 512
	}
	if q.interval <= 0 {
		q.interval = time.Second
	}
	n := c.QueueSize
	if n <= 0 {
		n = 4096
	}
	q.ch = make(chan sdktrace.ReadOnlySpan, n)
	go q.run()
	return q
}

// OnStart does nothing: spans are queued when they end.
func (q *queue) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues s for export, or drops it (counted) when the queue is full or stopped.
func (q *queue) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	select {
	case <-q.stop:
		q.dropped(1)
		return
	default:
	}
	select {
	case q.ch <- s:
	default:
		q.dropped(1)
	}
}

// ForceFlush exports what is queued now.
func (q *queue) ForceFlush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case q.flush <- ack:
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown exports what is queued (within ctx), then shuts the exporter down.
func (q *queue) Shutdown(ctx context.Context) error {
	q.once.Do(func() { close(q.stop) })
	select {
	case <-q.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return q.exp.Shutdown(ctx)
}

func (q *queue) run() {
	defer close(q.done)
	batch := make([]sdktrace.ReadOnlySpan, 0, q.size)
	t := time.NewTicker(q.interval)
	defer t.Stop()
	for {
		select {
		case s := <-q.ch:
			batch = append(batch, s)
			if len(batch) >= q.size {
				batch = q.export(batch)
			}
		case <-t.C:
			batch = q.export(batch)
		case ack := <-q.flush:
			batch = q.export(q.drain(batch))
			close(ack)
		case <-q.stop:
			q.export(q.drain(batch))
			return
		}
	}
}

// drain moves what the channel holds into batch, exporting full batches on the way.
func (q *queue) drain(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	for {
		select {
		case s := <-q.ch:
			batch = append(batch, s)
			if len(batch) >= q.size {
				batch = q.export(batch)
			}
		default:
			return batch
		}
	}
}

// export sends batch (retried by the exporter within 3×Timeout) and returns it emptied.
func (q *queue) export(batch []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	if len(batch) == 0 {
		return batch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*q.timeout)
	err := q.exp.ExportSpans(ctx, batch)
	cancel()
	if err != nil {
		if q.c.OnExportError != nil {
			q.c.OnExportError(err)
		}
		q.dropped(len(batch))
	} else if q.c.OnExported != nil {
		q.c.OnExported(len(batch))
	}
	clear(batch)
	return batch[:0]
}

func (q *queue) dropped(n int) {
	if q.c.OnDropped != nil {
		q.c.OnDropped(n)
	}
}
