package transfer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"testing"

	"github.com/mizuchi/uploadr/transfer"
)

// MoveTee delivers every byte (prefix first) to the tee and to dst, on the copy path, even when the
// Mover would splice.
func TestMoveTee(t *testing.T) {
	for _, size := range []int{0, 1, 300 << 10, 3<<20 + 7} {
		m := transfer.NewMover(transfer.Options{})
		r := newRig(t)
		prefix := []byte("prefix-bytes")
		body := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		go func() { _, _ = r.client.Write(body) }()
		got := make(chan []byte, 1)
		go func() { b, _ := io.ReadAll(io.LimitReader(r.up, int64(len(prefix)+size))); got <- b }()
		h := sha256.New()
		res, err := m.MoveTee(context.Background(), r.dst, r.src, prefix, int64(size), h)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		want := append(append([]byte{}, prefix...), body...)
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("size %d: dst got %d bytes; want %d", size, len(b), len(want))
		}
		if sum := sha256.Sum256(want); !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Errorf("size %d: tee saw different bytes", size)
		}
		if res.Spliced != 0 || res.Copied != int64(len(want)) || (size > 0 && res.Mode != transfer.ModeCopy) {
			t.Errorf("size %d: result %+v", size, res)
		}
		m.Close()
	}
}
