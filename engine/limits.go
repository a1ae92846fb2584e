package engine

// Client limits: connections in total and per source address, and a request rate per source
// address and per principal (token buckets). Every limit answers as S3 does — 503 SlowDown with
// the S3 XML error and a RequestId, which SDKs retry with back-off — and is counted in
// mizuchi_limited_total{limit=...}. All are off by default (0 = unlimited).
//
// Connections over a connection limit are accepted, their first request head is read (bounded by
// the head timeout and the head size limit) and answered 503 SlowDown with Connection: close: a
// client then sees a retryable S3 error instead of a reset. At most maxRefusingConns such
// connections are held at once; past that a connection over a limit is closed at accept. When
// the total is reached, a new connection from a client under its per-address limit makes room by
// closing the oldest idle keep-alive connection (the client reconnects when it next needs one:
// SDKs retry a request whose idle connection was closed); only without an idle one is it refused.
//
// The source address is the IP part of the connection's remote address (the PROXY protocol's
// client address when the listener takes it). The per-principal rate applies after
// authentication, to principals with an ID (an access key id, a JWT subject); anonymous requests
// (auth: none) are limited per address only.

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// Limits bound what clients may take. Zero (or negative) values mean unlimited; the server
// package validates its configuration keys.
type Limits struct {
	// MaxConns bounds client connections held at once (both listeners together).
	MaxConns int
	// MaxConnsPerIP bounds client connections held at once from one source address.
	MaxConnsPerIP int
	// RequestsPerSecondPerIP is the sustained request rate allowed per source address, with
	// BurstPerIP requests allowed at once (0 = max(1, the rate rounded up)).
	RequestsPerSecondPerIP float64
	BurstPerIP             int
	// RequestsPerSecondPerPrincipal is the sustained request rate allowed per authenticated
	// principal, with BurstPerPrincipal requests at once (0 = max(1, the rate rounded up)).
	RequestsPerSecondPerPrincipal float64
	BurstPerPrincipal             int
}

// enabled reports whether any limit is set.
func (l Limits) enabled() bool {
	return l.MaxConns > 0 || l.MaxConnsPerIP > 0 || l.RequestsPerSecondPerIP > 0 || l.RequestsPerSecondPerPrincipal > 0
}

var (
	errLimitConns         = &s3Error{"SlowDown", 503, "Please reduce your request rate: the proxy's connection limit is reached"}
	errLimitConnsPerIP    = &s3Error{"SlowDown", 503, "Please reduce your request rate: too many connections from your address"}
	errLimitRatePerIP     = &s3Error{"SlowDown", 503, "Please reduce your request rate: the request rate limit of your address is reached"}
	errLimitRatePrincipal = &s3Error{"SlowDown", 503, "Please reduce your request rate: the request rate limit of your access key is reached"}
)

// maxRefusingConns bounds the connections held only to answer them 503 SlowDown.
const maxRefusingConns = 1024

// limitShards splits the per-address and per-principal tables (one lock each).
const limitShards = 64

// maxRateEntries bounds each token-bucket table; past it, full (idle) buckets are dropped first.
const maxRateEntries = 64 << 10

// limiter is the engine's client-limit state; nil when no limit is set.
type limiter struct {
	maxConns, perIP int64
	total           atomic.Int64 // connections counted (not those held only to be refused)
	refusing        atomic.Int64
	perIPConns      [limitShards]countShard
	ipRate          *rateTable // nil: no per-address rate
	principalRate   *rateTable // nil: no per-principal rate
}

type countShard struct {
	mu sync.Mutex
	m  map[string]int64
	_  [40]byte // keep shards on separate cache lines
}

// connLimit is a connection's share of the limits (in connState).
type connLimit struct {
	held     atomic.Bool // counted in total and per address: release once
	refusing bool        // over a limit: its first request is answered with refuse
	refuse   *s3Error
	ip       string
}

func newLimiter(l Limits) *limiter {
	if !l.enabled() {
		return nil
	}
	lm := &limiter{maxConns: int64(max(l.MaxConns, 0)), perIP: int64(max(l.MaxConnsPerIP, 0))}
	for i := range lm.perIPConns {
		lm.perIPConns[i].m = map[string]int64{}
	}
	lm.ipRate = newRateTable(l.RequestsPerSecondPerIP, l.BurstPerIP)
	lm.principalRate = newRateTable(l.RequestsPerSecondPerPrincipal, l.BurstPerPrincipal)
	return lm
}

