// Package loadgen is the benchmarks' S3 load generator: N keep-alive connections, each sending
// SigV4-signed PutObject requests (signed with s3sig, payload UNSIGNED-PAYLOAD) of one object size,
// for a duration or a number of requests, measuring requests/s, MiB/s and latency percentiles.
//
// Bodies up to 64 KiB go out with the head in one write, as a client with a small object does.
// Larger bodies are sent with sendfile(2) from a file (on tmpfs when there is one; over TLS from
// memory, since sendfile cannot pass through crypto/tls), so that the
// generator spends little CPU on the machine it shares with the proxy under test.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mizuchi/uploadr/bench/internal/benchtls"
	"github.com/mizuchi/uploadr/s3sig"
)

// InlineMax is the largest body written together with its head from memory.
const InlineMax = 64 << 10

// fileChunkMax bounds the body file: larger bodies send it several times.
const fileChunkMax = 64 << 20

// Config describes a run. Addr, Bucket and Size are required; one of Duration and Count.
type Config struct {
	Addr      string // host:port to connect to
	Host      string // Host header; default Addr
	Bucket    string
	KeyPrefix string // object keys are <KeyPrefix><connection index>; default "lg/"
	Size      int64  // body bytes per request
	Conns     int    // connections, each with one request in flight; default 1
	Duration  time.Duration
	Count     int64 // total requests when Duration is 0
	// Sign adds a SigV4 Authorization (s3sig) with Creds and Region; without it no
	// Authorization header is sent (for buckets configured auth: none).
	Sign   bool
	Creds  s3sig.Credentials
	Region string // default us-east-1
	// Timeout bounds one request in count mode; default 10 minutes.
	Timeout time.Duration
	// SignedChunks sends each body as minio-go does over http: aws-chunked, 64 KiB chunks each
	// signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, chained from the header's signature). Needs Sign.
	SignedChunks bool
	// TLS, when set, makes every connection a TLS client with this configuration (https). Bodies
	// are then written from memory (no sendfile through TLS); the handshake happens when a
	// connection is dialled, before the timed run.
	TLS *tls.Config
	// Rate, when above 0, paces each connection's bodies to this many bytes per second, as a client
	// behind a slower link sends (written in pieces of 10 ms worth, at least 16 KiB). 0: as fast as
	// the connection takes them.
	Rate int64
}

