// Package pagerduty is rootwarden's PagerDuty client: who is on call now on the
// configured schedules (REST API v2, GET /oncalls with the users' emails), and
// incidents for critical cases (Events API v2, POST /v2/enqueue with dedup_key = case
// id). It knows nothing of Slack or cases; the notifier uses it through two small
// interfaces. Every call has a deadline; the token and routing key never appear in
// errors or logs.
package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/escape"
)

// Defaults of Config.
const (
	DefaultAPIURL    = "https://api.pagerduty.com"
	DefaultEventsURL = "https://events.pagerduty.com"
	DefaultTimeout   = 2 * time.Second
)

// Config of the client.
type Config struct {
	Token      string   // REST API token (ROOTWARDEN_PAGERDUTY_TOKEN)
	Schedules  []string // schedule ids (ROOTWARDEN_PAGERDUTY_SCHEDULES)
	RoutingKey string   // Events API v2 integration key (ROOTWARDEN_PAGERDUTY_ROUTING_KEY)
	APIURL     string   // REST base; "" → DefaultAPIURL
	EventsURL  string   // Events API base; "" → DefaultEventsURL
	Timeout    time.Duration
	Client     *http.Client // nil → a new client
}

// Client talks to PagerDuty.
type Client struct {
	cfg Config
	hc  *http.Client
}

