package transfer

import "golang.org/x/sys/unix"

// Test hooks into the overlapped (two-pipe) splice path (Linux only).

// OverlapMin is the body size above which a splice transfer with pipes of
// pipeSize bytes overlaps filling and draining.
func OverlapMin(pipeSize int) int64 { return overlapFactor * int64(pipeSize) }

// Overlapped reports how many transfers of m took the two-pipe path.
func (m *Mover) Overlapped() int64 { return m.pipes.overlapped.Load() }

// ReadAheads reports how many fills m's two-pipe transfers made while dst
// was not writable (each moved bytes).
func (m *Mover) ReadAheads() int64 { return m.pipes.readAheads.Load() }

// IdlePipeBytes reports the bytes held by each idle pipe of m (TIOCINQ, that is FIONREAD, on
// its read end): all zero when only empty pipes were pooled.
func (m *Mover) IdlePipeBytes() []int {
	s := m.pipes
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]int, 0, len(s.idle))
	for _, p := range s.idle {
		n, err := unix.IoctlGetInt(p.rfd, unix.TIOCINQ)
		if err != nil {
			n = -1
		}
		out = append(out, n)
	}
	return out
}
