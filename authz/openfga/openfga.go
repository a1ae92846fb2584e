// Package openfga asks an OpenFGA server whether a user has a relation to an object
// (POST /stores/{store_id}/check), and expands the templates that build the user and object from
// a request ("user:{principal}", "folder:{bucket}/{key_prefix}"). It is a leaf: the standard
// library only, no logging, no metrics; the caller caches decisions, counts them and maps errors
// to S3 answers.
package openfga

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Errors a check may fail with, compared with errors.Is. A failed check is a denial (fail closed);
// ErrTimeout tells the caller to answer "try again" rather than "forbidden".
var (
	// ErrTimeout: no answer before the context's deadline (or Config.Timeout).
	ErrTimeout = errors.New("openfga: no decision in time")
	// ErrUnavailable: the server could not be reached or answered with a non-200 status.
	ErrUnavailable = errors.New("openfga: server unavailable")
	// ErrBadAnswer: the answer was not the JSON document /check returns.
	ErrBadAnswer = errors.New("openfga: malformed answer")
)

// maxAnswer bounds the bytes read from a check answer.
const maxAnswer = 1 << 20

// Config addresses the checks of one store and model.
type Config struct {
	// URL is the server's HTTP API base URL ("http://127.0.0.1:8080").
	URL string
	// StoreID is the store's id (a ULID).
	StoreID string
	// AuthorizationModelID pins the model checked against; "" = the store's latest model.
	AuthorizationModelID string
	// Timeout bounds one check; 0 = 1 s.
	Timeout time.Duration
	// MaxConns bounds the connections to the server (all idle ones are kept alive); 0 = 64.
	MaxConns int
}

// Tuple is the question a check asks: does User have Relation to Object?
type Tuple struct {
	User     string `json:"user"`
	Relation string `json:"relation"`
	Object   string `json:"object"`
}

// Client checks against one store. Safe for concurrent use; it keeps connections alive.
type Client struct {
	endpoint string // <URL>/stores/<id>/check
	modelID  string
	timeout  time.Duration
	hc       *http.Client
}

// New checks cfg and returns a client. It does not dial.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("openfga: url %q: want http://host:port or https://host:port", cfg.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("openfga: url %q: no query or fragment", cfg.URL)
	}
	if !isID(cfg.StoreID) {
		return nil, fmt.Errorf("openfga: store_id %q: want the store's id (letters and digits)", cfg.StoreID)
	}
	if cfg.AuthorizationModelID != "" && !isID(cfg.AuthorizationModelID) {
		return nil, fmt.Errorf("openfga: authorization_model_id %q: want a model id (letters and digits)", cfg.AuthorizationModelID)
	}
	if cfg.Timeout < 0 || cfg.MaxConns < 0 {
		return nil, errors.New("openfga: negative timeout or max conns")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 64
	}
	tr := &http.Transport{
		Proxy:               nil, // an authorization server is local infrastructure: never via HTTP_PROXY
		MaxConnsPerHost:     cfg.MaxConns,
		MaxIdleConnsPerHost: cfg.MaxConns,
		MaxIdleConns:        cfg.MaxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Client{
		endpoint: strings.TrimRight(cfg.URL, "/") + "/stores/" + cfg.StoreID + "/check",
		modelID:  cfg.AuthorizationModelID,
		timeout:  cfg.Timeout,
		hc:       &http.Client{Transport: tr},
	}, nil
}

// isID reports whether s is a non-empty run of ASCII letters and digits (OpenFGA ids are ULIDs).
func isID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// Endpoint is the URL checks are posted to.
func (c *Client) Endpoint() string { return c.endpoint }

// Check asks whether t holds. `{"allowed": true}` allows; `{"allowed": false}` is a denial (false,
// nil). An error means no decision was had (ErrTimeout, ErrUnavailable, ErrBadAnswer; a 400 for
// a tuple the model does not know is ErrUnavailable); the caller must treat it as a denial too.
func (c *Client) Check(ctx context.Context, t Tuple) (bool, error) {
	body, err := json.Marshal(struct {
		TupleKey Tuple  `json:"tuple_key"`
		ModelID  string `json:"authorization_model_id,omitempty"`
	}{t, c.modelID})
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, ErrTimeout
		}
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		if ctx.Err() != nil {
			return false, ErrTimeout
		}
		return false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%w: %s: %s", ErrUnavailable, resp.Status, quote(raw))
	}
	if len(raw) > maxAnswer {
		return false, fmt.Errorf("%w: answer larger than %d bytes", ErrBadAnswer, maxAnswer)
	}
	var ans struct {
		Allowed *bool `json:"allowed"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Allowed == nil {
		return false, fmt.Errorf("%w: %s", ErrBadAnswer, quote(raw))
	}
	return *ans.Allowed, nil
}

// CloseIdle closes the client's idle connections (after a configuration reload replaced it).
func (c *Client) CloseIdle() { c.hc.CloseIdleConnections() }

// quote returns at most 200 bytes of b, quoted, for an error message.
func quote(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%q…", b[:200])
	}
	return fmt.Sprintf("%q", b)
}
