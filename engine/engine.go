package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/cors"
	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/policy"
	"github.com/mizuchi/uploadr/s3sig"
	"github.com/mizuchi/uploadr/transfer"
	"github.com/mizuchi/uploadr/uploadid"
)

// Engine is the proxy's data plane. Create it with New, start it with Run, stop it with Shutdown.
type Engine struct {
	gnet.BuiltinEventEngine

	opts    Options
	vhosts  []string // Options.VirtualHostSuffixes lowercased, longest first
	limits  httpparse.Limits
	table   atomic.Pointer[bucketTable]
	poolsMu sync.Mutex
	mover   *transfer.Mover
	// readAheads lends detached TLS clients their read-ahead buffers (tlsreadahead.go).
	readAheads *readAheads
	keys       *s3sig.KeyCache
	signers    sync.Pool
	pools      map[string]*upstreamPool
	metrics    *engineMetrics
	ids        *uploadid.Sealer // Options.UploadIDSecrets; nil: each bucket derives its own (sealerFor)
	conns      registry[*connState]
	upConns    registry[*loopUp]
	lim        *limiter // client limits (limits.go); nil: none

	completeBudget *byteBudget // CompleteMultipartUpload body bytes held at once

	aborts *aborter // background abort retriers (abort.go); guarded by abortersMu

	listenersMu sync.Mutex
	listeners   []net.Listener       // Serve's
	netConns    registry[*netConn]   // Serve's connections
	handshakes  registry[*handshake] // ServeTLS's connections in their handshake (drain.go)

	loopsMu sync.Mutex
	loops   map[gnet.EventLoop]*loopState

	gnetEngine gnet.Engine
	booted     atomic.Bool
	bootCh     chan struct{}
	loopsUp    chan struct{} // closed by the first OnTick: gnet's event loops run
	loopsOnce  sync.Once
	gnetDone   chan struct{} // closed when gnet.Run returned
	stopped    chan struct{} // closed by Shutdown when there is no plain listener (runHousekeeping)
	draining   atomic.Bool
	killCtx    context.Context // cancelled at the drain deadline: cuts transfers still running
	kill       context.CancelFunc
	active     atomic.Int64 // requests in flight (inline + detached)
	arriving   atomic.Int64 // accepted by Serve or ServeTLS, not yet registered as served (drain.go)

	idPrefix [8]byte
	idSeq    atomic.Uint64
}

// bucketTable is the immutable set of buckets requests are routed against (route_bucket.go).
type bucketTable struct {
	buckets   []bucketState // the named entries
	wild      *bucketState  // the "*" entry, nil without one
	wildCache wildCache     // the "*" entry's states per bucket name
}

// clientCred is one client credential; accessKey doubles as the access log's principal.
type clientCred struct{ accessKey, secret string }

// bucketState is a Bucket prepared for the hot path.
type bucketState struct {
	name       string
	up         Upstream
	cred       s3sig.Credentials
	hostHeader []byte
	pool       *upstreamPool
	auth       Authenticator
	authz      Authorizer // nil: every authenticated request may proceed
	authzHdrs  []string   // Bucket.AuthzHeaders
	upload     UploadOptions
	label      string     // the metrics label: name, or "*" for a bucket the "*" entry serves
	pending    *wildCache // non-nil: made by the "*" entry for one request, cached once authenticated

	policy *policy.Policy   // nil: no upload rules
	cors   *cors.Config     // nil: no CORS rules (cors.go)
	ids    *uploadid.Sealer // seals and opens the upload ids clients see (uploadid.go)
}

