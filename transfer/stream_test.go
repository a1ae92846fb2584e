package transfer_test

import "github.com/mizuchi/uploadr/transfer"

// stream keeps r.client sending size-byte bodies and r.up discarding
// everything, without allocating (so AllocsPerRun and ReportAllocs count
// only the Mover), until the rig is closed. Each Move of size bytes then
// consumes exactly one body.
func stream(r *rig, size int) {
	b := body(size)
	go func() {
		for {
			if _, err := r.client.Write(b); err != nil {
				return
			}
		}
	}()
	go func() {
		buf := make([]byte, 256<<10)
		for {
			if _, err := r.up.Read(buf); err != nil {
				return
			}
		}
	}()
}

// spliceAllocs is what one splice Move allocates: the two syscall.RawConn
// values *net.TCPConn.SyscallConn returns. The per-chunk loop allocates
// nothing, so the figure does not grow with the body size.
const spliceAllocs = 2

func wantAllocs(mode transfer.Mode) float64 {
	if mode == transfer.ModeSplice {
		return spliceAllocs
	}
	return 0
}
