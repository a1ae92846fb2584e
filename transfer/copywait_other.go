//go:build !linux

package transfer

import "net"

// canWaitReadable is false here: a copy keeps its buffer for its whole transfer.
const canWaitReadable = false

func waitReadable(net.Conn) error { return nil }