// ipOf returns the address part of "ip:port" or "[ipv6]:port" (a substring: no allocation); a
// bare address is returned as is.
func ipOf(remote string) string {
	if len(remote) > 0 && remote[0] != '[' && strings.Count(remote, ":") > 1 {
		return remote // a bare IPv6 address
	}
	for i := len(remote) - 1; i >= 0; i-- {
		if remote[i] == ':' {
			h := remote[:i]
			if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
				h = h[1 : len(h)-1]
			}
			return h
		}
		if remote[i] == ']' {
			break
		}
	}
	return remote
}

func shardOf(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h % limitShards
}

// admitConn counts a new client connection against the connection limits. It returns false when
// the connection must be closed at once; a connection over a limit that may still be answered is
// marked refusing (its first request gets 503 SlowDown, then it closes).
func (e *Engine) admitConn(st *connState) bool {
	lm := e.lim
	if lm == nil || (lm.maxConns == 0 && lm.perIP == 0) {
		return true
	}
	st.lim.ip = ipOf(st.remote)
	if lm.perIP > 0 {
		s := &lm.perIPConns[shardOf(st.lim.ip)]
		s.mu.Lock()
		n := s.m[st.lim.ip]
		if n >= lm.perIP {
			s.mu.Unlock()
			return e.refuseConn(st, errLimitConnsPerIP, "connections_per_ip")
		}
		s.m[st.lim.ip] = n + 1
		s.mu.Unlock()
	}
	if lm.maxConns > 0 && lm.total.Add(1) > lm.maxConns {
		if !e.evictIdle() {
			lm.total.Add(-1)
			lm.dropIP(st.lim.ip)
			return e.refuseConn(st, errLimitConns, "connections")
		}
	} else if lm.maxConns == 0 {
		lm.total.Add(1)
	}
	st.lim.held.Store(true)
	return true
}

func (lm *limiter) dropIP(ip string) {
	if lm.perIP == 0 {
		return
	}
	s := &lm.perIPConns[shardOf(ip)]
	s.mu.Lock()
	if n := s.m[ip] - 1; n > 0 {
		s.m[ip] = n
	} else {
		delete(s.m, ip)
	}
	s.mu.Unlock()
}

// refuseConn marks st to be answered 503 SlowDown at its first request, or reports false (close
// at once) when too many connections already wait for that.
func (e *Engine) refuseConn(st *connState, s3err *s3Error, limit string) bool {
	e.metrics.limitedBy(limit)
	if e.lim.refusing.Add(1) > maxRefusingConns {
		e.lim.refusing.Add(-1)
		return false
	}
	st.lim.refusing, st.lim.refuse = true, s3err
	// Its first head must come within head_timeout, not idle_timeout (the sweeper, conn.go;
	// Serve's first read, serve.go).
	if t := st.idleSince.Load(); t != 0 {
		st.idleSince.Store(t - int64(e.opts.IdleTimeout) + int64(e.opts.HeadTimeout))
	}
	return true
}

// releaseConn returns a connection's share of the limits (idempotent; called when it ends).
func (e *Engine) releaseConn(st *connState) {
	lm := e.lim
	if lm == nil || st == nil {
		return
	}
	if st.lim.refusing {
		st.lim.refusing = false
		lm.refusing.Add(-1)
	}
	lm.unhold(st)
}

// unhold returns a counted connection's share; it reports false when it was not (or no longer)
// counted, so a connection is released, or evicted, once.
func (lm *limiter) unhold(st *connState) bool {
	if !st.lim.held.CompareAndSwap(true, false) {
		return false
	}
	lm.total.Add(-1)
	lm.dropIP(st.lim.ip)
	return true
}

