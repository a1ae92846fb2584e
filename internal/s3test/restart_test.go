package s3test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Stop makes the endpoint refuse connections; Restart brings the same server back: same address,
// keys and data.
func TestStopRestart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.CreateBucket(t, "bkt")
	endpoint, ak := s.Endpoint, s.AccessKey
	if _, err := s.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("bkt"), Key: aws.String("k"), Body: bytes.NewReader([]byte("kept")),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	s.Stop()
	s.Stop() // idempotent
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	if resp, err := hc.Get(s.Endpoint + "/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("GET /health after Stop: %s; want a refused connection", resp.Status)
	}
	s.Restart(t)
	if s.Endpoint != endpoint || s.AccessKey != ak {
		t.Fatalf("Restart changed the endpoint or keys")
	}
	if body, _ := s.GetObject(t, "bkt", "k"); string(body) != "kept" {
		t.Fatalf("object after Restart: %q; want %q", body, "kept")
	}
	s.Restart(t) // restarting a running server works too
	if !s.ObjectExists(t, "bkt", "k") {
		t.Fatal("object lost by the second Restart")
	}
}
