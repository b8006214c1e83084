package metrics

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// SlackTransport counts Slack Web API calls by method and outcome. Slack answers API
// errors with HTTP 200 and "ok": false, so the transport peeks at JSON bodies (up to
// 1 MiB; the body is handed on unchanged). base nil → http.DefaultTransport.
func SlackTransport(base http.RoundTripper) http.RoundTripper {
	return &countingTransport{base: base, slack: true}
}

// TrackerTransport counts calls to a ticket tracker ("jira", "github") by outcome.
func TrackerTransport(tracker string, base http.RoundTripper) http.RoundTripper {
	return &countingTransport{base: base, tracker: tracker}
}

type countingTransport struct {
	base    http.RoundTripper
	slack   bool
	tracker string
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	outcome := OutcomeOK
	switch {
	case err != nil:
		outcome = OutcomeNetwork
	case resp.StatusCode == http.StatusTooManyRequests:
		outcome = OutcomeRateLimited
	case resp.StatusCode == http.StatusForbidden && resp.Header.Get("Retry-After") != "":
		outcome = OutcomeRateLimited // GitHub's secondary rate limit
	case resp.StatusCode >= 500:
		outcome = OutcomeServerError
	case resp.StatusCode >= 400:
		outcome = OutcomeClientError
	case t.slack && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"):
		if !slackOK(resp) {
			outcome = OutcomeClientError
		}
	}
	if t.slack {
		slackCalls.WithLabelValues(slackMethod(req), outcome).Inc()
	} else {
		trackerCalls.WithLabelValues(t.tracker, outcome).Inc()
	}
	return resp, err
}

// slackMethod is the last path element (…/api/chat.postMessage); unknown methods are
// counted as "other" so a typo cannot grow the series.
func slackMethod(req *http.Request) string {
	p := req.URL.Path
	m := p[strings.LastIndex(p, "/")+1:]
	for _, known := range SlackMethods {
		if m == known {
			return m
		}
	}
	return "other"
}

// slackOK reads the "ok" field of a Slack answer and restores the body.
func slackOK(resp *http.Response) bool {
	const limit = 1 << 20
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), rest), rest}
	if err != nil || len(b) == limit {
		return true // cannot tell; do not call it a failure
	}
	var v struct {
		OK *bool `json:"ok"`
	}
	if json.Unmarshal(b, &v) != nil || v.OK == nil {
		return true
	}
	return *v.OK
}
