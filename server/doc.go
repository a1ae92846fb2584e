// Package server is the control plane of Mizuchi Uploadr: configuration (YAML with ${VAR}
// expansion, every tuning key also a flag, a config-less single-bucket start from flags and
// environment, validation that lists every problem), the admin listener (Prometheus /metrics,
// /healthz, /readyz on fasthttp, with a prober that dials every upstream endpoint), logging (slog
// text or JSON; the access log through a non-blocking AccessWriter) and the process lifecycle (Run,
// drain on cancel, Reload on SIGHUP). It turns Config into engine.Options; nothing imports server
// except main.
package server
