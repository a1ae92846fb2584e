// Package browsertest drives a real headless Chromium (Debian's chromium, installed by
// scripts/setup.sh) from Go tests: a page served by the test on one web origin runs JavaScript
// against a server on another origin (the proxy under test), so the browser's own CORS checks,
// preflights included, decide what the script may send and read.
//
// An origin is scheme, host and port: two loopback servers on different ports are different
// origins. Start launches the browser; NewOrigin serves pages on a fresh loopback port; Eval opens
// a page in a new tab, runs an async script there and returns what the script returns, decoded
// from JSON.
//
// Every page NewOrigin serves at "/" loads Helpers, a small script that defines window.bt:
//
//	bt.bytes(n, seed)  Uint8Array of n deterministic bytes (the same as Bytes(n, seed) in Go)
//	bt.put(url, body, headers)  fetch PUT: resolves to bt.result(resp)
//	bt.result(resp)    {status, body, headers: {name: value of the headers the script may read}}
//	bt.attempt(fn)     runs async fn; resolves to its value or {error: "TypeError: Failed to fetch"}
//
// A fetch the browser's CORS check blocks rejects with a TypeError; bt.attempt turns that into a
// value the test can assert on.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ExecPath is the Chromium binary Debian's chromium package installs.
const ExecPath = "/usr/bin/chromium"

// DefaultTimeout bounds one Eval (navigation and script) when the caller's context has no
// deadline.
const DefaultTimeout = 60 * time.Second

// Browser is one headless Chromium process. Its methods may be called from several goroutines;
// each Eval runs in a tab of its own.
type Browser struct {
	ctx    context.Context // the browser's chromedp context
	cancel context.CancelFunc

	mu      sync.Mutex
	console []string // console messages and uncaught exceptions, for failure messages
}

// New starts Chromium from ExecPath, headless (chromedp adds --no-sandbox when run as root). Close
// stops it.
func New(ctx context.Context) (*Browser, error) {
	if _, err := os.Stat(ExecPath); err != nil {
		return nil, fmt.Errorf("browsertest: %s is missing: run scripts/setup.sh (Debian package chromium): %w", ExecPath, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ExecPath),
		chromedp.Flag("no-proxy-server", true), // the page and the servers are on loopback
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.WithoutCancel(ctx), opts...)
	b := &Browser{}
	bctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(b.listen))
	b.ctx = bctx
	b.cancel = func() { cancelBrowser(); cancelAlloc() }
	// The first Run starts the browser process, tied to the context it runs on: bctx itself (a
	// derived context with a deadline would end the browser with it), so a timer bounds the start.
	timer := time.AfterFunc(30*time.Second, b.cancel)
	err := chromedp.Do(bctx, chromedp.Navigate("about:blank"))
	if !timer.Stop() && err == nil {
		err = errors.New("start timed out")
	}
	if err != nil {
		b.cancel()
		return nil, fmt.Errorf("browsertest: start %s: %w", ExecPath, err)
	}
	return b, nil
}

// Start is New for a test: it fails t if Chromium cannot start and closes the browser when the
// test ends.
func Start(t testing.TB) *Browser {
	t.Helper()
	b, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Close stops the browser and waits for its process to exit.
func (b *Browser) Close() { b.cancel() }

// listen records console output and uncaught exceptions of every tab.
func (b *Browser) listen(ev any) {
	var line string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		parts := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		line = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *runtime.EventExceptionThrown:
		line = "exception: " + ev.ExceptionDetails.Text
		if ex := ev.ExceptionDetails.Exception; ex != nil {
			line += " " + ex.Description
		}
	default:
		return
	}
	b.mu.Lock()
	if len(b.console) < 200 {
		b.console = append(b.console, line)
	}
	b.mu.Unlock()
}

// Console returns the console messages and uncaught exceptions seen so far (at most 200).
func (b *Browser) Console() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// Eval opens pageURL in a new tab, waits for it to load, runs script as the body of an async
// function there and returns the function's result as JSON. script ends with a return statement;
// it may await. A thrown exception, a rejected promise or a navigation failure is an error. The
// tab is closed before Eval returns.
func (b *Browser) Eval(ctx context.Context, pageURL, script string) (json.RawMessage, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	tab, closeTab := chromedp.NewContext(b.ctx)
	defer closeTab()
	stop := context.AfterFunc(ctx, closeTab) // the caller's deadline ends the tab
	defer stop()
	if err := chromedp.Do(tab, chromedp.Navigate(pageURL)); err != nil {
		return nil, fmt.Errorf("browsertest: navigate to %s: %w", pageURL, err)
	}
	expr := "(async () => {\n" + script + "\n})()"
	raw, err := chromedp.Run(tab, chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, fmt.Errorf("browsertest: script on %s: %w", pageURL, err)
	}
	return raw, nil
}

// Eval runs script on pageURL (Browser.Eval) and decodes its result into a T; any error fails t,
// with the browser's console output in the message.
func Eval[T any](t testing.TB, b *Browser, pageURL, script string) T {
	t.Helper()
	var v T
	raw, err := b.Eval(context.Background(), pageURL, script)
	if err != nil {
		t.Fatalf("%v\nbrowser console:\n%s", err, strings.Join(b.Console(), "\n"))
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("browsertest: decode %s into %T: %v", raw, v, err)
	}
	return v
}

// Origin is an HTTP server on a loopback port of its own: a web origin of its own. "/" serves a
// blank page that loads Helpers; Handle adds more.
type Origin struct {
	URL string // "http://127.0.0.1:PORT", also the value of the Origin header its pages send
	mux *http.ServeMux
	srv *http.Server
}

// NewOrigin serves on a fresh loopback port until the test ends.
func NewOrigin(t testing.TB) *Origin {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &Origin{URL: "http://" + l.Addr().String(), mux: http.NewServeMux()}
	o.Page("/", "")
	o.mux.HandleFunc("/bt.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write([]byte(Helpers))
	})
	o.srv = &http.Server{Handler: o.mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = o.srv.Serve(l) }()
	t.Cleanup(func() { _ = o.srv.Close() })
	return o
}

// Handle serves h at pattern (http.ServeMux syntax).
func (o *Origin) Handle(pattern string, h http.Handler) { o.mux.Handle(pattern, h) }

// Page serves an HTML page at path ("/" is taken by NewOrigin's blank page unless replaced first
// — use another path) whose head loads Helpers and whose body is body.
func (o *Origin) Page(path, body string) {
	page := "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>browsertest</title>" +
		"<script src=\"/bt.js\"></script></head>\n<body>" + body + "</body></html>\n"
	pattern := path
	if path == "/" {
		pattern = "/{$}"
	}
	o.mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	})
}

// Bytes returns the n bytes bt.bytes(n, seed) makes in the page: xorshift32 from seed (0 is taken
// as 1), one byte per step.
func Bytes(n int, seed uint32) []byte {
	if seed == 0 {
		seed = 1
	}
	x := seed
	out := make([]byte, n)
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = byte(x)
	}
	return out
}

// Helpers is the script every page of an Origin loads (see the package comment).
const Helpers = `"use strict";
window.bt = {
  bytes(n, seed) {
    let x = (seed >>> 0) || 1;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  },
  async result(resp) {
    const headers = {};
    resp.headers.forEach((v, k) => { headers[k] = v; });
    return {status: resp.status, body: await resp.text(), headers};
  },
  async put(url, body, headers) {
    return bt.result(await fetch(url, {method: "PUT", body, headers: headers || {}}));
  },
  async attempt(fn) {
    try { return await fn(); } catch (e) { return {error: String(e)}; }
  },
};
`
