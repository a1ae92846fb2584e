// Package opa asks an Open Policy Agent server for upload decisions over its REST data API
// (POST /v1/data/<path> {"input": …}). It is a leaf: the standard library only (and
// authz/internal/httpclient, the HTTP side it shares with authz/openfga), no logging, no metrics;
// the caller caches decisions, counts them and maps errors to S3 answers.
package opa

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mizuchi/uploadr/authz/internal/httpclient"
)

// Errors a decision may fail with, compared with errors.Is. A failed decision is a denial (fail
// closed); ErrTimeout tells the caller to answer "try again" rather than "forbidden".
var (
	// ErrTimeout: no answer before the context's deadline (or Config.Timeout).
	ErrTimeout = errors.New("opa: no decision in time")
	// ErrUnavailable: the server could not be reached or answered with a non-200 status.
	ErrUnavailable = errors.New("opa: server unavailable")
	// ErrBadAnswer: the answer was not the JSON document the data API returns.
	ErrBadAnswer = errors.New("opa: malformed answer")
)

// Config addresses a policy decision.
type Config struct {
	// URL is the server's base URL, http or https ("http://127.0.0.1:8181").
	URL string
	// Path is the decision's document path below /v1/data, slash separated ("mizuchi/allow").
	Path string
	// Timeout bounds one decision; 0 = 1 s.
	Timeout time.Duration
	// MaxConns bounds the connections to the server (all idle ones are kept alive); 0 = 64.
	MaxConns int
}

// Input is the document a policy sees as `input`. Every field is always present (empty values
// included), so a policy can rely on them; a nil map is sent as null (the proxy sends {}).
type Input struct {
	Operation     string            `json:"operation"`
	Bucket        string            `json:"bucket"`
	Key           string            `json:"key"`
	ContentLength int64             `json:"content_length"`
	ContentType   string            `json:"content_type"`
	UploadID      string            `json:"upload_id"`
	PartNumber    int               `json:"part_number"`
	Principal     string            `json:"principal"`
	AuthMethod    string            `json:"auth_method"`
	Claims        map[string]any    `json:"claims"`
	SourceIP      string            `json:"source_ip"`
	Headers       map[string]string `json:"headers"`
}

// Client asks one OPA server. Safe for concurrent use; it keeps connections alive.
type Client struct {
	endpoint string // <URL>/v1/data/<Path>
	hc       *httpclient.Client
}

// New checks cfg and returns a client. It does not dial.
func New(cfg Config) (*Client, error) {
	if err := httpclient.CheckURL("opa", cfg.URL); err != nil {
		return nil, err
	}
	path := strings.Trim(cfg.Path, "/")
	if err := checkPath(path); err != nil {
		return nil, err
	}
	hc, err := httpclient.New("opa", cfg.Timeout, cfg.MaxConns, httpclient.Errors{
		Timeout: ErrTimeout, Unavailable: ErrUnavailable, BadAnswer: ErrBadAnswer})
	if err != nil {
		return nil, err
	}
	return &Client{endpoint: strings.TrimRight(cfg.URL, "/") + "/v1/data/" + path, hc: hc}, nil
}

// checkPath accepts a slash-separated path of Rego identifiers ("mizuchi/allow").
func checkPath(p string) error {
	if p == "" {
		return errors.New("opa: path is empty (want e.g. mizuchi/allow)")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" {
			return fmt.Errorf("opa: path %q has an empty segment", p)
		}
		for i, c := range seg {
			if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
				continue
			}
			return fmt.Errorf("opa: path %q: segment %q is not a Rego identifier", p, seg)
		}
	}
	return nil
}

// Endpoint is the URL decisions are posted to.
func (c *Client) Endpoint() string { return c.endpoint }

// Decide posts in and reports whether the decision allows: the result `true`, or an object whose
// "allow" is `true`. An undefined decision (200 `{}`), false, or any other value is a denial
// (false, nil). An error means no decision was had (ErrTimeout, ErrUnavailable, ErrBadAnswer); the
// caller must treat it as a denial too.
func (c *Client) Decide(ctx context.Context, in *Input) (bool, error) {
	raw, err := c.hc.PostJSON(ctx, c.endpoint, struct {
		Input *Input `json:"input"`
	}{in})
	if err != nil {
		return false, err
	}
	return decision(raw)
}

// decision reads the data API's answer {"result": …}.
func decision(raw []byte) (bool, error) {
	var ans struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return false, fmt.Errorf("%w: %v: %s", ErrBadAnswer, err, httpclient.Quote(raw))
	}
	r := bytes.TrimSpace(ans.Result)
	switch {
	case len(r) == 0: // undefined
		return false, nil
	case r[0] == '{':
		var obj struct {
			Allow json.RawMessage `json:"allow"`
		}
		if err := json.Unmarshal(r, &obj); err != nil {
			return false, fmt.Errorf("%w: %v", ErrBadAnswer, err)
		}
		return string(bytes.TrimSpace(obj.Allow)) == "true", nil
	}
	return string(r) == "true", nil
}

// WithTraceContext returns ctx carrying a W3C traceparent (the caller's span) and tracestate that
// Decide sends as its request's traceparent and tracestate headers; ctx itself when tp is "".
func WithTraceContext(ctx context.Context, tp, ts string) context.Context {
	return httpclient.WithTraceContext(ctx, tp, ts)
}

// CloseIdle closes the client's idle connections (after a configuration reload replaced it).
func (c *Client) CloseIdle() { c.hc.CloseIdle() }
