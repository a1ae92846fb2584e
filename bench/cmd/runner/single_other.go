//go:build !linux

package main

func onCPU(int, func() error) error { return errNoAffinity }