// New checks cfg and returns a client. It does not call PagerDuty.
func New(cfg Config) (*Client, error) {
	if cfg.Token == "" && cfg.RoutingKey == "" {
		return nil, errors.New("ROOTWARDEN_PAGERDUTY_TOKEN: neither a REST token nor a routing key is set")
	}
	if cfg.Token != "" && len(cfg.Schedules) == 0 {
		return nil, errors.New("ROOTWARDEN_PAGERDUTY_SCHEDULES: required with ROOTWARDEN_PAGERDUTY_TOKEN")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	if cfg.EventsURL == "" {
		cfg.EventsURL = DefaultEventsURL
	}
	cfg.APIURL = strings.TrimSuffix(cfg.APIURL, "/")
	cfg.EventsURL = strings.TrimSuffix(cfg.EventsURL, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{cfg: cfg, hc: hc}, nil
}

// OnCallEnabled reports whether a REST token and schedules are configured.
func (c *Client) OnCallEnabled() bool { return c.cfg.Token != "" && len(c.cfg.Schedules) > 0 }

// EventsEnabled reports whether a routing key is configured.
func (c *Client) EventsEnabled() bool { return c.cfg.RoutingKey != "" }

// Error is a failed PagerDuty call. Transient says whether retrying can help.
type Error struct {
	Op        string
	Status    int // 0: no answer (network, timeout)
	Message   string
	Transient bool
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("pagerduty %s: %s", e.Op, e.Message)
	}
	return fmt.Sprintf("pagerduty %s: HTTP %d: %s", e.Op, e.Status, e.Message)
}

type user struct {
	ID      string `json:"id"`
	Type    string `json:"type"`
	Email   string `json:"email"`
	Summary string `json:"summary"`
}

type oncallsPage struct {
	OnCalls []struct {
		User     user `json:"user"`
		Schedule *struct {
			ID string `json:"id"`
		} `json:"schedule"`
	} `json:"oncalls"`
	More   bool `json:"more"`
	Offset int  `json:"offset"`
	Limit  int  `json:"limit"`
}

// OnCallEmails lists the emails of the people on call at `at` on the configured
// schedules (GET /oncalls?schedule_ids[]=…&include[]=users&since=…&until=…), one
// entry per person, following pagination.
func (c *Client) OnCallEmails(ctx context.Context, at time.Time) ([]string, error) {
	if !c.OnCallEnabled() {
		return nil, &Error{Op: "list on-calls", Message: "no token or schedules configured"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	seen := map[string]bool{}
	var out []string
	offset := 0
	for page := 0; page < 20; page++ {
		q := url.Values{}
		for _, s := range c.cfg.Schedules {
			q.Add("schedule_ids[]", s)
		}
		q.Set("include[]", "users")
		q.Set("since", at.UTC().Format(time.RFC3339))
		q.Set("until", at.UTC().Add(time.Second).Format(time.RFC3339))
		q.Set("time_zone", "UTC")
		q.Set("limit", "100")
		q.Set("offset", strconv.Itoa(offset))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.APIURL+"/oncalls?"+q.Encode(), nil)
		if err != nil {
			return nil, &Error{Op: "list on-calls", Message: "bad ROOTWARDEN_PAGERDUTY_API_URL"}
		}
		req.Header.Set("Accept", "application/vnd.pagerduty+json;version=2")
		req.Header.Set("Authorization", "Token token="+c.cfg.Token)
		var p oncallsPage
		if err := c.do(req, "list on-calls", &p); err != nil {
			return nil, err
		}
		for _, oc := range p.OnCalls {
			e := strings.ToLower(strings.TrimSpace(oc.User.Email))
			if e == "" {
				continue // a user reference without include[]=users, or a deleted user
			}
			if !seen[e] {
				seen[e] = true
				out = append(out, e)
			}
		}
		if !p.More || len(p.OnCalls) == 0 {
			return out, nil
		}
		offset += len(p.OnCalls)
	}
	return out, nil
}

// Incident is what a trigger event says.
type Incident struct {
	DedupKey string // the case id
	Summary  string // one line, at most 1024 characters
	Source   string // the AWS account
	Severity string // critical, error, warning, info
	Link     string // the Slack message, if known
	Details  map[string]any
}

// Trigger opens (or, with the same dedup key, updates) an incident.
func (c *Client) Trigger(ctx context.Context, in Incident) error {
	if in.Severity == "" {
		in.Severity = "critical"
	}
	in.Summary = escape.PagerDuty(in.Summary, 0) // plain, no control characters, at most 1024 characters
	ev := map[string]any{"routing_key": c.cfg.RoutingKey, "event_action": "trigger", "dedup_key": in.DedupKey,
		"payload": map[string]any{"summary": in.Summary, "source": in.Source, "severity": in.Severity,
			"component": "aws-root-access-key", "group": in.Source, "class": "root-access-key",
			"custom_details": in.Details}}
	if in.Link != "" {
		ev["links"] = []map[string]string{{"href": in.Link, "text": "Case in Slack"}}
	}
	return c.enqueue(ctx, "trigger incident "+in.DedupKey, ev)
}

// Resolve resolves the incident of dedupKey; resolving one that is not open is fine.
func (c *Client) Resolve(ctx context.Context, dedupKey string) error {
	return c.enqueue(ctx, "resolve incident "+dedupKey, map[string]any{"routing_key": c.cfg.RoutingKey,
		"event_action": "resolve", "dedup_key": dedupKey})
}

func (c *Client) enqueue(ctx context.Context, op string, ev map[string]any) error {
	if !c.EventsEnabled() {
		return &Error{Op: op, Message: "no routing key configured"}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	body, _ := json.Marshal(ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.EventsURL+"/v2/enqueue", bytes.NewReader(body))
	if err != nil {
		return &Error{Op: op, Message: "bad ROOTWARDEN_PAGERDUTY_EVENTS_URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, op, nil)
}

func (c *Client) do(req *http.Request, op string, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		msg := "unreachable"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "no answer within " + c.cfg.Timeout.String()
		}
		return &Error{Op: op, Message: msg, Transient: true}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 != 2 {
		e := &Error{Op: op, Status: resp.StatusCode, Message: errorText(data),
			Transient: resp.StatusCode == 429 || resp.StatusCode >= 500}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return &Error{Op: op, Status: resp.StatusCode, Message: "malformed answer", Transient: true}
		}
	}
	return nil
}

// errorText is PagerDuty's own reason: REST {"error":{"message","errors"}} or Events
// {"status","message","errors"}; never the request (it holds the secrets).
func errorText(data []byte) string {
	var rest struct {
		Error struct {
			Message string   `json:"message"`
			Errors  []string `json:"errors"`
		} `json:"error"`
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	if json.Unmarshal(data, &rest) == nil {
		msg, errs := rest.Error.Message, rest.Error.Errors
		if msg == "" {
			msg, errs = rest.Message, rest.Errors
		}
		if msg != "" {
			if len(errs) > 0 {
				msg += ": " + strings.Join(errs, "; ")
			}
			return msg
		}
	}
	return "unexpected answer"
}

// String keeps the token and routing key out of fmt output.
func (c Config) String() string {
	return fmt.Sprintf("pagerduty.Config{schedules:%v token_set:%t routing_key_set:%t api:%s events:%s}",
		c.Schedules, c.Token != "", c.RoutingKey != "", c.APIURL, c.EventsURL)
}

// GoString keeps them out of %#v.
func (c Config) GoString() string { return c.String() }

// String keeps the secrets out of fmt output of the client.
func (c *Client) String() string { return "pagerduty.Client" + c.cfg.String() }