// New validates o and prepares an Engine.
func New(o Options) (*Engine, error) {
	o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		opts:     o,
		vhosts:   hostSuffixes(o.VirtualHostSuffixes),
		limits:   httpparse.Limits{MaxHeadBytes: o.MaxHeadBytes, MaxTargetBytes: o.MaxURIBytes},
		keys:     s3sig.NewKeyCache(1024),
		pools:    map[string]*upstreamPool{},
		metrics:  newEngineMetrics(),
		bootCh:   make(chan struct{}),
		loopsUp:  make(chan struct{}),
		gnetDone: make(chan struct{}),
		stopped:  make(chan struct{}),
		loops:    map[gnet.EventLoop]*loopState{},

		completeBudget: newByteBudget(o.CompleteBodyBudget),
		lim:            newLimiter(o.Limits),
	}
	if len(o.UploadIDSecrets) > 0 {
		e.ids, _ = uploadid.New(o.UploadIDSecrets...) // Validate checked the keys
	}
	e.mover = transfer.NewMover(o.Transfer)
	batch := o.Transfer.ReadBatch // the splice path's read batch serves TLS bodies too
	if batch == 0 {
		batch = transfer.DefaultReadBatch
	}
	e.readAheads = newReadAheads(e.mover.Stats().CopyBuffersMax, batch, o.BodyStallTimeout)
	e.killCtx, e.kill = context.WithCancel(context.Background())
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	hex.Encode(e.idPrefix[:], rnd[:])
	for i := range e.idPrefix {
		if e.idPrefix[i] >= 'a' {
			e.idPrefix[i] -= 'a' - 'A'
		}
	}
	e.table.Store(e.buildTable(o.Buckets))
	return e, nil
}

// buildTable prepares buckets for routing, sharing one upstream pool per endpoint (and CA pool).
func (e *Engine) buildTable(bs []Bucket) *bucketTable {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	t := &bucketTable{}
	used := map[string]bool{}
	for _, b := range bs {
		ep, _ := parseEndpoint(b.Upstream.Endpoint)
		key := fmt.Sprintf("%s %p", b.Upstream.Endpoint, b.Upstream.RootCAs)
		used[key] = true
		p := e.pools[key]
		if p == nil {
			p = newUpstreamPool(ep, b.Upstream.RootCAs, e.opts.Upstream, e.metrics)
			p.log = e.debugLogger()
			e.pools[key] = p
		}
		bs := bucketState{
			name:       b.Name,
			up:         b.Upstream,
			cred:       s3sig.Credentials{AccessKey: b.Upstream.AccessKey, SecretKey: b.Upstream.SecretKey},
			hostHeader: []byte(ep.host),
			pool:       p,
			auth:       e.authenticatorFor(b),
			authz:      b.Authorizer,
			policy:     b.Policy,
			cors:       b.CORS,
			authzHdrs:  b.AuthzHeaders,
			upload:     b.Upload,
			label:      b.Name,
			ids:        e.sealerFor(b),
		}
		if b.Name == WildcardBucket {
			bs.label = wildLabel
			t.wild = &bs
			continue
		}
		t.buckets = append(t.buckets, bs)
	}
	for key, p := range e.pools {
		if !used[key] {
			delete(e.pools, key) // requests still using it keep it alive; its idle connections go now
			p.closeIdle()
		}
	}
	return t
}

// authenticatorFor returns the bucket's Authenticator: its own (with Credentials too: its own for
// requests carrying a token, SigV4 for the others), else `auth: none`, else SigV4 against its
// client credentials.
func (e *Engine) authenticatorFor(b Bucket) Authenticator {
	switch {
	case b.Authenticator != nil && len(b.Credentials) > 0:
		return &eitherAuth{token: b.Authenticator, sigv4: e.sigv4For(b)} // auth_token.go
	case b.Authenticator != nil:
		return b.Authenticator
	case b.AuthNone:
		return noneAuth{}
	}
	return e.sigv4For(b)
}

func (e *Engine) sigv4For(b Bucket) *sigv4Auth {
	regions := b.SigningRegions
	if len(regions) == 0 {
		regions = []string{b.Upstream.Region}
	}
	return &sigv4Auth{e: e, creds: clientCreds(b.Credentials), regions: regions}
}

func clientCreds(m map[string]string) map[string]*clientCred {
	out := make(map[string]*clientCred, len(m))
	for ak, sk := range m {
		out[ak] = &clientCred{accessKey: ak, secret: sk}
	}
	return out
}

// UpdateBuckets replaces the bucket table atomically (configuration reload). Requests already routed
// finish with the bucket they had; connections are not dropped. An invalid set leaves the old table.
func (e *Engine) UpdateBuckets(bs []Bucket) error {
	o := e.opts
	o.Buckets = append([]Bucket(nil), bs...)
	o.withDefaults()
	if err := o.Validate(); err != nil {
		return err
	}
	e.table.Store(e.buildTable(o.Buckets))
	return nil
}

