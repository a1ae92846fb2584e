package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// With server.plain_listener: false (-plain-listener=false) only the https listener serves: nothing
// listens on server.address, uploads over TLS work (inline, streamed and multipart-sized bodies),
// /readyz answers 200, and SIGTERM drains and exits 0.
func TestTLSOnlyListener(t *testing.T) {
	p := startTLSProxy(t, "tlsonly", "-plain-listener=false")
	if c, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("the plain listener %s accepts connections with -plain-listener=false", p.addr)
	}
	cl := p.sdk(t)
	for _, size := range []int{100, 1 << 20, 9 << 20} {
		body := randomBytes(t, size)
		key := "only-" + strings.Repeat("k", size%5+1)
		if _, err := cl.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("uploads"),
			Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatalf("PutObject %d over https: %v", size, err)
		}
		p.checkObject(t, "tlsonly", key, body)
	}
	resp, err := http.Get("http://" + p.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz: %d", resp.StatusCode)
	}
	// No event loop runs, so none holds a P: GOMAXPROCS stays the runtime's (spareProc).
	if got := gomaxprocsOf(t, p.admin); got != float64(runtime.GOMAXPROCS(0)) {
		t.Errorf("go_gomaxprocs %v without event loops; want %d, unchanged", got, runtime.GOMAXPROCS(0))
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no exit within 15s of SIGTERM")
	}
}

// -check refuses a configuration that listens nowhere: the plain listener off and no https one.
func TestPlainListenerOffNeedsTLS(t *testing.T) {
	out, err := exec.Command(binPath, "-plain-listener=false", "-check").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "plain_listener") {
		t.Fatalf("-check with nothing to listen on: %v\n%s", err, out)
	}
}
