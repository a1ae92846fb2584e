package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mizuchi/uploadr/s3sig"
)

// chunkChecker is a server that accepts PUTs with signed aws-chunked bodies only when every chunk
// signature verifies (s3sig) and the decoded length is the declared one.
func chunkChecker(t *testing.T) (string, chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	errs := make(chan error, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					errs <- checkChunks(req)
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				}
			}()
		}
	}()
	return ln.Addr().String(), errs
}

func checkChunks(req *http.Request) error {
	body := bufio.NewReader(req.Body)
	defer io.Copy(io.Discard, req.Body)
	auth := req.Header.Get("Authorization")
	seed, err := s3sig.NewChunkSeed(creds.SecretKey, []byte(req.Header.Get("X-Amz-Date")), "us-east-1", []byte(auth[len(auth)-64:]))
	if err != nil {
		return err
	}
	var v s3sig.ChunkVerifier
	v.Reset(&seed)
	var total int64
	for {
		line, err := body.ReadString('\n')
		if err != nil {
			return err
		}
		size, sig, ok := strings.Cut(strings.TrimSuffix(line, "\r\n"), ";chunk-signature=")
		n, perr := strconv.ParseInt(size, 16, 64)
		if !ok || perr != nil {
			return fmt.Errorf("chunk line %q", line)
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(body, data); err != nil {
			return err
		}
		if !bytes.HasSuffix(data, []byte("\r\n")) && n > 0 {
			return fmt.Errorf("no CRLF after chunk")
		}
		if n == 0 {
			data = data[:2] // the final CRLF
		}
		if err := v.VerifyChunk(data[:n], []byte(sig)); err != nil {
			return fmt.Errorf("chunk at %d: %v", total, err)
		}
		total += n
		if n == 0 {
			break
		}
	}
	if d := req.Header.Get("X-Amz-Decoded-Content-Length"); d != strconv.FormatInt(total, 10) {
		return fmt.Errorf("decoded %d bytes; header says %s", total, d)
	}
	return nil
}

func TestRunSignedChunks(t *testing.T) {
	for _, size := range []int64{0, 1, chunkSize, 100<<10 + 3, fileChunkMax + 5} {
		addr, errs := chunkChecker(t)
		count := int64(3)
		if size > 1<<20 {
			count = 1
		}
		r, err := Run(context.Background(), Config{Addr: addr, Bucket: "b", Size: size, Conns: 1, Count: count, Sign: true, Creds: creds, SignedChunks: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Requests != count || r.Errors != 0 || r.BodyBytes != count*size {
			t.Fatalf("size %d: got %+v", size, r)
		}
		for range count {
			if err := <-errs; err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
		}
	}
}
