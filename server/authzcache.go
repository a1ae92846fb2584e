package server

import (
	"container/list"
	"encoding/json"
	"sync"
	"time"
)

// decisionCache keeps recent authorization decisions: at most size entries (least recently used
// evicted first), each for ttl after it was made. Only decisions are kept (allow and deny), never
// errors. A nil *decisionCache caches nothing. Safe for concurrent use.
type decisionCache struct {
	size int
	ttl  time.Duration

	mu      sync.Mutex
	entries map[string]*list.Element // key -> element holding *cacheEntry
	lru     list.List                // front = most recently used
}

type cacheEntry struct {
	key     string
	allowed bool
	expires time.Time
}

func newDecisionCache(size int, ttl time.Duration) *decisionCache {
	return &decisionCache{size: size, ttl: ttl, entries: make(map[string]*list.Element, size)}
}

// get returns the decision cached for key, if one is and it has not expired at now.
func (c *decisionCache) get(key string, now time.Time) (allowed, ok bool) {
	if c == nil {
		return false, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return false, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return false, false
	}
	c.lru.MoveToFront(el)
	return e.allowed, true
}

// put records a decision made at now, evicting the least recently used entry when full.
func (c *decisionCache) put(key string, allowed bool, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		e := el.Value.(*cacheEntry)
		e.allowed, e.expires = allowed, now.Add(c.ttl)
		c.lru.MoveToFront(el)
		return
	}
	for c.lru.Len() >= c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.entries, old.Value.(*cacheEntry).key)
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, allowed: allowed, expires: now.Add(c.ttl)})
}

// len is the number of entries held (expired ones included until they are looked up or evicted).
func (c *decisionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// cacheKeyJSON is the cache key of a policy input: its JSON (encoding/json sorts map keys, so equal
// inputs give equal keys).
func cacheKeyJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
