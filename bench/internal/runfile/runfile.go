// Package runfile is the JSON file of a benchmark run: bench/cmd/runner writes it, bench/cmd/report
// reads it.
package runfile

// Result is one measurement of one workload against one target.
type Result struct {
	Phase    string `json:"phase"` // upstream: sink or versitygw
	Workload string `json:"workload"`
	Kind     string `json:"kind"` // load, wrk, idle
	Target   string `json:"target"`
	Rep      int    `json:"rep"`
	Size     int64  `json:"size"`
	Conns    int    `json:"conns"`

	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	Aborted   int64   `json:"aborted"`
	BodyBytes int64   `json:"body_bytes"`
	Seconds   float64 `json:"seconds"`
	RPS       float64 `json:"rps"`
	MiBps     float64 `json:"mib_per_s"`
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`

	CPUSeconds     float64 `json:"cpu_s"`          // the target's processes (0 for direct)
	PeakRSS        int64   `json:"peak_rss"`       // the target's VmHWM during the run (bytes)
	IdleRSS        int64   `json:"idle_rss"`       // idle workload: VmRSS with every connection open and idle
	SinkCPUSeconds float64 `json:"upstream_cpu_s"` // the upstream's CPU during the run
	Opened         int64   `json:"opened,omitempty"`
	Alive          int64   `json:"alive,omitempty"`
	FirstError     string  `json:"first_error,omitempty"`
	TLS            string  `json:"tls,omitempty"` // the load's negotiated TLS version and suite
}

// File is the file the runner writes: the run's metadata (mode, machine, versions, revisions) and
// every measurement.
type File struct {
	Meta    map[string]string `json:"meta"`
	Results []Result          `json:"results"`
	Perf    map[string]string `json:"perf,omitempty"` // workload -> perf report path (text)
}
