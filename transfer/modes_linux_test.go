package transfer_test

import "github.com/mizuchi/uploadr/transfer"

// modes are the paths every behaviour test runs on: both on Linux.
var modes = []transfer.Mode{transfer.ModeSplice, transfer.ModeCopy}

type waitCount struct{ src, dst int64 }

func waits(m *transfer.Mover) waitCount {
	s, d := m.WaitCounts()
	return waitCount{s, d}
}
