package transfer

import (
	"errors"
	"strconv"
)

// Sentinel errors, compared with errors.Is. They are wrapped in an [*Error].
var (
	// ErrShortBody means the source reached end of stream before the
	// declared number of bytes arrived: the client went away mid-body.
	ErrShortBody = errors.New("transfer: body ended before its declared length")

	// ErrStalled means no byte moved for Options.StallTimeout.
	ErrStalled = errors.New("transfer: no progress within the stall timeout")

	// ErrNegativeLength is returned (unwrapped) by Move for n < 0.
	ErrNegativeLength = errors.New("transfer: negative body length")
)

// Side names the connection a failure belongs to.
type Side uint8

const (
	// SideSrc is the source connection: the client sending the body.
	SideSrc Side = iota + 1
	// SideDst is the destination connection: the upstream receiving it.
	SideDst
)

// String returns "src" or "dst".
func (s Side) String() string {
	switch s {
	case SideSrc:
		return "src"
	case SideDst:
		return "dst"
	}
	return "Side(" + strconv.Itoa(int(s)) + ")"
}

// Error is the error type Move returns for every failure of a transfer.
//
// Side tells who failed: SideSrc (the client: closed early, reset, too slow)
// or SideDst (the upstream: reset, closed, not reading). When Move stops
// because its context is done or the stall timeout fired, Side is the
// connection Move was waiting on. Op is the operation: "write" (prefix or
// copied chunk), "read", "splice", or "syscallconn". Err is the cause:
// [ErrShortBody], [ErrStalled], the context's error, an
// [*os.SyscallError] from splice(2), or the error net returned.
type Error struct {
	Side Side
	Op   string
	Err  error
}

// Error returns "transfer: <side> <op>: <cause>".
func (e *Error) Error() string {
	return "transfer: " + e.Side.String() + " " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }
