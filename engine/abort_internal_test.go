package engine

import (
	"testing"
	"time"
)

// fakeWait is an injected clock and wait for retrier: wait advances the clock by the delay (or
// reports stop, without advancing, once stop is closed) and records the delays.
type fakeWait struct {
	t      time.Time
	delays []time.Duration
}

func (f *fakeWait) now() time.Time { return f.t }

func (f *fakeWait) wait(d time.Duration, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	default:
	}
	f.delays = append(f.delays, d)
	f.t = f.t.Add(d)
	return true
}

func newFakeRetrier(f *fakeWait, first, retryFor time.Duration) *retrier {
	return &retrier{first: first, max: max(abortBackoffMax, first), retryFor: retryFor, now: f.now, wait: f.wait,
		jitter: func(d time.Duration) time.Duration { return d }}
}

// outcomes returns an attempt function that answers outs in order, then the last one forever.
func outcomes(outs ...abortOutcome) (func() abortOutcome, *int) {
	n := 0
	return func() abortOutcome {
		n++
		return outs[min(n, len(outs))-1]
	}, &n
}

func TestRetrierBackoffSchedule(t *testing.T) {
	const s = time.Second
	for _, tc := range []struct {
		name        string
		outs        []abortOutcome
		stopAfter   int // close stop once this many attempts ran; 0 = never
		wantDelays  []time.Duration
		wantOut     abortOutcome
		wantTries   int
		wantStopped bool
	}{
		{
			name:       "succeeds on the fourth attempt",
			outs:       []abortOutcome{abortRetry, abortRetry, abortRetry, abortDone},
			wantDelays: []time.Duration{1 * s, 2 * s, 4 * s, 8 * s},
			wantOut:    abortDone, wantTries: 4,
		},
		{
			name:       "refused: no more attempts",
			outs:       []abortOutcome{abortRetry, abortFinal},
			wantDelays: []time.Duration{1 * s, 2 * s},
			wantOut:    abortFinal, wantTries: 2,
		},
		{
			// 1+2+4+8+16 = 31 s, then 30 s steps; the last delay is cut to end at exactly 10 min.
			name: "never succeeds: ten minutes, delays capped at 30 s",
			outs: []abortOutcome{abortRetry},
			wantDelays: append([]time.Duration{1 * s, 2 * s, 4 * s, 8 * s, 16 * s},
				append(repeat(30*s, 18), 29*s)...),
			wantOut: abortRetry, wantTries: 24,
		},
		{
			name:        "shutdown: one last attempt at once",
			outs:        []abortOutcome{abortRetry, abortRetry, abortDone},
			stopAfter:   2,
			wantDelays:  []time.Duration{1 * s, 2 * s},
			wantOut:     abortDone,
			wantTries:   3,
			wantStopped: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeWait{t: time.Unix(1e9, 0)}
			r := newFakeRetrier(f, s, 10*time.Minute)
			attempt, n := outcomes(tc.outs...)
			stop := make(chan struct{})
			out, tries, stopped := r.run(stop, func() abortOutcome {
				o := attempt()
				if *n == tc.stopAfter {
					close(stop)
				}
				return o
			})
			if out != tc.wantOut || tries != tc.wantTries || stopped != tc.wantStopped {
				t.Errorf("run = %v, %d tries, stopped %v; want %v, %d, %v", out, tries, stopped, tc.wantOut, tc.wantTries, tc.wantStopped)
			}
			if *n != tries {
				t.Errorf("attempt ran %d times; run reported %d", *n, tries)
			}
			if !equalDurations(f.delays, tc.wantDelays) {
				t.Errorf("delays %v; want %v", f.delays, tc.wantDelays)
			}
			var total time.Duration
			for _, d := range f.delays {
				total += d
			}
			if total > 10*time.Minute {
				t.Errorf("retried for %v; want at most 10m", total)
			}
		})
	}
}

// A stop that comes while the retrier waits cuts the wait short: one attempt, at once.
func TestRetrierStopsDuringWait(t *testing.T) {
	f := &fakeWait{t: time.Unix(1e9, 0)}
	r := newFakeRetrier(f, time.Second, time.Hour)
	stop := make(chan struct{})
	close(stop)
	attempt, n := outcomes(abortRetry)
	out, tries, stopped := r.run(stop, attempt)
	if out != abortRetry || tries != 1 || !stopped || *n != 1 || len(f.delays) != 0 {
		t.Errorf("run = %v, %d tries, stopped %v, %d attempts, delays %v; want one immediate attempt", out, tries, stopped, *n, f.delays)
	}
}

func TestHalfJitter(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, 3, time.Millisecond, time.Second, 30 * time.Second} {
		for range 200 {
			if j := halfJitter(d); j < d/2 || j > d {
				t.Fatalf("halfJitter(%v) = %v; want within [%v, %v]", d, j, d/2, d)
			}
		}
	}
}

func TestClassifyAbort(t *testing.T) {
	for status, want := range map[int]abortOutcome{204: abortDone, 200: abortDone, 404: abortDone,
		500: abortRetry, 502: abortRetry, 503: abortRetry, 408: abortRetry, 429: abortRetry,
		403: abortFinal, 400: abortFinal, 301: abortFinal} {
		if got := classifyAbort(status); got != want {
			t.Errorf("classifyAbort(%d) = %v; want %v", status, got, want)
		}
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
