//go:build !linux

package main

import "errors"

// onCPU cannot pin processes here: mode single needs Linux.
func onCPU(int, func() error) error {
	return errors.New("runner: mode single needs CPU affinity (Linux)")
}
