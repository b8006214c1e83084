package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/wait"
)

// Retry is how trackers retry: 429 and 5xx (and network errors) are retried with
// exponential backoff (Retry-After honoured), any other 4xx is final.
type Retry struct {
	MaxAttempts int           // default 4
	Base        time.Duration // default 500ms; doubles per attempt
	MaxDelay    time.Duration // default 30s (caps Retry-After too)
}

func (r Retry) withDefaults() Retry {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 4
	}
	if r.Base <= 0 {
		r.Base = 500 * time.Millisecond
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = 30 * time.Second
	}
	return r
}

// DefaultTimeout bounds one HTTP call to a ticket system (one attempt; the caller's
// context bounds the whole operation with its retries).
const DefaultTimeout = 30 * time.Second

// NewHTTPClient is the http.Client for a ticket system: every call has a deadline
// (timeout; 0 → DefaultTimeout).
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{Timeout: timeout}
}

// withTimeout returns c, or when c has no timeout (an http.Client{} waits for ever on
// a server that accepts and never answers) a copy of it with one; nil → a new client.
func withTimeout(c *http.Client, timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if c == nil {
		return NewHTTPClient(timeout)
	}
	if c.Timeout > 0 {
		return c
	}
	cp := *c
	cp.Timeout = timeout
	return &cp
}

// restClient is the one HTTP loop of the REST trackers.
type restClient struct {
	system  string
	base    string
	client  *http.Client
	log     *slog.Logger
	auth    func(*http.Request)
	headers map[string]string
	secrets []string // redacted from every error
	retry   Retry
	// rateLimited reports whether a 403 (or other 4xx) answer is a rate limit rather
	// than a refusal (GitHub's secondary limits); nil: none is.
	rateLimited func(*http.Response) bool
}

// do sends body as JSON (when not nil) and decodes the answer into out (when not nil),
// retrying 429, 5xx and network errors. Only for calls that are safe to repeat: a
// create goes through once and findOrCreate.
func (c *restClient) do(ctx context.Context, method, path string, body, out any) error {
	op := fmt.Sprintf("%s %s %s", c.system, method, redactPath(path))
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, method, path, body, out)
		if err == nil || model.ErrorCode(err) != model.CodeTransient || ctx.Err() != nil || attempt >= c.retry.MaxAttempts {
			return err
		}
		delay := c.backoff(attempt, err)
		c.log.Warn("ticket system call failed; retrying", "system", c.system, "op", op, "attempt", attempt, "delay", delay, "err", err)
		if !wait.Sleep(ctx, delay) {
			return err
		}
	}
}

// backoff is the wait after the attempt-th failure: the server's Retry-After when it
// gave one, else exponential; at most MaxDelay.
func (c *restClient) backoff(attempt int, err error) time.Duration {
	d := RetryAfter(err)
	if d <= 0 {
		d = c.retry.Base << (attempt - 1)
	}
	return min(d, c.retry.MaxDelay)
}

// once makes one HTTP call. Errors are classified (statusCode); a transient one may
// carry the server's Retry-After (RetryAfter reads it).
func (c *restClient) once(ctx context.Context, method, path string, body, out any) error {
	op := fmt.Sprintf("%s %s %s", c.system, method, redactPath(path))
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return model.Wrap(model.CodeInternal, err, "%s: encode", op)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(payload))
	if err != nil {
		return model.Wrap(model.CodeInvalid, c.scrub(err), "%s", op)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	c.auth(req)
	resp, err := c.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return model.Wrap(model.CodeTransient, ctx.Err(), "%s", op)
		}
		return model.Wrap(model.CodeTransient, c.scrub(err), "%s", op)
	}
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if rerr != nil { // the answer was cut off: the call may or may not have taken effect
			return model.Wrap(model.CodeTransient, c.scrub(rerr), "%s: read answer", op)
		}
		if out != nil && len(bytes.TrimSpace(data)) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return model.Wrap(model.CodeInternal, err, "%s: decode answer", op)
			}
		}
		return nil
	}
	msg := c.scrub(fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(data)))
	code := statusCode(resp.StatusCode)
	delay := retryAfter(resp.Header.Get("Retry-After"))
	if c.rateLimited != nil && c.rateLimited(resp) {
		code = model.CodeTransient
		if delay <= 0 {
			delay = resetDelay(resp.Header.Get("X-RateLimit-Reset"))
		}
	}
	if code != model.CodeTransient {
		return model.Wrap(code, refusal{error: msg, status: resp.StatusCode, body: data}, "%s", op)
	}
	if delay > 0 {
		msg = delayError{error: msg, delay: delay}
	}
	return model.Wrap(code, msg, "%s", op)
}