// Run serves until ctx is cancelled or Shutdown is called. It blocks.
func (e *Engine) Run(ctx context.Context) error {
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(e.opts.EventLoops),
		gnet.WithReusePort(e.opts.ReusePort), // opt-in: the upgrade hand-over (handover_linux.go)
		gnet.WithReuseAddr(true),
		gnet.WithTicker(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithTCPKeepAlive(30 * time.Second),
		gnet.WithReadBufferCap(readBufferCap),
		gnet.WithLogger(gnetLogger{e.opts.Logger}),
		// ServeTLS enrolls its clients with Engine.Register, which asks the balancer for a loop
		// beside gnet's acceptor: the round-robin balancer's counter would race. The source-address
		// hash only reads (crc32 of the client's ip:port modulo the loops), and spreads the clients
		// as the kernel spreads them over the loops' sockets with reuse_port.
		gnet.WithLoadBalancing(gnet.SourceAddrHash),
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(sctx)
	})
	defer stop()
	var err error
	if e.opts.NoPlainListener {
		e.runHousekeeping()
	} else {
		err = gnet.Run(e, "tcp://"+e.opts.Address, opts...)
		close(e.gnetDone)
	}
	e.mover.Close()
	e.loopsMu.Lock()
	for _, ls := range e.loops {
		if ls.pipe != nil {
			ls.pipe.close()
			ls.pipe = nil
		}
	}
	e.loopsMu.Unlock()
	e.poolsMu.Lock()
	for _, p := range e.pools {
		p.closeIdle()
	}
	e.poolsMu.Unlock()
	return err
}

// WaitReady blocks until the listener is up or ctx ends.
func (e *Engine) WaitReady(ctx context.Context) error {
	select {
	case <-e.bootCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Shutdown stops accepting, waits for requests in flight until ctx ends, then stops the loops.
func (e *Engine) Shutdown(ctx context.Context) error {
	if !e.draining.CompareAndSwap(false, true) {
		return nil
	}
	e.closeListeners()
	if !e.opts.NoPlainListener {
		e.closeListenersForDrain() // new connections are refused (or go to the process taking over)
	}
	if !e.booted.Load() {
		return errors.New("engine: not running")
	}
	e.waitIdle(ctx, true)
	if e.active.Load() > 0 {
		// Drain deadline: cut what still runs. Transfers reset their upstream connection (no
		// partial object) and auto-chunked uploads are aborted; give that cleanup a moment.
		e.opts.Logger.Warn("drain deadline reached: cutting uploads in flight", "uploads", e.active.Load())
		e.kill()
		e.cutStreams() // in-loop streams (inline_stream.go)
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		e.waitIdle(cctx, false)
		cancel()
	}
	actx, acancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = e.finishAborts(actx) // background aborts: one last attempt each, then give up (abort.go)
	acancel()
	if e.opts.NoPlainListener {
		close(e.stopped)
		return nil
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.gnetEngine.Stop(sctx)
}

// runHousekeeping stands in for the event loops when there is no plain listener: it marks the
// engine booted and sweeps (timeouts, idle upstream connections) until Shutdown.
func (e *Engine) runHousekeeping() {
	e.booted.Store(true)
	close(e.bootCh)
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stopped:
			return
		case <-t.C:
			e.sweep()
		}
	}
}

// waitIdle waits until no request is in flight (and with conns, no connection has one to come:
// drain.go), or ctx ends.
func (e *Engine) waitIdle(ctx context.Context, conns bool) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for e.active.Load() > 0 || conns && e.requestsToCome() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ActiveUploads is the number of requests in flight.
func (e *Engine) ActiveUploads() int64 { return e.active.Load() }

// Ready reports whether the engine serves requests (false before boot and while draining).
func (e *Engine) Ready() bool { return e.booted.Load() && !e.draining.Load() }

// TransferStats exposes the mover's pipe statistics.
func (e *Engine) TransferStats() transfer.Stats { return e.mover.Stats() }

func (e *Engine) now() int64 { return e.opts.Now().UnixNano() }

// newRequestID writes a 16-character uppercase hex request id: 8 characters of this process's
// random prefix and 8 of a counter.
func (e *Engine) newRequestID(dst *[16]byte) {
	copy(dst[:8], e.idPrefix[:])
	n := uint32(e.idSeq.Add(1))
	const digits = "0123456789ABCDEF"
	for i := 15; i >= 8; i-- {
		dst[i] = digits[n&0xf]
		n >>= 4
	}
}

// sweepInterval is how often OnTick looks for timed-out connections.
const sweepInterval = 500 * time.Millisecond

// registry is a locked set: the connections the loops own (for the sweeper's timeouts), the
// loop-owned upstream connections, the net.Listener driver's connections.
type registry[T comparable] struct {
	mu sync.Mutex
	m  map[T]struct{}
}

func (r *registry[T]) add(x T) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[T]struct{}{}
	}
	r.m[x] = struct{}{}
	r.mu.Unlock()
}

