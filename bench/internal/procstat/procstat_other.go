//go:build !linux

package procstat

func read(int) (Usage, error)     { return Usage{}, ErrUnsupported }
func resetPeak(int) error         { return ErrUnsupported }
func children(int) ([]int, error) { return nil, ErrUnsupported }
