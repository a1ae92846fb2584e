//go:build !linux

package transfer_test

import "github.com/mizuchi/uploadr/transfer"

// modes are the paths every behaviour test runs on: only copy off Linux.
var modes = []transfer.Mode{transfer.ModeCopy}

type waitCount struct{ src, dst int64 }

func waits(*transfer.Mover) waitCount { return waitCount{} }
