package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/s3sig"
	"github.com/mizuchi/uploadr/transfer"
)

// Engine is the proxy's data plane. Create it with New, start it with Run, stop it with Shutdown.
type Engine struct {
	gnet.BuiltinEventEngine

	opts    Options
	limits  httpparse.Limits
	buckets []bucketState
	mover   *transfer.Mover
	keys    *s3sig.KeyCache
	signers sync.Pool
	pools   map[string]*upstreamPool
	metrics *engineMetrics
	conns   registry

	gnetEngine gnet.Engine
	booted     atomic.Bool
	bootCh     chan struct{}
	draining   atomic.Bool
	active     atomic.Int64 // requests in flight (inline + detached)

	idPrefix [8]byte
	idSeq    atomic.Uint64
}

// bucketState is a Bucket prepared for the hot path.
type bucketState struct {
	name       string
	up         Upstream
	cred       s3sig.Credentials
	hostHeader []byte
	pool       *upstreamPool
	authNone   bool
	creds      map[string]string
	upload     UploadOptions
}

// New validates o and prepares an Engine.
func New(o Options) (*Engine, error) {
	o.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		opts:    o,
		limits:  httpparse.Limits{MaxHeadBytes: o.MaxHeadBytes, MaxTargetBytes: o.MaxURIBytes},
		keys:    s3sig.NewKeyCache(1024),
		pools:   map[string]*upstreamPool{},
		metrics: newEngineMetrics(),
		bootCh:  make(chan struct{}),
	}
	e.mover = transfer.NewMover(o.Transfer)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	hex.Encode(e.idPrefix[:], rnd[:])
	for i := range e.idPrefix {
		if e.idPrefix[i] >= 'a' {
			e.idPrefix[i] -= 'a' - 'A'
		}
	}
	for _, b := range o.Buckets {
		ep, _ := parseEndpoint(b.Upstream.Endpoint)
		key := fmt.Sprintf("%s %p", b.Upstream.Endpoint, b.Upstream.RootCAs)
		p := e.pools[key]
		if p == nil {
			p = newUpstreamPool(ep, b.Upstream.RootCAs, o.Upstream, e.metrics)
			e.pools[key] = p
		}
		e.buckets = append(e.buckets, bucketState{
			name:       b.Name,
			up:         b.Upstream,
			cred:       s3sig.Credentials{AccessKey: b.Upstream.AccessKey, SecretKey: b.Upstream.SecretKey},
			hostHeader: []byte(ep.host),
			pool:       p,
			authNone:   b.AuthNone,
			creds:      b.Credentials,
			upload:     b.Upload,
		})
	}
	return e, nil
}

// Run serves until ctx is cancelled or Shutdown is called. It blocks.
func (e *Engine) Run(ctx context.Context) error {
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithNumEventLoop(e.opts.EventLoops),
		gnet.WithReusePort(true),
		gnet.WithReuseAddr(true),
		gnet.WithTicker(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithTCPKeepAlive(30 * time.Second),
		gnet.WithLogger(gnetLogger{e.opts.Logger}),
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(sctx)
	})
	defer stop()
	err := gnet.Run(e, "tcp://"+e.opts.Address, opts...)
	e.mover.Close()
	for _, p := range e.pools {
		p.closeIdle()
	}
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
	if !e.booted.Load() {
		return errors.New("engine: not running")
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for e.active.Load() > 0 {
		select {
		case <-ctx.Done():
			goto stop
		case <-t.C:
		}
	}
stop:
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.gnetEngine.Stop(sctx)
}

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

// finish records a completed request: metrics and the access log line.
func (e *Engine) finish(j *job, status int, bodyBytes, spliced int64) {
	e.metrics.request(j.op, status)
	e.metrics.bytesSplice.Add(int(spliced))
	e.metrics.bytesCopy.Add(int(bodyBytes - spliced))
	e.opts.Logger.Debug("request", "request_id", string(j.reqID[:]), "bucket", j.bucket.name,
		"operation", j.op.String(), "status", status, "bytes", bodyBytes, "spliced", spliced,
		"duration", time.Since(j.started))
}

// sweepInterval is how often OnTick looks for timed-out connections.
const sweepInterval = 500 * time.Millisecond

// registry tracks the connections the loops own so the ticker can enforce timeouts.
type registry struct {
	mu sync.Mutex
	m  map[*connState]struct{}
}

func (r *registry) add(st *connState) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[*connState]struct{}{}
	}
	r.m[st] = struct{}{}
	r.mu.Unlock()
}

func (r *registry) remove(st *connState) {
	r.mu.Lock()
	delete(r.m, st)
	r.mu.Unlock()
}

// sweep closes connections whose head, body or idle time ran out. Closing is asynchronous
// (gnet's Conn.Close is safe from any goroutine).
func (e *Engine) sweep() {
	now := e.now()
	head, body, idle := int64(e.opts.HeadTimeout), int64(e.opts.BodyStallTimeout), int64(e.opts.IdleTimeout)
	var victims []*connState
	var conns []gnet.Conn
	e.conns.mu.Lock()
	for st := range e.conns.m {
		switch st.phase.Load() {
		case phaseHead:
			if t := st.headSince.Load(); t != 0 && now-t > head {
				victims = append(victims, st)
			} else if t := st.idleSince.Load(); t != 0 && now-t > idle {
				victims = append(victims, st)
			} else if e.draining.Load() && st.headSince.Load() == 0 {
				victims = append(victims, st) // idle keep-alive connection while draining
			}
		case phaseBody:
			if t := st.bodySince.Load(); t != 0 && now-t > body {
				victims = append(victims, st)
			}
		}
	}
	for _, st := range victims {
		delete(e.conns.m, st)
		conns = append(conns, st.conn)
	}
	e.conns.mu.Unlock()
	for _, c := range conns {
		e.metrics.timeouts.Inc()
		_ = c.Close()
	}
}

// String describes the engine for logs.
func (e *Engine) String() string {
	return fmt.Sprintf("engine(%s, %d loops, %d buckets)", e.opts.Address, e.opts.EventLoops, len(e.buckets))
}