// Result is what a run measured. Latencies are in milliseconds, of completed requests (0 when none completed), from the
// first byte of the head written to the last byte of the response read.
type Result struct {
	Requests  int64   `json:"requests"`   // completed with a 2xx answer
	Errors    int64   `json:"errors"`     // non-2xx answers and failed connections
	Aborted   int64   `json:"aborted"`    // in flight when the duration ended (cut off)
	BodyBytes int64   `json:"body_bytes"` // body bytes written, including those of cut-off requests
	Seconds   float64 `json:"seconds"`
	RPS       float64 `json:"rps"`
	MiBps     float64 `json:"mib_per_s"`
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`
	// FirstError describes the first error seen, for diagnosis.
	FirstError string `json:"first_error,omitempty"`
	// TLS is the version and suite the first TLS connection negotiated ("TLS 1.3 TLS_AES_128_GCM_SHA256").
	TLS string `json:"tls,omitempty"`
}

func (c *Config) defaults() error {
	if c.Addr == "" || c.Bucket == "" || c.Size < 0 {
		return errors.New("loadgen: Addr, Bucket and a non-negative Size are required")
	}
	if c.Duration <= 0 && c.Count <= 0 {
		return errors.New("loadgen: one of Duration and Count must be positive")
	}
	if c.Host == "" {
		c.Host = c.Addr
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "lg/"
	}
	if c.Conns <= 0 {
		c.Conns = 1
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.SignedChunks && !c.Sign {
		return errors.New("loadgen: SignedChunks needs Sign")
	}
	return nil
}

// body holds what requests send: the bytes in memory, and for large bodies a file of up to
// fileChunkMax of the same bytes that each connection opens for sendfile.
type body struct {
	mem  []byte
	path string
	sums [][32]byte // SHA-256 of mem's 64 KiB chunks (signed-chunk mode)
}

func newBody(size int64) (*body, error) {
	n := min(size, fileChunkMax)
	mem := make([]byte, n)
	r := rand.New(rand.NewPCG(1, uint64(n)))
	for i := 0; i+8 <= len(mem); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			mem[i+j] = byte(v >> (8 * j))
		}
	}
	b := &body{mem: mem}
	if size <= InlineMax {
		return b, nil
	}
	dir := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir = "/dev/shm"
	}
	f, err := os.CreateTemp(dir, "mizuchi-loadgen-*.bin")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Write(mem); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	b.path = f.Name()
	return b, nil
}

func (b *body) remove() {
	if b.path != "" {
		os.Remove(b.path)
	}
}

// conn is one client connection with its signer and scratch buffers; used by one goroutine.
type conn struct {
	cfg    *Config
	idx    int
	key    string
	c      net.Conn
	br     *bufio.Reader
	file   *os.File
	body   *body
	signer *s3sig.Signer
	head   []byte
	auth   []byte
	date   []byte
	lat    []float64
	bytes  int64
	tls    string // negotiated version and suite (TLS connections)
}

func newConn(cfg *Config, idx int, b *body, keys *s3sig.KeyCache) (*conn, error) {
	w := &conn{cfg: cfg, idx: idx, key: "/" + cfg.Bucket + "/" + cfg.KeyPrefix + strconv.Itoa(idx), body: b, signer: s3sig.NewSigner(keys)}
	if b.path != "" && cfg.TLS == nil {
		f, err := os.Open(b.path)
		if err != nil {
			return nil, err
		}
		w.file = f
	}
	return w, nil
}

func (w *conn) dial(deadline time.Time) error {
	d := net.Dialer{Deadline: deadline}
	if deadline.IsZero() {
		d.Timeout = 30 * time.Second
	}
	c, err := d.Dial("tcp", w.cfg.Addr)
	if err != nil {
		return err
	}
	if w.cfg.TLS != nil {
		tc := tls.Client(c, w.cfg.TLS)
		if !deadline.IsZero() {
			tc.SetDeadline(deadline)
		} else {
			tc.SetDeadline(time.Now().Add(30 * time.Second))
		}
		if err := tc.Handshake(); err != nil {
			c.Close()
			return err
		}
		tc.SetDeadline(time.Time{})
		w.tls = benchtls.Describe(tc.ConnectionState())
		c = tc
	}
	w.c = c
	if w.br == nil {
		w.br = bufio.NewReaderSize(c, 4096)
	} else {
		w.br.Reset(c)
	}
	return nil
}

func (w *conn) close() {
	if w.c != nil {
		w.c.Close()
		w.c = nil
	}
}

var errStatus = errors.New("loadgen: non-2xx answer")

// put sends one PutObject on the open connection and reads the answer. It returns whether the
// connection may be reused. Body bytes written are added to w.bytes even when it fails.
func (w *conn) put(now time.Time) (reuse bool, err error) {
	if w.cfg.SignedChunks {
		return w.putSignedChunks(now)
	}
	w.head = w.head[:0]
	w.head = append(w.head, "PUT "...)
	w.head = append(w.head, w.key...)
	w.head = append(w.head, " HTTP/1.1\r\nHost: "...)
	w.head = append(w.head, w.cfg.Host...)
	w.head = append(w.head, "\r\nContent-Length: "...)
	w.head = strconv.AppendInt(w.head, w.cfg.Size, 10)
	w.head = append(w.head, "\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: "...)
	w.date = s3sig.AppendAmzDate(w.date[:0], now)
	w.head = append(w.head, w.date...)
	if w.cfg.Sign {
		req := s3sig.Request{
			Method: []byte("PUT"),
			Path:   []byte(w.key),
			Headers: []s3sig.Header{
				{Name: []byte("host"), Value: []byte(w.cfg.Host)},
				{Name: []byte("x-amz-content-sha256"), Value: []byte(s3sig.UnsignedPayload)},
				{Name: []byte("x-amz-date"), Value: w.date},
			},
			PayloadHash: []byte(s3sig.UnsignedPayload),
		}
		w.auth, err = w.signer.Sign(w.auth[:0], &req, w.cfg.Creds, w.date, w.cfg.Region, "s3")
		if err != nil {
			return false, err
		}
		w.head = append(w.head, "\r\nAuthorization: "...)
		w.head = append(w.head, w.auth...)
	}
	w.head = append(w.head, "\r\n\r\n"...)
	if w.cfg.Size <= InlineMax {
		w.head = append(w.head, w.body.mem[:w.cfg.Size]...)
		n, err := w.c.Write(w.head)
		w.bytes += max(0, int64(n)-int64(len(w.head))+w.cfg.Size)
		if err != nil {
			return false, err
		}
	} else {
		if _, err := w.c.Write(w.head); err != nil {
			return false, err
		}
		if err := w.sendBody(); err != nil {
			return false, err
		}
	}
	return w.readResponse()
}

func (w *conn) sendBody() error {
	start, sent := time.Now(), int64(0)
	piece := int64(len(w.body.mem))
	if w.cfg.Rate > 0 {
		piece = min(piece, max(16<<10, w.cfg.Rate/100))
	}
	for remain := w.cfg.Size; remain > 0; {
		if w.cfg.Rate > 0 && sent > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(sent) / float64(w.cfg.Rate) * float64(time.Second)))))
		}
		chunk := min(remain, piece)
		var n int64
		var err error
		if w.file != nil {
			if _, err = w.file.Seek(0, io.SeekStart); err != nil {
				return err
			}
			// *net.TCPConn.ReadFrom of a limited *os.File is sendfile(2) on Linux.
			n, err = w.c.(io.ReaderFrom).ReadFrom(io.LimitReader(w.file, chunk))
		} else {
			var m int
			m, err = w.c.Write(w.body.mem[:chunk])
			n = int64(m)
		}
		w.bytes += n
		sent += n
		remain -= n
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
	}
	return nil
}

// readResponse reads one response head and its Content-Length body.
func (w *conn) readResponse() (reuse bool, err error) {
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return false, fmt.Errorf("loadgen: bad status line %q", bytes.TrimSpace(line))
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return false, fmt.Errorf("loadgen: bad status line %q", bytes.TrimSpace(line))
	}
	if status == 100 { // an interim answer: skip its blank line, read the real one
		if _, err := w.br.ReadSlice('\n'); err != nil {
			return false, err
		}
		return w.readResponse()
	}
	length, reuse := int64(0), true
	for {
		h, err := w.br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			length, _ = strconv.ParseInt(string(value), 10, 64)
		case bytes.EqualFold(name, []byte("connection")) && bytes.EqualFold(value, []byte("close")):
			reuse = false
		}
	}
	var text []byte
	if status >= 300 && length > 0 && length < 4096 {
		text, err = w.br.Peek(int(length))
		text = bytes.Clone(text)
	}
	if _, err2 := w.br.Discard(int(length)); err2 != nil && err == nil {
		err = err2
	}
	if err != nil {
		return false, err
	}
	if status < 200 || status > 299 {
		return reuse, fmt.Errorf("%w: %d %s", errStatus, status, bytes.TrimSpace(text))
	}
	return reuse, nil
}

// Run runs the load described by cfg and returns what it measured. It fails only on a bad Config
// or when the body file cannot be written; request failures are counted in the Result.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.defaults(); err != nil {
		return Result{}, err
	}
	b, err := newBody(cfg.Size)
	if err != nil {
		return Result{}, err
	}
	defer b.remove()
	if cfg.SignedChunks {
		b.chunkSums() // once, before the connections share b
	}
	keys := s3sig.NewKeyCache(0)
	conns := make([]*conn, cfg.Conns)
	for i := range conns {
		if conns[i], err = newConn(&cfg, i, b, keys); err != nil {
			return Result{}, err
		}
		defer conns[i].closeFile()
	}
	var t tally
	t.dialAll(conns)

	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.drive(ctx, &cfg, deadline, &t)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if !deadline.IsZero() && elapsed > cfg.Duration {
		elapsed = cfg.Duration // bytes after the deadline are not sent: the window is the duration
	}
	return t.result(conns, elapsed), nil
}

// tally is what the connections of one Run count together; safe for concurrent use.
type tally struct {
	firstErr  atomic.Pointer[string]
	errs      atomic.Int64
	aborted   atomic.Int64
	completed atomic.Int64
	tickets   atomic.Int64 // a run of Count requests: how many were handed out
}

// noteErr counts a failure and keeps the first one's text.
func (t *tally) noteErr(err error) {
	t.errs.Add(1)
	s := err.Error()
	t.firstErr.CompareAndSwap(nil, &s)
}

// dialAll dials every connection, 256 at a time, before the clock starts, so that connection
// setup is not measured (1,000 connections take a while).
func (t *tally) dialAll(conns []*conn) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, w := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := w.dial(time.Time{}); err != nil {
				t.noteErr(err)
			}
		}()
	}
	wg.Wait()
}

// drive sends requests on w, one at a time, until ctx ends, the deadline passes or (no deadline)
// cfg.Count requests have been handed out over all connections; it redials a closed connection.
// A request still in flight when ctx ends or the deadline passes counts as aborted, not failed.
func (w *conn) drive(ctx context.Context, cfg *Config, deadline time.Time, t *tally) {
	defer w.close()
	stop := context.AfterFunc(ctx, func() { w.setDeadline(time.Now()) })
	defer stop()
	for {
		if ctx.Err() != nil {
			return
		}
		if deadline.IsZero() {
			if t.tickets.Add(1) > cfg.Count {
				return
			}
		} else if !time.Now().Before(deadline) {
			return
		}
		if w.c == nil {
			if err := w.dial(deadline); err != nil {
				if !deadline.IsZero() && !time.Now().Before(deadline) {
					return
				}
				t.noteErr(err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
		}
		t0 := time.Now()
		if deadline.IsZero() {
			w.setDeadline(t0.Add(cfg.Timeout))
		} else {
			w.setDeadline(deadline)
		}
		reuse, err := w.put(t0)
		switch {
		case err == nil:
			t.completed.Add(1)
			w.lat = append(w.lat, float64(time.Since(t0).Microseconds())/1000)
		case errors.Is(err, errStatus):
			t.noteErr(err)
		case ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)):
			t.aborted.Add(1)
			reuse = false
		default:
			t.noteErr(err)
			reuse = false
		}
		if !reuse {
			w.close()
		}
	}
}

// result sums the connections' bytes and latencies into the Result of a run that took elapsed.
// The connections must be done.
func (t *tally) result(conns []*conn, elapsed time.Duration) Result {
	var lat []float64
	var total int64
	negotiated := ""
	for _, w := range conns {
		lat = append(lat, w.lat...)
		total += w.bytes
		if negotiated == "" {
			negotiated = w.tls
		}
	}
	r := Result{
		Requests:  t.completed.Load(),
		Errors:    t.errs.Load(),
		Aborted:   t.aborted.Load(),
		BodyBytes: total,
		Seconds:   elapsed.Seconds(),
		TLS:       negotiated,
	}
	if p := t.firstErr.Load(); p != nil {
		r.FirstError = *p
	}
	r.RPS = float64(r.Requests) / r.Seconds
	r.MiBps = float64(r.BodyBytes) / (1 << 20) / r.Seconds
	r.P50, r.P90, r.P99, r.Max = percentiles(lat)
	return r
}

func (w *conn) setDeadline(t time.Time) {
	if c := w.c; c != nil {
		c.SetDeadline(t)
	}
}

func (w *conn) closeFile() {
	if w.file != nil {
		w.file.Close()
	}
}

// percentiles returns p50, p90, p99 and the maximum of v (nearest rank); zeros when v is empty
// (JSON has no NaN).
func percentiles(v []float64) (p50, p90, p99, top float64) {
	if len(v) == 0 {
		return 0, 0, 0, 0
	}
	slices.Sort(v)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(v)))) - 1
		return v[max(0, min(i, len(v)-1))]
	}
	return rank(0.50), rank(0.90), rank(0.99), v[len(v)-1]
}

// ParseSize parses a byte count: "4096", "4KiB", "1MiB", "64MiB", "1GiB" (also KB/MB/GB/K/M/G as
// binary multiples).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("loadgen: bad size %q", s)
	}
	return n * mult, nil
}

// FormatSize writes n as the largest binary unit that divides it: 4KiB, 1MiB, 1GiB, 1000B.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}
