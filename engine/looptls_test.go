package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mizuchi/uploadr/engine"
	"github.com/mizuchi/uploadr/internal/s3test"
)

// lockedBuf is a bytes.Buffer safe for a logger written from several goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Small PUTs to an https upstream are sent on loop-owned upstream connections (TLS driven inside
// the event loop): sequential and concurrent requests store the right bytes (up to 64 KiB, whose
// ciphertext outgrows what an idle connection keeps; larger bodies are detached for https), the loop's TLS
// connections are dialled once each and reused, and no goroutine-path connection is dialled.
func TestHTTPSUpstreamSmallPutsInLoop(t *testing.T) {
	logs := &lockedBuf{}
	b := startHTTPSBed(t, func(o *engine.Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	cl := b.p.sdkClient(t)
	put := func(key string, size int, seed int64) {
		body := s3test.RandomBytes(size, seed)
		if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(b.p.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Errorf("PutObject %s: %v", key, err)
			return
		}
		if got, _ := b.srv.GetObject(t, b.p.UpBucket, key); !bytes.Equal(got, body) {
			t.Errorf("%s: stored body differs (%d bytes stored, %d sent)", key, len(got), size)
		}
	}
	for i := range 10 {
		put(fmt.Sprintf("seq/%d", i), []int{0, 1, 4 << 10, 40 << 10, 64 << 10}[i%5], int64(i))
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 6 {
				put(fmt.Sprintf("par/%d/%d", w, i), 1<<10+w*512+i, int64(100*w+i))
			}
		})
	}
	wg.Wait()
	out := logs.String()
	count := func(sub ...string) int {
		n := 0
		for line := range strings.Lines(out) {
			all := true
			for _, s := range sub {
				all = all && strings.Contains(line, s)
			}
			if all {
				n++
			}
		}
		return n
	}
	if n := count("event=dial", "tls=true", "path=loop"); n == 0 {
		t.Fatalf("no loop-owned https upstream connection dialled; upstream connection log:\n%s", out)
	}
	if n := count("event=reuse", "tls=true", "path=loop"); n == 0 {
		t.Fatalf("loop-owned https upstream connections never reused")
	}
	if n := count("event=dial", "path=goroutine"); n != 0 {
		t.Fatalf("%d goroutine-path upstream dials for small PUTs; want 0", n)
	}
}
