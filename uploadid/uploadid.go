package uploadid

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"sync"
)

const (
	// Version is the token format's first byte.
	Version = 1
	// MACLen is the length of the truncated HMAC-SHA256 in a token.
	MACLen = 16
	// MaxTokenLen bounds a token's encoded length (the proxy routes upload ids of up to 1024 bytes).
	MaxTokenLen = 1024
	// MaxUpstreamLen is the longest upstream upload id a token carries: MaxTokenLen characters
	// decode to 768 bytes, 17 of which are the version and the MAC.
	MaxUpstreamLen = MaxTokenLen/4*3 - 1 - MACLen
	// MinKeyLen is the shortest key New accepts.
	MinKeyLen = 16
	// overhead is the token's raw bytes around the upstream id.
	overhead = 1 + MACLen
)

// DeriveLabel is the HKDF info string DeriveKey uses: a key derived for upload ids is useless
// for anything else the same secret keys.
const DeriveLabel = "mizuchi-uploadr upload-id v1"

// enc is base64url without padding, strict: a token has exactly one spelling, so an altered
// last character cannot decode to the same bytes.
var enc = base64.RawURLEncoding.Strict()

// DeriveKey returns a 32-byte key derived from secret with HKDF-SHA256 (RFC 5869; no salt,
// DeriveLabel as info). Processes that share secret derive the same key.
func DeriveKey(secret []byte) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, DeriveLabel, 32)
	if err != nil {
		panic(err) // only for a length HKDF-SHA256 cannot produce; 32 is not one
	}
	return k
}

// Binding is what a token is bound to. Principal and Bucket are compared as given; Key should
// be the decoded object key, so that two spellings of one key bind alike.
type Binding struct {
	Principal string
	Bucket    string
	Key       []byte
}

// A Sealer seals and opens tokens with its keys. It is safe for concurrent use; Seal, Open and
// Verify allocate nothing once warm, beyond growing dst.
type Sealer struct {
	keys    [][]byte
	scratch sync.Pool // of *scratch
}

// scratch is one goroutine's HMACs (one per key) and buffers.
type scratch struct {
	macs []hash.Hash
	msg  []byte // the message a MAC covers
	raw  []byte // a decoded token
	sum  [sha256.Size]byte
}

// New returns a Sealer: keys[0] seals, every key opens. Each key must be at least MinKeyLen
// bytes; the keys are copied.
func New(keys ...[]byte) (*Sealer, error) {
	if len(keys) == 0 {
		return nil, ErrNoKey
	}
	s := &Sealer{keys: make([][]byte, len(keys))}
	for i, k := range keys {
		if len(k) < MinKeyLen {
			return nil, ErrShortKey
		}
		s.keys[i] = append([]byte(nil), k...)
	}
	s.scratch.New = func() any {
		sc := &scratch{macs: make([]hash.Hash, len(s.keys))}
		for i, k := range s.keys {
			sc.macs[i] = hmac.New(sha256.New, k)
		}
		return sc
	}
	return s, nil
}

// Seal appends the token for upstreamID bound to b to dst. upstreamID must be 1 to
// MaxUpstreamLen bytes (ErrTooLong). Seal is deterministic: one key, one binding, one id, one
// token.
func (s *Sealer) Seal(dst, upstreamID []byte, b *Binding) ([]byte, error) {
	if len(upstreamID) == 0 || len(upstreamID) > MaxUpstreamLen {
		return dst, ErrTooLong
	}
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	mac := sc.mac(0, b, upstreamID)
	sc.raw = append(sc.raw[:0], Version)
	sc.raw = append(sc.raw, mac...)
	sc.raw = append(sc.raw, upstreamID...)
	return enc.AppendEncode(dst, sc.raw), nil
}

// Open checks token against b and appends the upstream upload id it carries to dst. It returns
// ErrMalformed or ErrMismatch (and dst unchanged) for a token it refuses. Each key is tried;
// the MACs are compared in constant time.
func (s *Sealer) Open(dst, token []byte, b *Binding) ([]byte, error) {
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	id, err := s.open(sc, token, b)
	if err != nil {
		return dst, err
	}
	return append(dst, id...), nil
}

// Verify is Open without the upstream id.
func (s *Sealer) Verify(token []byte, b *Binding) error {
	sc := s.scratch.Get().(*scratch)
	defer s.scratch.Put(sc)
	_, err := s.open(sc, token, b)
	return err
}

// open returns the upstream id of token, a view into sc.raw.
func (s *Sealer) open(sc *scratch, token []byte, b *Binding) ([]byte, error) {
	if len(token) > MaxTokenLen || len(token) < enc.EncodedLen(overhead+1) {
		return nil, ErrMalformed
	}
	var err error
	if sc.raw, err = enc.AppendDecode(sc.raw[:0], token); err != nil {
		return nil, ErrMalformed
	}
	raw := sc.raw
	if len(raw) <= overhead || raw[0] != Version {
		return nil, ErrMalformed
	}
	got, id := raw[1:overhead], raw[overhead:]
	ok := 0
	for i := range s.keys {
		ok |= boolInt(hmac.Equal(sc.mac(i, b, id), got)) // every key, so the time does not say which
	}
	if ok == 0 {
		return nil, ErrMismatch
	}
	return id, nil
}

// mac computes the truncated MAC of key i over b and id; the result is a view into sc.sum.
func (sc *scratch) mac(i int, b *Binding, id []byte) []byte {
	m := append(sc.msg[:0], Version)
	m = binary.BigEndian.AppendUint32(m, uint32(len(b.Principal)))
	m = append(m, b.Principal...)
	m = binary.BigEndian.AppendUint32(m, uint32(len(b.Bucket)))
	m = append(m, b.Bucket...)
	m = binary.BigEndian.AppendUint32(m, uint32(len(b.Key)))
	m = append(m, b.Key...)
	m = append(m, id...)
	sc.msg = m
	h := sc.macs[i]
	h.Reset()
	h.Write(m)
	return h.Sum(sc.sum[:0])[:MACLen]
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
