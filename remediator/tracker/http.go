package tracker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
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
}

// do sends body as JSON (when not nil) and decodes the answer into out (when not nil).
func (c *restClient) do(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return model.Wrap(model.CodeInternal, err, "%s %s %s: encode", c.system, method, path)
		}
	}
	op := fmt.Sprintf("%s %s %s", c.system, method, redactPath(path))
	var last error
	for attempt := 1; ; attempt++ {
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
		var delay time.Duration
		if err != nil {
			if ctx.Err() != nil {
				return model.Wrap(model.CodeTransient, ctx.Err(), "%s", op)
			}
			last = model.Wrap(model.CodeTransient, c.scrub(err), "%s", op)
		} else {
			data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode >= 200 && resp.StatusCode < 300 {
				if out != nil && len(bytes.TrimSpace(data)) > 0 {
					if err := json.Unmarshal(data, out); err != nil {
						return model.Wrap(model.CodeInternal, err, "%s: decode answer", op)
					}
				}
				return nil
			}
			msg := c.scrub(fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(data)))
			code := statusCode(resp.StatusCode)
			if code != model.CodeTransient {
				return model.Wrap(code, msg, "%s", op)
			}
			last = model.Wrap(code, msg, "%s", op)
			delay = retryAfter(resp.Header.Get("Retry-After"))
		}
		if attempt >= c.retry.MaxAttempts {
			return last
		}
		if delay <= 0 {
			delay = c.retry.Base << (attempt - 1)
		}
		delay = min(delay, c.retry.MaxDelay)
		c.log.Warn("ticket system call failed; retrying", "system", c.system, "op", op, "attempt", attempt, "delay", delay, "err", last)
		select {
		case <-ctx.Done():
			return last
		case <-time.After(delay):
		}
	}
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
