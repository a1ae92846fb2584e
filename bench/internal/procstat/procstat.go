package procstat

import "errors"

// ErrUnsupported is returned on systems without Linux's /proc.
var ErrUnsupported = errors.New("procstat: /proc is not available on this system")

// Usage is what one reading of a set of processes shows, summed over the processes.
type Usage struct {
	// CPUSeconds is user + system CPU time since each process started, all threads.
	CPUSeconds float64
	// RSS is the current resident set size in bytes (VmRSS).
	RSS int64
	// PeakRSS is the peak resident set in bytes (VmHWM) since the process started or since the
	// last ResetPeak. For several processes it is the sum of their peaks (an upper bound).
	PeakRSS int64
}

// Sub returns the CPU seconds spent between an earlier reading and u; RSS figures are u's.
func (u Usage) Sub(earlier Usage) Usage {
	u.CPUSeconds -= earlier.CPUSeconds
	return u
}

// Read returns the summed usage of pids. It fails if any pid cannot be read (gone, or not Linux).
func Read(pids ...int) (Usage, error) {
	var total Usage
	for _, pid := range pids {
		u, err := read(pid)
		if err != nil {
			return Usage{}, err
		}
		total.CPUSeconds += u.CPUSeconds
		total.RSS += u.RSS
		total.PeakRSS += u.PeakRSS
	}
	return total, nil
}

// ResetPeak resets VmHWM of each pid to its current RSS (writes "5" to /proc/<pid>/clear_refs,
// Linux >= 4.0; needs the right to write there, normally the same user or root).
func ResetPeak(pids ...int) error {
	for _, pid := range pids {
		if err := resetPeak(pid); err != nil {
			return err
		}
	}
	return nil
}

// Children returns the pids whose parent is pid (one level), e.g. nginx's workers.
func Children(pid int) ([]int, error) { return children(pid) }
