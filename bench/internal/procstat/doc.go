// Package procstat reads what the benchmarks measure of a process from Linux's /proc: CPU seconds
// (utime + stime of /proc/<pid>/stat, all threads), the current and the peak resident set (VmRSS,
// VmHWM of /proc/<pid>/status), and it resets the peak (clear_refs) so that a peak can be measured
// around one run. Processes made of several (nginx: a master and its workers) are summed.
//
// On other systems every function returns ErrUnsupported. Nothing here is safe to call on a hot
// path: each call reads files.
package procstat
