package main

import (
	"bufio"
	"fmt"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func headInput(bucket, key string) *s3.HeadObjectInput {
	return &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
}

// hogPipes is the child half of TestUnprivilegedProxyFallsBackToCopy: as an unprivileged user it
// takes 1 MiB pipes until the kernel refuses (fs.pipe-user-pages-soft), reports how many it holds,
// and keeps them until its stdin closes.
func hogPipes() {
	n, err := holdPipes(1 << 20)
	fmt.Printf("holding %d pipes (%v)\n", n, err)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// publicTempDir is a temporary directory that an unprivileged user can read and traverse (t.TempDir's
// parent is private to root).
func publicTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mizuchi-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
