package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mizuchi/uploadr/internal/s3test"
)

// fleetNode is one proxy process of the fleet; it can be stopped and started again on the same ports.
type fleetNode struct {
	name, cfg, addr, admin string
	env                    []string
	cmd                    *exec.Cmd
	exited                 chan struct{}
	out                    *lockedBuffer
}

const fleetSecret = "scale-out-test-shared-upload-id-secret"

func newFleetNode(t *testing.T, name string, up *s3test.Server, upBucket string) *fleetNode {
	t.Helper()
	n := &fleetNode{
		name:  name,
		addr:  fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
		admin: fmt.Sprintf("127.0.0.1:%d", s3test.FreePort(t)),
		env:   append(os.Environ(), "UP_AK="+up.AccessKey, "UP_SK="+up.SecretKey, "CLIENT_SK="+clientSK, "UPLOAD_ID_SECRET="+fleetSecret),
		out:   &lockedBuffer{},
	}
	cfg := fmt.Sprintf(`server:
  address: %q
  event_loops: 2
  drain_timeout: 10s
  upload_id_secrets: ["${UPLOAD_ID_SECRET}"]
  proxy_protocol: {enabled: true, trusted_cidrs: ["127.0.0.0/8"]}
metrics: {enabled: true, address: %q}
buckets:
  - name: uploads
    s3: {bucket: %s, region: us-east-1, endpoint: %q, access_key: "${UP_AK}", secret_key: "${UP_SK}"}
    auth: {sigv4: {credentials: [{access_key: %s, secret_key: "${CLIENT_SK}"}]}}
`, n.addr, n.admin, upBucket, up.Endpoint, clientAK)
	n.cfg = filepath.Join(publicTempDir(t), "config.yaml")
	if err := os.WriteFile(n.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.stop(t, 15*time.Second)
		if t.Failed() {
			t.Logf("%s said:\n%s", n.name, n.out.String())
		}
	})
	return n
}

// start runs the node and waits until its /readyz answers 200.
func (n *fleetNode) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(binPath, "-config", n.cfg)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = n.out, n.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(n.exited)
	if err := waitReady(n.admin, n.exited, 15*time.Second); err != nil {
		t.Fatalf("%s: %v\n%s", n.name, err, n.out.String())
	}
}

// stop sends SIGTERM and waits for the process to exit (killing it after timeout).
func (n *fleetNode) stop(t *testing.T, timeout time.Duration) error {
	if n.cmd == nil {
		return nil
	}
	defer func() { n.cmd = nil }()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		if code := n.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited %d after SIGTERM", n.name, code)
		}
		return nil
	case <-time.After(timeout):
		_ = n.cmd.Process.Kill()
		<-n.exited
		return fmt.Errorf("%s did not exit within %v of SIGTERM", n.name, timeout)
	}
}

