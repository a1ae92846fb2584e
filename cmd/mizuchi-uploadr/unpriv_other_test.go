//go:build !linux

package main

import "errors"

func holdPipes(int) (int, error) { return 0, errors.New("pipes: linux only") }
