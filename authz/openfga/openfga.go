// Package openfga asks an OpenFGA server whether a user has a relation to an object
// (POST /stores/{store_id}/check), and expands the templates that build the user and object from
// a request ("user:{principal}", "folder:{bucket}/{key_prefix}"). It is a leaf: the standard
// library only (and authz/internal/httpclient, the HTTP side it shares with authz/opa), no
// logging, no metrics; the caller caches decisions, counts them and maps errors to S3 answers.
package openfga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mizuchi/uploadr/authz/internal/httpclient"
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
	hc       *httpclient.Client
}

// New checks cfg and returns a client. It does not dial.
func New(cfg Config) (*Client, error) {
	if err := httpclient.CheckURL("openfga", cfg.URL); err != nil {
		return nil, err
	}
	if !isID(cfg.StoreID) {
		return nil, fmt.Errorf("openfga: store_id %q: want the store's id (letters and digits)", cfg.StoreID)
	}
	if cfg.AuthorizationModelID != "" && !isID(cfg.AuthorizationModelID) {
		return nil, fmt.Errorf("openfga: authorization_model_id %q: want a model id (letters and digits)", cfg.AuthorizationModelID)
	}
	hc, err := httpclient.New("openfga", cfg.Timeout, cfg.MaxConns, httpclient.Errors{
		Timeout: ErrTimeout, Unavailable: ErrUnavailable, BadAnswer: ErrBadAnswer})
	if err != nil {
		return nil, err
	}
	return &Client{
		endpoint: strings.TrimRight(cfg.URL, "/") + "/stores/" + cfg.StoreID + "/check",
		modelID:  cfg.AuthorizationModelID,
		hc:       hc,
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
	raw, err := c.hc.PostJSON(ctx, c.endpoint, struct {
		TupleKey Tuple  `json:"tuple_key"`
		ModelID  string `json:"authorization_model_id,omitempty"`
	}{t, c.modelID})
	if err != nil {
		return false, err
	}
	var ans struct {
		Allowed *bool `json:"allowed"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Allowed == nil {
		return false, fmt.Errorf("%w: %s", ErrBadAnswer, httpclient.Quote(raw))
	}
	return *ans.Allowed, nil
}

// WithTraceContext returns ctx carrying a W3C traceparent (the caller's span) and tracestate that
// Check sends as its request's traceparent and tracestate headers; ctx itself when tp is "".
func WithTraceContext(ctx context.Context, tp, ts string) context.Context {
	return httpclient.WithTraceContext(ctx, tp, ts)
}

// CloseIdle closes the client's idle connections (after a configuration reload replaced it).
func (c *Client) CloseIdle() { c.hc.CloseIdle() }