func waitReady(admin string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before it was ready")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrapeActive is the node's mizuchi_uploads_active now (0 if it does not answer).
func (n *fleetNode) scrapeActive(t *testing.T) float64 {
	resp, err := (&http.Client{Timeout: time.Second}).Get("http://" + n.admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "mizuchi_uploads_active "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// uploadPartsServed sums mizuchi_requests_total over the UploadPart series with status 200.
func (n *fleetNode) uploadPartsServed(t *testing.T) float64 { return n.served(t, "UploadPart") }

// putsServed sums mizuchi_requests_total over the PutObject series with status 200.
func (n *fleetNode) putsServed(t *testing.T) float64 { return n.served(t, "PutObject") }

func (n *fleetNode) served(t *testing.T, op string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "mizuchi_requests_total{") && strings.Contains(line, `operation="`+op+`"`) &&
			strings.Contains(line, `status="200"`) {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

// startHAProxy runs HAProxy (mode tcp, round robin, send-proxy-v2, health checks on each node's
// /readyz) in front of nodes and returns its frontend address.
func startHAProxy(t *testing.T, nodes []*fleetNode) string {
	t.Helper()
	var servers strings.Builder
	for _, n := range nodes {
		_, adminPort, _ := net.SplitHostPort(n.admin)
		fmt.Fprintf(&servers, "    server %s %s send-proxy-v2 check port %s inter 200ms fall 1 rise 2\n", n.name, n.addr, adminPort)
	}
	return s3test.StartHAProxy(t, func(front string) string {
		return fmt.Sprintf(`global
    maxconn 2000
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    retries 3
    option redispatch
frontend s3
    bind %s
    default_backend mizuchi
backend mizuchi
    balance roundrobin
    option httpchk GET /readyz
%s`, front, servers.String())
	})
}

// fleetClient is an aws-sdk-go-v2 client with its default retryer whose transport opens a new
// connection for every request, so that HAProxy's round robin spreads the requests over the nodes.
func fleetClient(t *testing.T, endpoint string, dials *atomic.Int64, retried *retryLog) *s3.Client {
	t.Helper()
	t.Setenv("AWS_CA_BUNDLE", "") // plain http: the machine's bundle has no use here
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{DisableKeepAlives: true, ResponseHeaderTimeout: 60 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		}}
	t.Cleanup(tr.CloseIdleConnections)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(clientAK, clientSK, "")),
		config.WithHTTPClient(&http.Client{Transport: tr}),
		config.WithRetryer(func() aws.Retryer { return observedRetryer{retry.NewStandard(), retried} }))
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

// observedRetryer is the SDK's standard (default) retryer that records the errors it judges.
type observedRetryer struct {
	aws.RetryerV2
	log *retryLog
}

func (r observedRetryer) IsErrorRetryable(err error) bool {
	ok := r.RetryerV2.IsErrorRetryable(err)
	r.log.add(fmt.Sprintf("retryable=%v: %v", ok, err))
	return ok
}

// retryLog collects the errors the client's retryer saw.
type retryLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *retryLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, s)
}

func (l *retryLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// seededBody is a seekable, cheap, deterministic body: byte i is (i+seed) mod 251.
type seededBody struct {
	size, off int64
	seed      int
}

func (b *seededBody) Read(p []byte) (int, error) {
	if b.off >= b.size {
		return 0, io.EOF
	}
	if rem := b.size - b.off; int64(len(p)) > rem {
		p = p[:rem]
	}
	total := 0
	for total < len(p) {
		start := int((b.off + int64(total) + int64(b.seed)) % 251)
		total += copy(p[total:], patternBlock[start:])
	}
	b.off += int64(total)
	return total, nil
}

func (b *seededBody) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += b.off
	case io.SeekEnd:
		offset += b.size
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	b.off = offset
	return offset, nil
}

func seededMD5(size int64, seed int) string {
	h := md5.New()
	_, _ = io.Copy(h, &seededBody{size: size, seed: seed})
	return hex.EncodeToString(h.Sum(nil))
}

