package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// clockTicks is USER_HZ, the unit of utime and stime: 100 on every Linux architecture Go supports.
const clockTicks = 100

func read(pid int) (Usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, err
	}
	fields, err := statFields(stat)
	if err != nil {
		return Usage{}, fmt.Errorf("procstat: pid %d: %w", pid, err)
	}
	// After the comm field: state(3) ppid(4) ... utime(14) stime(15), counting from 1.
	utime, err1 := strconv.ParseUint(string(fields[14-3]), 10, 64)
	stime, err2 := strconv.ParseUint(string(fields[15-3]), 10, 64)
	if err1 != nil || err2 != nil {
		return Usage{}, fmt.Errorf("procstat: pid %d: bad utime/stime", pid)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, err
	}
	return Usage{
		CPUSeconds: float64(utime+stime) / clockTicks,
		RSS:        statusKiB(status, "VmRSS:") * 1024,
		PeakRSS:    statusKiB(status, "VmHWM:") * 1024,
	}, nil
}

// statFields returns the fields of /proc/<pid>/stat after the parenthesised comm (which may hold
// spaces and parentheses), so that index 0 is field 3 (state).
func statFields(stat []byte) ([][]byte, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 > len(stat) {
		return nil, fmt.Errorf("malformed stat")
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return nil, fmt.Errorf("short stat")
	}
	return f, nil
}

func statusKiB(status []byte, key string) int64 {
	i := bytes.Index(status, []byte(key))
	if i < 0 {
		return 0
	}
	line := status[i+len(key):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := bytes.Fields(line) // "1234 kB"
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[0]), 10, 64)
	return n
}

func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

func children(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		f, err := statFields(stat)
		if err != nil {
			continue
		}
		if pp, _ := strconv.Atoi(string(f[1])); pp == pid {
			out = append(out, p)
		}
	}
	return out, nil
}
