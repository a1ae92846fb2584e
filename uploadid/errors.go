package uploadid

import "errors"

var (
	// ErrMalformed: the token is not one this package made (not base64url, too short or too
	// long, an unknown version).
	ErrMalformed = errors.New("uploadid: malformed token")
	// ErrMismatch: the token is well-formed but no key's MAC over its binding matches: it was
	// made for another principal, bucket or key, altered, or sealed with a key no longer held.
	ErrMismatch = errors.New("uploadid: token does not match its binding")
	// ErrTooLong: the upstream upload id is empty or too long for its token to fit MaxTokenLen.
	ErrTooLong = errors.New("uploadid: upstream upload id empty or longer than MaxUpstreamLen")
	// ErrNoKey: a Sealer needs at least one key.
	ErrNoKey = errors.New("uploadid: no key")
	// ErrShortKey: a key is shorter than MinKeyLen.
	ErrShortKey = errors.New("uploadid: key shorter than MinKeyLen bytes")
)