func md5Of(t *testing.T, r io.Reader) string {
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Three nodes behind HAProxy (mode tcp, round robin, send-proxy-v2, health checks on /readyz) share
// one upstream and one upload-id secret. The parts of one multipart upload go through different
// nodes and it completes intact; then 200 concurrent uploads of 4 KiB..64 MiB all succeed (with the
// SDK's default retryer) while one node is drained by SIGTERM and started again on the same port, and
// the upstream holds exactly those objects, intact, with no multipart upload left over.
func TestScaleOutBehindHAProxy(t *testing.T) {
	up := s3test.Start(t)
	const bucket = "fleet"
	up.CreateBucket(t, bucket)
	var nodes []*fleetNode
	for i := 1; i <= 3; i++ {
		n := newFleetNode(t, fmt.Sprintf("node%d", i), up, bucket)
		n.start(t)
		nodes = append(nodes, n)
	}
	front := startHAProxy(t, nodes)
	var dials atomic.Int64 // one connection per attempt: keep-alive is off
	var retried retryLog
	cl := fleetClient(t, "http://"+front, &dials, &retried)
	waitThrough(t, cl)

	t.Run("multipart across nodes", func(t *testing.T) { multipartAcrossNodes(t, cl, nodes, up, bucket) })
	if t.Failed() {
		return
	}

	t.Run("rolling restart under load", func(t *testing.T) {
		ups := loadUploads()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		dialsBefore, retriedBefore := dials.Load(), len(retried.all())
		const afterRestart = 150
		restarted := make(chan struct{})
		start := time.Now()
		wait := putAll(ctx, cl, ups, afterRestart, restarted)
		// Roll node2 once it has uploads in flight.
		n := nodes[1]
		rollNode(t, n, start, restarted)
		errs := wait()
		t.Logf("200 uploads finished in %v with %d connections (attempts)", time.Since(start), dials.Load()-dialsBefore)
		for _, e := range retried.all()[retriedBefore:] {
			t.Logf("client retryer saw: %s", e)
		}
		if m := regexp.MustCompile(`msg=draining timeout=\S+ uploads=(\d+)`).FindStringSubmatch(n.out.String()); m == nil {
			t.Errorf("node2 did not log its drain")
		} else {
			t.Logf("node2 had %s uploads in flight at SIGTERM", m[1])
		}
		checkLoadUpstream(ctx, t, ups, errs, up, bucket, n)
	})
}

// waitThrough waits until HAProxy sees the nodes up and a request goes through (at most 20 s).
func waitThrough(t *testing.T, cl *s3.Client) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String("warm-up"),
			Body: bytes.NewReader([]byte("warm-up"))})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no upload through HAProxy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// multipartAcrossNodes sends the parts of one multipart upload through HAProxy: at least two
// nodes must serve parts, and the upstream object must be the parts in order.
func multipartAcrossNodes(t *testing.T, cl *s3.Client, nodes []*fleetNode, up *s3test.Server, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := make([]float64, len(nodes))
	for i, n := range nodes {
		before[i] = n.uploadPartsServed(t)
	}
	const key, parts, partSize = "spread", 6, 5 << 20
	cr, err := cl.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("uploads"), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	var done []types.CompletedPart
	for p := 1; p <= parts; p++ {
		out, err := cl.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("uploads"), Key: aws.String(key),
			UploadId: cr.UploadId, PartNumber: aws.Int32(int32(p)),
			Body: &seededBody{size: partSize, seed: p}})
		if err != nil {
			t.Fatalf("UploadPart %d: %v", p, err)
		}
		done = append(done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(p))})
	}
	if _, err := cl.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("uploads"),
		Key: aws.String(key), UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	served := 0
	var counts []float64
	for i, n := range nodes {
		d := n.uploadPartsServed(t) - before[i]
		counts = append(counts, d)
		if d > 0 {
			served++
		}
	}
	t.Logf("UploadPart requests served per node: %v", counts)
	if served < 2 {
		t.Errorf("the %d parts went through %d node(s) %v; want at least 2", parts, served, counts)
	}
	body, _ := up.GetObject(t, bucket, key)
	want := md5.New()
	for p := 1; p <= parts; p++ {
		_, _ = io.Copy(want, &seededBody{size: partSize, seed: p})
	}
	if len(body) != parts*partSize || md5Of(t, bytes.NewReader(body)) != hex.EncodeToString(want.Sum(nil)) {
		t.Errorf("upstream object: %d bytes, not the %d bytes uploaded", len(body), parts*partSize)
	}
}

// fleetUpload is one upload of the rolling-restart load: a key and its seeded body.
type fleetUpload struct {
	key  string
	size int64
	seed int
}

