package main

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// onCPU runs f on an OS thread bound to cpu alone: a process f starts (fork happens on the calling
// thread) inherits that affinity, so its runtime sizes GOMAXPROCS for one CPU, as a process started
// under taskset would. The thread's former affinity is restored afterwards.
func onCPU(cpu int, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return err
	}
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return err
	}
	defer unix.SchedSetaffinity(0, &old)
	return f()
}