// findOrCreate opens a ticket without ever creating two: it searches before every
// create, and a create is never repeated blindly. A create that failed in a way that
// may have taken effect (5xx, 429, a lost answer or connection: all transient) is
// followed by a wait of at least searchLag (the time the system's search needs to
// show a new ticket) and a new search. find reports whether it found the ticket.
func (c *restClient) findOrCreate(ctx context.Context, what string, searchLag time.Duration,
	find func(context.Context) (model.TicketRef, bool, error), create func(context.Context) (model.TicketRef, error)) (model.TicketRef, error) {
	for attempt := 1; ; attempt++ {
		ref, ok, err := find(ctx)
		if err != nil || ok {
			return ref, err
		}
		ref, err = create(ctx)
		if err == nil || model.ErrorCode(err) != model.CodeTransient || ctx.Err() != nil || attempt >= c.retry.MaxAttempts {
			return ref, err
		}
		delay := max(c.backoff(attempt, err), searchLag)
		c.log.Warn("ticket creation failed and may have taken effect; searching again before creating",
			"system", c.system, "op", what, "attempt", attempt, "delay", delay, "err", err)
		if !wait.Sleep(ctx, delay) {
			return ref, err
		}
	}
}

// refusal is a final (non-transient) HTTP answer, with its body for the tracker
// that can say more about it than "HTTP 400" (Jira's errors by field).
type refusal struct {
	error
	status int
	body   []byte
}

func (e refusal) Unwrap() error { return e.error }

// refusalOf returns the final HTTP answer behind err, if it is one.
func refusalOf(err error) (refusal, bool) {
	var r refusal
	return r, errors.As(err, &r)
}

// delayError carries the delay a server asked for (Retry-After, rate-limit reset).
type delayError struct {
	error
	delay time.Duration
}

func (e delayError) Unwrap() error { return e.error }

// RetryAfter is the delay a ticket system asked for before the next attempt (its
// Retry-After, or the reset time of a rate limit), 0 when it named none.
func RetryAfter(err error) time.Duration {
	var d delayError
	if errors.As(err, &d) {
		return d.delay
	}
	return 0
}

// statusCode classifies an HTTP status: the one place trackers map statuses to codes.
func statusCode(status int) model.Code {
	switch {
	case status == http.StatusTooManyRequests || status >= 500:
		return model.CodeTransient
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return model.CodeUnauthorized
	case status == http.StatusNotFound || status == http.StatusGone:
		return model.CodeNotFound
	case status == http.StatusConflict:
		return model.CodeConflict
	}
	return model.CodeInvalid
}

// resetDelay reads a rate limit's reset time (Unix seconds, GitHub's X-RateLimit-Reset).
func resetDelay(v string) time.Duration {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return max(time.Until(time.Unix(n, 0)), 0)
}

func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// scrub removes every secret from an error's text.
func (c *restClient) scrub(err error) error {
	s := err.Error()
	for _, sec := range c.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	return redactedError(s)
}

type redactedError string

func (e redactedError) Error() string { return string(e) }

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func redactPath(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}

// baseURL checks and normalises a tracker's base URL.
func baseURL(system, raw string) (string, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%s: base URL %q is not an http(s) URL", system, raw)
	}
	u.User = nil
	return u.String(), nil
}