// loadUploads are the 200 uploads of the rolling-restart load: 4 KiB .. 260 KiB, and a few of
// 16 to 64 MiB that start around the SIGTERM.
func loadUploads() []fleetUpload {
	var ups []fleetUpload
	for i := range 200 {
		size := int64(4<<10) + int64(i*7919)%(256<<10) // 4 KiB .. 260 KiB
		switch i {                                     // the big ones start around the SIGTERM
		case 18:
			size = 64 << 20
		case 20:
			size = 32 << 20
		case 16, 19, 21, 23:
			size = 16 << 20
		}
		ups = append(ups, fleetUpload{key: fmt.Sprintf("load/%03d", i), size: size, seed: i})
	}
	return ups
}

// putAll starts every upload through cl, spread over 3 s (15 ms apart) so that they begin before,
// during and after the drain; those from afterRestart on also wait for restarted. The returned
// function waits for all and returns their errors, by index.
func putAll(ctx context.Context, cl *s3.Client, ups []fleetUpload, afterRestart int, restarted chan struct{}) func() []error {
	errs := make([]error, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(time.Duration(i) * 15 * time.Millisecond):
			case <-ctx.Done():
			}
			if i >= afterRestart { // these also wait until HAProxy can see node2 back up
				select {
				case <-restarted:
				case <-ctx.Done():
				}
			}
			_, errs[i] = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("uploads"), Key: aws.String(u.key),
				Body: &seededBody{size: u.size, seed: u.seed}, ContentLength: aws.Int64(u.size)})
		}()
	}
	return func() []error {
		wg.Wait()
		return errs
	}
}

// rollNode waits (at most 3 s) for uploads in flight on n, then sends SIGTERM, waits for its exit,
// starts it again on the same ports and waits for /readyz; restarted closes a second later (HAProxy's
// rise 2 × inter 200ms, with room).
func rollNode(t *testing.T, n *fleetNode, start time.Time, restarted chan struct{}) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	for deadline := time.Now().Add(3 * time.Second); n.scrapeActive(t) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if err := n.stop(t, 20*time.Second); err != nil {
		t.Error(err)
	}
	drained := time.Since(start)
	n.start(t)
	time.AfterFunc(time.Second, func() { close(restarted) }) // rise 2 × inter 200ms, with room
	t.Logf("node2 drained and exited at %v, ready again at %v", drained, time.Since(start))
}

// checkLoadUpstream: every upload succeeded, the upstream holds exactly those objects, intact, the
// restarted node n served some, and no multipart upload is left over.
func checkLoadUpstream(ctx context.Context, t *testing.T, ups []fleetUpload, errs []error, up *s3test.Server, bucket string, n *fleetNode) {
	t.Helper()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 10 {
				t.Errorf("PutObject %s (%d bytes): %v", ups[i].key, ups[i].size, err)
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d uploads failed", failed, len(ups))
	}
	keys := map[string]bool{}
	for _, k := range up.ListKeys(t, bucket) {
		if strings.HasPrefix(k, "load/") {
			keys[k] = true
		}
	}
	if len(keys) != len(ups) {
		t.Errorf("upstream holds %d load/ objects; want %d", len(keys), len(ups))
	}
	for _, u := range ups {
		if !keys[u.key] {
			t.Errorf("upstream lacks %s", u.key)
			continue
		}
		out, err := up.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(u.key)})
		if err != nil {
			t.Errorf("GetObject %s: %v", u.key, err)
			continue
		}
		got := md5Of(t, out.Body)
		out.Body.Close()
		if aws.ToInt64(out.ContentLength) != u.size || got != seededMD5(u.size, u.seed) {
			t.Errorf("upstream %s: %d bytes, MD5 %s; not the %d bytes uploaded", u.key, aws.ToInt64(out.ContentLength), got, u.size)
		}
	}
	served := n.putsServed(t)
	t.Logf("the restarted node2 served %v PutObject requests", served)
	if served == 0 {
		t.Errorf("the restarted node2 served no upload")
	}
	if left := up.ListMultipartUploads(t, bucket); len(left) != 0 {
		t.Errorf("%d multipart uploads left over upstream", len(left))
	}
}
