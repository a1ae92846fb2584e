package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// IdleResult is what Idle measured.
type IdleResult struct {
	Opened int64 `json:"opened"` // connections that completed their first PUT
	Alive  int64 `json:"alive"`  // of those, connections that completed a second PUT after the hold
	// FirstError describes the first failure, for diagnosis.
	FirstError string `json:"first_error,omitempty"`
}

// Idle opens cfg.Conns keep-alive connections and sends one PUT of cfg.Size on each (256 at a
// time), calls ready, keeps them all open and idle for hold, then sends a second PUT on each to
// check the server kept them. cfg.Duration and cfg.Count are ignored.
func Idle(ctx context.Context, cfg Config, hold time.Duration, ready func(opened int64)) (IdleResult, error) {
	cfg.Count = 1
	if err := cfg.defaults(); err != nil {
		return IdleResult{}, err
	}
	b, err := newBody(cfg.Size)
	if err != nil {
		return IdleResult{}, err
	}
	defer b.remove()
	keys := s3sig.NewKeyCache(0)
	conns := make([]*conn, cfg.Conns)
	for i := range conns {
		if conns[i], err = newConn(&cfg, i, b, keys); err != nil {
			return IdleResult{}, err
		}
		defer conns[i].closeFile()
		defer conns[i].close()
	}
	var res IdleResult
	var firstErr atomic.Pointer[string]
	round := func(dial bool) int64 {
		var ok atomic.Int64
		var wg sync.WaitGroup
		sem := make(chan struct{}, 256)
		for _, w := range conns {
			if !dial && w.c == nil {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if dial {
					if err := w.dial(time.Time{}); err != nil {
						s := err.Error()
						firstErr.CompareAndSwap(nil, &s)
						return
					}
				}
				w.setDeadline(time.Now().Add(cfg.Timeout))
				reuse, err := w.put(time.Now())
				if err != nil || !reuse {
					if err != nil {
						s := err.Error()
						firstErr.CompareAndSwap(nil, &s)
					}
					w.close()
					return
				}
				w.setDeadline(time.Time{})
				ok.Add(1)
			}()
		}
		wg.Wait()
		return ok.Load()
	}
	res.Opened = round(true)
	if ready != nil {
		ready(res.Opened)
	}
	select {
	case <-time.After(hold):
	case <-ctx.Done():
	}
	res.Alive = round(false)
	if p := firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	return res, nil
}
