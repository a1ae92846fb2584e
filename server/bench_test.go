package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

var accessLine = []byte(`{"time":"2026-11-26T17:08:07.769830962Z","level":"INFO","msg":"request","request_id":"01F8AB7600000001","remote":"127.0.0.1:54278","principal":"AKIDEXAMPLE","bucket":"uploads","key":"dir/file one","operation":"PutObject","status":200,"bytes_in":2097152,"bytes_out":514,"duration_ms":10.567,"mode":"splice","upstream_status":200}` + "\n")

// BenchmarkAccessWriter is the cost an event loop pays per access-log line handed to the writer.
func BenchmarkAccessWriter(b *testing.B) {
	a := NewAccessWriter(io.Discard, 8<<20)
	defer a.Close()
	b.ReportAllocs()
	b.SetBytes(int64(len(accessLine)))
	for b.Loop() {
		_, _ = a.Write(accessLine)
	}
}

// BenchmarkAccessLogLine is a whole JSON access-log line (slog's handler included), as the engine
// writes it.
func BenchmarkAccessLogLine(b *testing.B) {
	a := NewAccessWriter(io.Discard, 8<<20)
	defer a.Close()
	l := NewAccessLogger(LogConfig{Format: "json"}, a)
	b.ReportAllocs()
	b.SetBytes(int64(len(accessLine)))
	for b.Loop() {
		l.LogAttrs(context.Background(), slog.LevelInfo, "request",
			slog.String("request_id", "01F8AB7600000001"), slog.String("remote", "127.0.0.1:54278"),
			slog.String("principal", "AKIDEXAMPLE"), slog.String("bucket", "uploads"), slog.String("key", "dir/file one"),
			slog.String("operation", "PutObject"), slog.Int("status", 200), slog.Int64("bytes_in", 2097152),
			slog.Int64("bytes_out", 514), slog.Float64("duration_ms", 10.567), slog.String("mode", "splice"),
			slog.Int("upstream_status", 200))
	}
}
