// Package httpclient is the HTTP side the authorization clients authz/opa and authz/openfga share:
// the check of a server's base URL, a kept-alive transport that never goes through a proxy, and
// one bounded JSON POST whose failures are each client's own error sentinels. Like those clients
// it uses the standard library only, never logs and counts nothing.
package httpclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// MaxAnswer bounds the bytes read from an answer.
const MaxAnswer = 1 << 20

// Errors are the sentinels of the client that uses this package, wrapped by its failures (the
// caller compares them with errors.Is).
type Errors struct {
	Timeout     error // no answer before the context's deadline or the client's timeout
	Unavailable error // the server could not be reached or answered with a non-200 status
	BadAnswer   error // the request could not be encoded, or the answer was too large
}

// CheckURL accepts an http or https base URL with a host and no query or fragment. name
// prefixes the error ("opa").
func CheckURL(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: url %q: want http://host:port or https://host:port", name, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s: url %q: no query or fragment", name, raw)
	}
	return nil
}

// Client posts JSON to one server with a timeout per request. Safe for concurrent use; it keeps
// connections alive.
type Client struct {
	timeout time.Duration
	errs    Errors
	hc      *http.Client
}

// New returns a client whose requests each take at most timeout (0 = 1 s), over at most maxConns
// connections (0 = 64; all idle ones are kept alive). A negative value is an error prefixed with
// name. It does not dial.
func New(name string, timeout time.Duration, maxConns int, errs Errors) (*Client, error) {
	if timeout < 0 || maxConns < 0 {
		return nil, errors.New(name + ": negative timeout or max conns")
	}
	if timeout == 0 {
		timeout = time.Second
	}
	if maxConns == 0 {
		maxConns = 64
	}
	tr := &http.Transport{
		Proxy:               nil, // an authorization server is local infrastructure: never via HTTP_PROXY
		MaxConnsPerHost:     maxConns,
		MaxIdleConnsPerHost: maxConns,
		MaxIdleConns:        maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Client{timeout: timeout, errs: errs, hc: &http.Client{Transport: tr}}, nil
}

// PostJSON posts v, JSON encoded, to endpoint and returns the body of a 200 answer. A failure
// wraps one of the client's Errors: Timeout when the deadline passed first, Unavailable when the
// server could not be reached, the answer could not be read or its status was not 200 (the
// message quotes the start of the answer), BadAnswer when v could not be encoded or the answer
// was longer than MaxAnswer.
func (c *Client) PostJSON(ctx context.Context, endpoint string, v any) ([]byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", c.errs.BadAnswer, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", c.errs.Unavailable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tc, ok := ctx.Value(traceKey{}).(traceContext); ok {
		req.Header["Traceparent"] = []string{tc.parent}
		if tc.state != "" {
			req.Header["Tracestate"] = []string{tc.state}
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.errs.Timeout
		}
		return nil, fmt.Errorf("%w: %v", c.errs.Unavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.errs.Timeout
		}
		return nil, fmt.Errorf("%w: %v", c.errs.Unavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: %s: %s", c.errs.Unavailable, resp.Status, Quote(raw))
	}
	if len(raw) > MaxAnswer {
		return nil, fmt.Errorf("%w: answer larger than %d bytes", c.errs.BadAnswer, MaxAnswer)
	}
	return raw, nil
}

type traceKey struct{}

// traceContext is the W3C trace context a request is sent with.
type traceContext struct{ parent, state string }

// WithTraceContext returns ctx carrying a W3C traceparent and tracestate that PostJSON sends as the
// request's traceparent and tracestate headers; ctx itself when tp is "" (a tracestate is sent only
// with a traceparent).
func WithTraceContext(ctx context.Context, tp, ts string) context.Context {
	if tp == "" {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, traceContext{tp, ts})
}

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// Quote returns at most 200 bytes of b, quoted, for an error message.
func Quote(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%q…", b[:200])
	}
	return fmt.Sprintf("%q", b)
}
