// Package server is the control plane of Mizuchi Uploadr: configuration (YAML with ${VAR}
// expansion, flags and environment), the admin listener (Prometheus /metrics, /healthz, /readyz on
// fasthttp) and the process lifecycle (run, drain, shut down). It turns Config into engine.Options;
// nothing imports server except main.
package server