// evictIdle closes the oldest idle keep-alive client connection (of either listener) to make
// room for a new one, releasing its share of the limits at once. It reports whether there was one.
// It scans every connection: it runs only when the total limit is reached.
func (e *Engine) evictIdle() bool {
	var oldest *connState
	var oldestNet *netConn
	var oldestAt int64 = math.MaxInt64
	idleAt := func(st *connState) int64 {
		if st.phase.Load() != phaseHead || st.headSince.Load() != 0 || !st.lim.held.Load() {
			return 0
		}
		return st.idleSince.Load()
	}
	e.conns.mu.Lock()
	for st := range e.conns.m {
		if t := idleAt(st); t != 0 && t < oldestAt {
			oldest, oldestAt = st, t
		}
	}
	var c gnet.Conn
	if oldest != nil {
		c = oldest.conn
	}
	e.conns.mu.Unlock()
	e.netConns.mu.Lock()
	for nc := range e.netConns.m {
		if !nc.idle.Load() {
			continue
		}
		if t := idleAt(&nc.st); t != 0 && t < oldestAt {
			oldestNet, oldestAt = nc, t
		}
	}
	e.netConns.mu.Unlock()
	switch {
	case oldestNet != nil:
		if !e.lim.unhold(&oldestNet.st) {
			return false // another new connection took this one
		}
		// Its read fails at once and the driver finishes it. In a goroutine: closing a TLS
		// connection writes close_notify, which must not block an event loop.
		go oldestNet.c.Close()
	case oldest != nil && c != nil:
		if !e.lim.unhold(oldest) {
			return false // another new connection took this one
		}
		_ = c.Close()
	default:
		return false
	}
	e.metrics.idleEvicted.Inc()
	return true
}

// admitWithLimits is admit behind the limits: a connection over a connection limit gets 503 SlowDown
// for its first request (and closes); a request over its address's rate is refused before it is
// routed or authenticated; one over its principal's rate after authentication. It allocates
// nothing for a client whose token buckets exist.
func (e *Engine) admitWithLimits(st *connState) decision {
	lm := e.lim
	if lm == nil {
		return e.admit(&st.head)
	}
	if st.lim.refuse != nil {
		st.req.KeepAlive = false // answered, then closed
		return refusal(decision{}, st.lim.refuse)
	}
	now := e.now()
	if lm.ipRate != nil && !lm.ipRate.allow(ipOf(st.remote), now) {
		e.metrics.limitedBy("requests_per_ip")
		return refusal(decision{}, errLimitRatePerIP)
	}
	d := e.admit(&st.head)
	if lm.principalRate != nil && d.verdict != verdictRefuse && d.principal.ID != "" && !lm.principalRate.allow(d.principal.ID, now) {
		e.metrics.limitedBy("requests_per_principal")
		d = refusal(d, errLimitRatePrincipal)
	}
	return d
}

// rateTable holds token buckets by key, sharded, each shard bounded.
type rateTable struct {
	perNano float64 // tokens added per nanosecond
	burst   float64
	full    int64 // nanoseconds an empty bucket takes to fill: an entry idle this long is fresh
	shards  [limitShards]rateShard
}

type rateShard struct {
	mu sync.Mutex
	m  map[string]tokenBucket
	_  [40]byte
}

type tokenBucket struct {
	tokens float64
	last   int64 // unix nanos of the last update
}

func newRateTable(perSecond float64, burst int) *rateTable {
	if !(perSecond > 0) || math.IsInf(perSecond, 0) {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	t := &rateTable{perNano: perSecond / 1e9, burst: float64(burst)}
	t.full = int64(t.burst / t.perNano)
	for i := range t.shards {
		t.shards[i].m = map[string]tokenBucket{}
	}
	return t
}

// allow takes one token from key's bucket at time now (unix nanos) and reports whether there was
// one. A key seen before costs a map lookup and store, no allocation.
func (t *rateTable) allow(key string, now int64) bool {
	s := &t.shards[shardOf(key)]
	s.mu.Lock()
	b, ok := s.m[key]
	if !ok {
		if len(s.m) >= maxRateEntries/limitShards {
			s.evict(now, t.full)
		}
		b = tokenBucket{tokens: t.burst, last: now}
	} else if now > b.last {
		b.tokens = min(t.burst, b.tokens+float64(now-b.last)*t.perNano)
		b.last = now
	}
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	s.m[key] = b
	s.mu.Unlock()
	return allowed
}

// evict drops the entries idle long enough to be full again (forgetting them changes nothing);
// when none is, it drops an arbitrary eighth of the shard.
func (s *rateShard) evict(now, full int64) {
	n := 0
	for k, b := range s.m {
		if now-b.last >= full {
			delete(s.m, k)
			n++
		}
	}
	if n > 0 {
		return
	}
	drop := max(1, len(s.m)/8)
	for k := range s.m {
		delete(s.m, k)
		if drop--; drop == 0 {
			return
		}
	}
}
