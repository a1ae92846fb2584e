package loadgen

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// MakeBucket creates cfg.Bucket on the server at cfg.Addr with a signed CreateBucket (PUT /bucket)
// on a new connection. An existing bucket of the same owner (409 BucketAlreadyOwnedByYou) is fine.
func MakeBucket(cfg Config) error {
	cfg.Count = 1
	if err := cfg.defaults(); err != nil {
		return err
	}
	w := &conn{cfg: &cfg, key: "/" + cfg.Bucket, body: &body{}, signer: s3sig.NewSigner(nil)}
	cfg.Size = 0
	if err := w.dial(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	defer w.close()
	_, err := w.put(time.Now())
	if err != nil && !errors.Is(err, errStatus) {
		return err
	}
	if err != nil && !containsStatus(err, 409) {
		return fmt.Errorf("loadgen: create bucket %s: %w", cfg.Bucket, err)
	}
	return nil
}

func containsStatus(err error, status int) bool {
	return strings.Contains(err.Error(), ": "+strconv.Itoa(status)+" ")
}