func (r *registry[T]) remove(x T) {
	r.mu.Lock()
	delete(r.m, x)
	r.mu.Unlock()
}

// sweep enforces the connection timeouts: a head or an idle keep-alive connection that ran out is
// closed; a stalled inline body is answered 400 RequestTimeout and a decision that did not come
// in time 503 SlowDown, on the connection's loop; a drain that ran out is closed. Closing is
// asynchronous (gnet's Conn.Close is safe from any goroutine).
func (e *Engine) sweep() {
	now := e.now()
	e.sweepUpstreams(now)
	head, body, idle := int64(e.opts.HeadTimeout), int64(e.opts.BodyStallTimeout), int64(e.opts.IdleTimeout)
	await := int64(e.opts.AuthorizeTimeout + sweepInterval)
	grace := int64(e.firstRequestGrace())
	type late struct {
		st  *connState
		c   gnet.Conn
		gen uint32
		err *s3Error
	}
	var answer []late
	var conns []gnet.Conn
	e.conns.mu.Lock()
	for st := range e.conns.m {
		since := st.since.Load()
		switch st.phase.Load() {
		case phaseHead:
			if t := st.headSince.Load(); t != 0 && now-t > head {
				conns = append(conns, st.conn)
			} else if t := st.idleSince.Load(); t != 0 && now-t > idle {
				conns = append(conns, st.conn)
			} else if e.draining.Load() && st.headSince.Load() == 0 && (!st.fresh.Load() || now-st.idleSince.Load() > grace) {
				conns = append(conns, st.conn) // idle keep-alive connection, or one that sent nothing in its grace, while draining (drain.go)
			}
		case phaseBody, phaseStream:
			if since != 0 && now-since > body {
				answer = append(answer, late{st, st.conn, st.gen.Load(), errRequestTimeout})
			}
		case phaseAwait:
			if since != 0 && now-since > await {
				answer = append(answer, late{st, st.conn, st.gen.Load(), errAuthorizeTimeout})
			}
		case phaseDrain:
			if since != 0 && now-since > int64(lingerTime) {
				conns = append(conns, st.conn)
			}
		}
	}
	e.conns.mu.Unlock()
	for _, c := range conns {
		e.metrics.timeouts.Inc()
		_ = c.Close()
	}
	for _, l := range answer {
		e.metrics.timeouts.Inc()
		st, want, s3err := l.st, l.st.phase.Load(), l.err
		e.onLoop(st, l.c, l.gen, func(c gnet.Conn) {
			if st.phase.Load() != want || st.req == nil {
				return
			}
			if want == phaseStream {
				e.abortStream(c, st, s3err, false, true)
				return
			}
			buf, _ := c.Peek(-1)
			if want == phaseAwait {
				if e.refuseRequest(c, st, buf, s3err) == gnet.Close {
					_ = c.Close()
				}
				return
			}
			e.refuse(c, st, s3err, st.req.Path.Bytes(buf), true)
			_ = c.Close()
		})
	}
}

// EventLoops returns the number of event loops the engine runs (Options.EventLoops, resolved):
// 0 with NoPlainListener, which runs none.
func (e *Engine) EventLoops() int {
	if e.opts.NoPlainListener {
		return 0
	}
	return e.opts.EventLoops
}

// String describes the engine for logs.
func (e *Engine) String() string {
	return fmt.Sprintf("engine(%s, %d loops, %d buckets)", e.opts.Address, e.opts.EventLoops, len(e.table.Load().buckets))
}
