package transfer_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/transfer"
)

func TestPoolReusesEmptyPipes(t *testing.T) {
	m := testMover(t, transfer.ModeSplice, transfer.Options{})
	r := newRig(t)
	const rounds, size = 5, 2<<20 - 3 // one pipe each (larger bodies take two: overlap_linux_test.go)
	var parts [][]byte
	for range rounds {
		parts = append(parts, body(size))
	}
	sent := send(r.client, 0, 0, parts...)
	got := sink(r.up, 0)
	for i := range rounds {
		res, err := m.Move(context.Background(), r.dst, r.src, nil, size)
		if err != nil || res.Mode != transfer.ModeSplice {
			t.Fatalf("Move #%d = %+v, %v; want splice, nil", i, res, err)
		}
		if st := m.Stats(); st.PipesIdle != 1 || st.PipesInUse != 0 {
			t.Fatalf("after Move #%d Stats = %+v; want 1 idle, 0 in use", i, st)
		}
	}
	if n := m.PipesCreated(); n != 1 {
		t.Errorf("pipes created = %d; want 1 (reused from the pool)", n)
	}
	if st := m.Stats(); st.PipeSize != transfer.DefaultPipeSize {
		t.Errorf("Stats.PipeSize = %d; want %d", st.PipeSize, transfer.DefaultPipeSize)
	}
	<-sent
	r.dst.Close()
	if s := <-got; s.sum != digest(parts...) {
		t.Errorf("receiver sha256 differs")
	}
}

// waitFor polls cond (test-side only) until it holds or 10s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPoolBounded(t *testing.T) {
	const movers, maxIdle, size = 4, 2, 1<<20 + 1
	m := testMover(t, transfer.ModeSplice, transfer.Options{MaxIdlePipes: maxIdle})
	rigs := make([]*rig, movers)
	var wg sync.WaitGroup
	errs := make(chan error, movers)
	for i := range rigs {
		r := newRig(t)
		rigs[i] = r
		sink(r.up, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := m.Move(context.Background(), r.dst, r.src, nil, size)
			errs <- err
		}()
	}
	// Every transfer holds a pipe while it waits for its client.
	waitFor(t, "4 pipes in use", func() bool { return m.Stats().PipesInUse == movers })
	if st := m.Stats(); st.PipesIdle != 0 {
		t.Errorf("Stats while moving = %+v; want 0 idle", st)
	}
	for _, r := range rigs {
		send(r.client, 0, 0, body(size))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Move = %v", err)
		}
	}
	if st := m.Stats(); st.PipesIdle != maxIdle || st.PipesInUse != 0 {
		t.Errorf("Stats after = %+v; want %d idle (the bound), 0 in use", st, maxIdle)
	}
	if n := m.PipesCreated(); n != movers {
		t.Errorf("pipes created = %d; want %d", n, movers)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if st := m.Stats(); st.PipesIdle != 0 {
		t.Errorf("Stats after Close = %+v; want 0 idle", st)
	}
}

// TestPoolDirtyPipeClosed: a transfer cancelled while its pipe holds bytes
// closes the pipe instead of pooling it; the next transfer gets a new one.
func TestPoolDirtyPipeClosed(t *testing.T) {
	m := testMover(t, transfer.ModeSplice, transfer.Options{})
	r := newRig(t)
	send(r.client, 0, 0, body(64<<20)) // the upstream never reads
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := m.Move(ctx, r.dst, r.src, nil, 64<<20)
	wantError(t, err, transfer.SideDst, context.DeadlineExceeded)
	if res.Spliced == 0 {
		t.Errorf("Spliced = 0; want some bytes before the upstream stopped reading")
	}
	if st := m.Stats(); st.PipesIdle != 0 || st.PipesInUse != 0 {
		t.Errorf("Stats after dirty transfer = %+v; want 0 idle, 0 in use", st)
	}
	r2 := newRig(t)
	moveAndCheck(t, m, r2, transfer.ModeSplice, nil, 100, 0, 0, 0)
	// The 64 MiB transfer held two pipes (the two-pipe path), the next one takes one.
	if n := m.PipesCreated(); n != 3 {
		t.Errorf("pipes created = %d; want 3 (dirty pipes not reused)", n)
	}
}

// TestPoolTinyPipe splices through a one-page pipe: many fill/drain rounds.
func TestPoolTinyPipe(t *testing.T) {
	m := testMover(t, transfer.ModeSplice, transfer.Options{PipeSize: 4096, MinPipeSize: 4096})
	r := newRig(t)
	moveAndCheck(t, m, r, transfer.ModeSplice, testPrefix, 1<<20+4097, 0, 0, 0)
	if st := m.Stats(); st.PipeSize != 4096 {
		t.Errorf("Stats.PipeSize = %d; want 4096", st.PipeSize)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestNoFDLeak runs successful, failed and cancelled transfers on both
// paths and checks every descriptor is closed afterwards.
func TestNoFDLeak(t *testing.T) {
	// Warm up the runtime poller so its descriptors exist before counting.
	newRig(t).close()
	before := openFDs(t)
	m := transfer.NewMover(transfer.Options{MaxIdlePipes: 3})
	var rigs []*rig
	rig := func() *rig { r := newRig(t); rigs = append(rigs, r); return r }
	for _, mode := range modes {
		mm := transfer.NewMover(transfer.Options{ForceCopy: mode == transfer.ModeCopy})
		moveAndCheck(t, mm, rig(), mode, testPrefix, 3<<20, 0, 0, 0)
		mm.Close()
	}
	var wg sync.WaitGroup
	for i := range 6 {
		r := rig()
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 3 {
			case 0: // success
				send(r.client, 0, 0, body(2<<20))
				sink(r.up, 0)
				m.Move(context.Background(), r.dst, r.src, nil, 2<<20)
			case 1: // client gone
				send(r.client, 0, 0, body(1000))
				r.client.CloseWrite()
				sink(r.up, 0)
				m.Move(context.Background(), r.dst, r.src, nil, 2<<20)
			case 2: // dirty pipe, cancelled
				send(r.client, 0, 0, body(64<<20))
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				m.Move(ctx, r.dst, r.src, nil, 64<<20)
			}
		}()
	}
	wg.Wait()
	if st := m.Stats(); st.PipesInUse != 0 || st.PipesIdle > 3 {
		t.Errorf("Stats = %+v; want 0 in use, at most 3 idle", st)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	for _, r := range rigs {
		r.close()
	}
	if after := openFDs(t); after != before {
		t.Errorf("open fds = %d after; want %d as before", after, before)
	}
}
