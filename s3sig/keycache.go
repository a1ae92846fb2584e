package s3sig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// DefaultKeyCacheSize is the bound NewKeyCache uses when given max <= 0, and
// the bound of the cache a Signer without one shares with all such Signers.
const DefaultKeyCacheSize = 1024

// KeyCache caches SigV4 signing keys, one per (secret, yyyymmdd, region,
// service). It is safe for concurrent use and meant to be shared by all the
// Signers of a process. A hit takes a read lock and allocates nothing; a miss
// derives the key (four HMAC-SHA256) under the write lock.
//
// The cache holds at most max entries. When full, an entry of the oldest
// scope date is evicted, so yesterday's keys leave first at midnight. Entries
// are keyed by the secret itself: the cache holds secrets in memory for as
// long as their entries live, like the caller's credential store does.
type KeyCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]cachedKey
}

type cachedKey struct {
	key [sha256.Size]byte
	day uint32 // yyyymmdd, for eviction
}

// NewKeyCache returns an empty cache bounded to max entries; max <= 0 means
// DefaultKeyCacheSize.
func NewKeyCache(max int) *KeyCache {
	if max <= 0 {
		max = DefaultKeyCacheSize
	}
	return &KeyCache{max: max, m: make(map[string]cachedKey, min(max, 64))}
}

// Len returns the number of cached keys. Safe for concurrent use.
func (c *KeyCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

var (
	defaultKeysOnce sync.Once
	defaultKeys     *KeyCache
)

// sharedKeyCache is the cache of Signers made without one.
func sharedKeyCache() *KeyCache {
	defaultKeysOnce.Do(func() { defaultKeys = NewKeyCache(DefaultKeyCacheSize) })
	return defaultKeys
}

// appendKeyField appends one length-prefixed field of a lookup key. Length
// prefixes make the encoding injective whatever bytes the fields hold.
func appendKeyField[T string | []byte](dst []byte, f T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(f)))
	return append(dst, f...)
}

// appendLookupKey appends the lookup key of a signing key.
func appendLookupKey[T string | []byte](dst []byte, secret string, date []byte, region, service T) []byte {
	dst = appendKeyField(dst, secret)
	dst = appendKeyField(dst, date)
	dst = appendKeyField(dst, region)
	return appendKeyField(dst, service)
}

// lookupFields splits a lookup key back into its four fields.
func lookupFields(lk []byte) (f [4][]byte) {
	for i := range f {
		n, w := binary.Uvarint(lk)
		lk = lk[w:]
		f[i], lk = lk[:n], lk[n:]
	}
	return f
}

// signingKey returns the signing key for a lookup key made by
// appendLookupKey, deriving and caching it on a miss. lk is not retained.
func (c *KeyCache) signingKey(lk []byte) [sha256.Size]byte {
	key, ok := c.lookup(lk)
	if !ok {
		c.store(lk, key)
	}
	return key
}

// lookup returns the signing key for lk and whether it was cached; on a miss it derives the key
// without caching it. lk is not retained.
func (c *KeyCache) lookup(lk []byte) ([sha256.Size]byte, bool) {
	c.mu.RLock()
	e, ok := c.m[string(lk)]
	c.mu.RUnlock()
	if ok {
		return e.key, true
	}
	f := lookupFields(lk)
	return deriveSigningKey(f[0], f[1], f[2], f[3]), false
}

// store caches key under lk, evicting the oldest day's entries when full. lk is not retained.
func (c *KeyCache) store(lk []byte, key [sha256.Size]byte) {
	day, _ := digits(lookupFields(lk)[1])
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[string(lk)]; ok {
		return
	}
	for len(c.m) >= c.max {
		c.evictOldest()
	}
	c.m[string(lk)] = cachedKey{key: key, day: uint32(day)}
}

// cached reports whether lk has an entry (for tests).
func (c *KeyCache) cached(lk []byte) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.m[string(lk)]
	return ok
}

// evictOldest removes one entry of the oldest day. Called with mu held for
// writing, on misses only: O(max).
func (c *KeyCache) evictOldest() {
	var victim string
	first := true
	var oldest uint32
	for k, e := range c.m {
		if first || e.day < oldest {
			victim, oldest, first = k, e.day, false
		}
	}
	delete(c.m, victim)
}

// deriveSigningKey computes
// HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
// It allocates; it runs on cache misses only.
//
// Secrets up to 60 bytes and scope fields up to 128 bytes (every real one) take an allocation-free
// path, so that verifying a request whose key is not cached (a wrong secret, a new day) allocates
// nothing; longer inputs fall back to crypto/hmac.
func deriveSigningKey(secret, date, region, service []byte) (key [sha256.Size]byte) {
	const maxField = 128
	if 4+len(secret) <= sha256.BlockSize && len(date) <= maxField && len(region) <= maxField && len(service) <= maxField {
		var kb [sha256.BlockSize]byte
		k := append(append(kb[:0], "AWS4"...), secret...)
		var buf [sha256.BlockSize + maxField]byte
		n := copy(buf[sha256.BlockSize:], date)
		key = hmacSHA256Key(k, buf[:sha256.BlockSize+n])
		for _, msg := range [3][]byte{region, service, []byte(scopeTerminator)} {
			n = copy(buf[sha256.BlockSize:], msg)
			key = hmacSHA256(&key, buf[:sha256.BlockSize+n])
		}
		return key
	}
	k := append([]byte("AWS4"), secret...)
	for _, msg := range [][]byte{date, region, service, []byte(scopeTerminator)} {
		h := hmac.New(sha256.New, k)
		h.Write(msg)
		k = h.Sum(nil)
	}
	copy(key[:], k)
	return key
}

// hmacSHA256 computes HMAC-SHA256(key, msg) (RFC 2104) for a 32-byte key
// without allocating. buf must hold 64 spare bytes in front of msg: msg is
// buf[64:], and buf[:64] is overwritten with key XOR ipad. Keeping the block
// in front of the message lets one sha256.Sum256 call hash the inner input.
func hmacSHA256(key *[sha256.Size]byte, buf []byte) [sha256.Size]byte {
	return hmacSHA256Key(key[:], buf)
}

// hmacSHA256Key is hmacSHA256 for any key of at most 64 bytes (one SHA-256 block).
func hmacSHA256Key(key []byte, buf []byte) [sha256.Size]byte {
	const ipad, opad = 0x36, 0x5c
	for i := 0; i < sha256.BlockSize; i++ {
		k := byte(0)
		if i < len(key) {
			k = key[i]
		}
		buf[i] = k ^ ipad
	}
	inner := sha256.Sum256(buf)
	var outer [sha256.BlockSize + sha256.Size]byte
	for i := 0; i < sha256.BlockSize; i++ {
		k := byte(0)
		if i < len(key) {
			k = key[i]
		}
		outer[i] = k ^ opad
	}
	copy(outer[sha256.BlockSize:], inner[:])
	return sha256.Sum256(outer[:])
}
