package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// At -log-level debug the process logs one line per upstream connection event (dial, reuse, close;
// loop-owned and goroutine connections) and per authentication decision, naming the endpoint and
// the principal, never a secret.
func TestDebugLogConnectionsAndDecisions(t *testing.T) {
	up := s3test.Start(t)
	up.CreateBucket(t, "dbg")
	p := configless(t, up, "dbg", "-log-level", "debug")
	cl := dialClient(t, p.addr)
	for i, size := range []int64{1000, 2000, 3 << 20, 4 << 20} { // inline (loop-owned upstream) and spliced (goroutine pool)
		resp, body, err := cl.put("uploads", "dbg/"+strings.Repeat("k", i+1), size)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("PUT %d: %v %v %s", size, err, resp, body)
		}
	}
	resp, _, err := dialClient(t, p.addr).putAs("uploads", "dbg/denied", 10, clientAK, "wrong-secret", nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("wrong secret: %v %v", err, resp)
	}
	p.signal(t, syscall.SIGTERM)
	p.wait(t, 20*time.Second)
	log := p.stderr.String()
	ep := strings.TrimPrefix(up.Endpoint, "http://")
	for _, w := range []string{
		`msg="upstream connection" event=dial endpoint=` + ep + ` tls=false path=loop local=127.0.0.1:`,
		`msg="upstream connection" event=reuse endpoint=` + ep + ` tls=false path=loop local=127.0.0.1:`,
		`msg="upstream connection" event=dial endpoint=` + ep + ` tls=false path=goroutine local=127.0.0.1:`,
		`msg="upstream connection" event=reuse endpoint=` + ep + ` tls=false path=goroutine local=127.0.0.1:`,
		`msg="upstream connection" event=close endpoint=` + ep,
		`msg="auth decision" request_id=`,
		` bucket=uploads operation=PutObject decision=allow principal=` + clientAK + ` auth_method=sigv4`,
		` bucket=uploads operation=PutObject decision=deny code=SignatureDoesNotMatch`,
	} {
		if !strings.Contains(log, w) {
			t.Errorf("debug log lacks %q", w)
		}
	}
	if n := strings.Count(log, `msg="auth decision"`); n != 5 {
		t.Errorf("%d auth decision lines, want 5 (one per request)", n)
	}
	for _, secret := range []string{clientSK, up.SecretKey, "Signature=", "wrong-secret"} {
		if strings.Contains(log, secret) || strings.Contains(p.stdout.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", log)
	}
}
