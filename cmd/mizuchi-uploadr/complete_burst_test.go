package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// signedRequest returns a complete SigV4-signed request (head and body) for method path?query, with
// the body's SHA-256 in x-amz-content-sha256 as aws cli and the SDKs send it for small bodies.
func signedRequest(t *testing.T, method, addr, path, query string, body []byte) []byte {
	t.Helper()
	u := &url.URL{Scheme: "http", Host: addr, Path: path, RawQuery: query}
	req, _ := http.NewRequest(method, u.String(), nil)
	req.ContentLength = int64(len(body))
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", hash)
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := s.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientAK, SecretAccessKey: clientSK}, req,
		hash, "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, u.RequestURI(), addr, len(body))
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// bigCompleteDoc is a well-formed CompleteMultipartUpload document of 10,000 parts whose long ETags
// bring it to limit-512 bytes: every byte must be read and checked before it can
// be forwarded.
func bigCompleteDoc(limit int) []byte {
	const parts = 10000
	head, tail := `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`, `</CompleteMultipartUpload>`
	perPart := (limit - 512 - len(head) - len(tail)) / parts
	var b bytes.Buffer
	b.WriteString(head)
	for i := 1; i <= parts; i++ {
		p := fmt.Sprintf(`<Part><PartNumber>%d</PartNumber><ETag>"</ETag></Part>`, i)
		etag := strings.Repeat(fmt.Sprintf("%x", i%16), perPart-len(p)-1)
		fmt.Fprintf(&b, `<Part><PartNumber>%d</PartNumber><ETag>"%s"</ETag></Part>`, i, etag)
	}
	b.WriteString(strings.Repeat("\n", limit-512-len(tail)-b.Len()))
	b.WriteString(tail)
	return b.Bytes()
}

// burstOutcome is what one client of the burst saw.
type burstOutcome struct {
	status int
	code   string
	err    error // reading the answer
	werr   error // sending the request
}

func (o burstOutcome) String() string {
	switch {
	case o.err != nil && errors.Is(o.err, syscall.ECONNRESET):
		return "read: connection reset"
	case o.err != nil && (errors.Is(o.err, io.EOF) || errors.Is(o.err, io.ErrUnexpectedEOF)):
		return "read: EOF before a complete answer"
	case o.err != nil:
		return "read: " + o.err.Error()
	}
	return fmt.Sprintf("%d %s", o.status, o.code)
}

var codeRe = regexp.MustCompile(`<Code>([A-Za-z]+)</Code>`)

// The review's attack, made of valid documents: 64 authenticated clients send a 4 MiB
// CompleteMultipartUpload at once. Each must get a whole S3 answer — the upstream's InvalidPart for
// documents the proxy forwarded (their parts do not exist), or 503 SlowDown for those past the
// proxy's budget for buffered Complete bodies — and never a reset; the proxy's peak RSS stays under
// 160 MiB.
func TestCompleteBurstBoundedMemory(t *testing.T) {
	const clients, rssLimit = 64, 160 << 20
	up := s3test.Start(t)
	up.CreateBucket(t, "burst")
	r := startBinary(t, up, "burst", nil, nil)

	// A real upload id, created through the proxy.
	query := "uploadId=" + url.QueryEscape(createUploadID(t, r.addr, "/uploads/burst-object"))

	doc := bigCompleteDoc(4 << 20)
	if len(doc) != 4<<20-512 {
		t.Fatalf("document is %d bytes; want just under 4 MiB", len(doc))
	}
	req := signedRequest(t, "POST", r.addr, "/uploads/burst-object", query, doc)
	before := vmHWM(t, r.cmd.Process.Pid)
	outcomes, took := burst(t, r.addr, req, clients)
	hwm := vmHWM(t, r.cmd.Process.Pid)
	t.Logf("%d CompleteMultipartUploads of %d bytes in %v: %s; proxy peak RSS %.1f MiB (%.1f MiB before)",
		clients, len(doc), took.Round(time.Millisecond), summarize(outcomes), float64(hwm)/(1<<20), float64(before)/(1<<20))
	checkBurstOutcomes(t, outcomes)
	if hwm >= rssLimit {
		t.Errorf("proxy peak RSS %d MiB; want < %d MiB", hwm>>20, rssLimit>>20)
	}
	if code, _ := (&proc{admin: r.admin}).get(t, "/readyz"); code != 200 {
		t.Errorf("proxy not ready after the burst: /readyz %d", code)
	}
}

// createUploadID creates a multipart upload of path through the proxy on addr and returns its id.
func createUploadID(t *testing.T, addr, path string) string {
	t.Helper()
	create := signedRequest(t, "POST", addr, path, "uploads=", nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(create); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	c.Close()
	m := regexp.MustCompile(`<UploadId>([^<]+)</UploadId>`).FindSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("CreateMultipartUpload: %d %s", resp.StatusCode, body)
	}
	return string(m[1])
}

// burst sends req on n connections to addr at once, each sender not waiting for an answer before
// its body, and returns what each got and how long it all took.
func burst(t *testing.T, addr string, req []byte, n int) ([]burstOutcome, time.Duration) {
	t.Helper()
	var err error
	conns := make([]net.Conn, n)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		defer conns[i].Close()
	}
	outcomes := make([]burstOutcome, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(2)
		_ = c.SetDeadline(time.Now().Add(3 * time.Minute))
		go func() { // the sender, as a client that does not wait for an answer before its body
			defer wg.Done()
			<-start
			_, outcomes[i].werr = c.Write(req)
		}()
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				outcomes[i].err = err
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			outcomes[i].status, outcomes[i].err = resp.StatusCode, err
			if m := codeRe.FindSubmatch(b); m != nil {
				outcomes[i].code = string(m[1])
			}
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	return outcomes, time.Since(began)
}

// summarize counts the outcomes by kind ("3× 400 InvalidPart, …; N sends failed").
func summarize(outcomes []burstOutcome) string {
	seen := map[string]int{}
	writeFailed := 0
	for _, o := range outcomes {
		seen[o.String()]++
		if o.werr != nil {
			writeFailed++
		}
	}
	var summary []string
	for k, n := range seen {
		summary = append(summary, fmt.Sprintf("%d× %s", n, k))
	}
	sort.Strings(summary)
	return fmt.Sprintf("%s; %d sends failed", strings.Join(summary, ", "), writeFailed)
}

// checkBurstOutcomes: every client got a whole answer, InvalidPart from the upstream (forwarded) or
// SlowDown (over the budget), and some documents were forwarded.
func checkBurstOutcomes(t *testing.T, outcomes []burstOutcome) {
	t.Helper()
	forwarded := 0
	for i, o := range outcomes {
		switch {
		case o.err != nil:
			t.Errorf("client %d: no complete answer: %v (send: %v)", i, o.err, o.werr)
		case o.status == 400 && o.code == "InvalidPart":
			forwarded++
		case o.status == 503 && o.code == "SlowDown":
		default:
			t.Errorf("client %d: %d %q; want 400 InvalidPart (forwarded) or 503 SlowDown (over the budget)", i, o.status, o.code)
		}
	}
	if forwarded == 0 {
		t.Errorf("no document reached the upstream: the budget must let some through")
	}
}
