package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/remediator"
)

// runEnv is `rootwarden run` started as an operator would (configuration through the
// environment, AWS through the SDK's variables) against the AWS simulator and a local
// Slack, with helpers to read the case API and press buttons signed as Slack signs.
type runEnv struct {
	t        *testing.T
	sl       *slackfake.Server
	base     string
	logs     *testutil.LogBuffer
	channel  string
	secret   string
	apiToken string
}

// startRun starts `rootwarden run`; env adds to or overrides its environment.
func startRun(t *testing.T, env map[string]string) *runEnv {
	t.Helper()
	e := &runEnv{t: t, channel: "C0RUN00001", secret: "run-signing-secret-value", apiToken: "run-api-token",
		logs: &testutil.LogBuffer{}}
	const token = "xoxb-run-bot-token-secret"
	e.sl = slackfake.New(slackfake.WithChannel(e.channel, "oncall"), slackfake.WithBotToken(token))
	slackURL := e.sl.Start()
	t.Cleanup(e.sl.Close)
	addr := freeAddr(t)
	vars := map[string]string{
		"ROOTWARDEN_NATS_URL": "", "ROOTWARDEN_DATA_DIR": t.TempDir(), "ROOTWARDEN_HTTP_ADDR": addr,
		"ROOTWARDEN_API_TOKEN": e.apiToken, "SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": e.secret,
		"SLACK_APP_TOKEN": "", "ROOTWARDEN_SLACK_CHANNEL": e.channel, "ROOTWARDEN_SLACK_API_URL": slackURL,
		"ROOTWARDEN_APPROVERS": "U0RUNAPPR", "ROOTWARDEN_ORG_ROLE_NAME": "OrganizationAccountAccessRole",
		"ROOTWARDEN_SCAN_INTERVAL": "1h", "ROOTWARDEN_SQS_QUEUE_URL": "", "ROOTWARDEN_CONFIG": "",
		"ROOTWARDEN_LOG_LEVEL": "debug", "ROOTWARDEN_TRACKER": "",
	}
	for k, v := range env {
		vars[k] = v
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- dispatch(ctx, []string{"run"}, io.Discard, e.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("run exited %d after shutdown; logs:\n%s", code, e.logs)
			}
		case <-time.After(20 * time.Second):
			t.Error("run did not stop within 20s of its context ending")
		}
	})
	e.base = "http://" + addr
	e.waitFor("/readyz", func() bool { code, _ := e.get("/readyz"); return code == http.StatusOK })
	return e
}

// get reads path with the API token.
func (e *runEnv) get(path string) (int, []byte) {
	req, _ := http.NewRequest(http.MethodGet, e.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// waitFor polls ok until it holds (a 30 s guard against a hang, not a timing
// assertion).
func (e *runEnv) waitFor(what string, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; logs:\n%s", what, e.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// caseOf is the account's current case from the case API.
func (e *runEnv) caseOf(account string) (remediator.CaseView, bool) {
	code, body := e.get("/api/v1/cases?account=" + account)
	var list remediator.CaseList
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Cases) == 0 {
		return remediator.CaseView{}, false
	}
	return list.Cases[0], true
}

// message is the Slack message of the case.
func (e *runEnv) message(caseID string) model.SlackRef {
	e.t.Helper()
	var ref model.SlackRef
	e.waitFor("the Slack message of "+caseID, func() bool {
		for _, m := range e.sl.Messages(e.channel) {
			if m.Metadata != nil && m.Metadata.EventPayload["case_id"] == caseID {
				ref = model.SlackRef{Channel: e.channel, TS: m.TS}
				return true
			}
		}
		return false
	})
	return ref
}

// click presses the case message's button actionID as user, once the message shows it.
func (e *runEnv) click(caseID, user, actionID string) {
	e.t.Helper()
	ref := e.message(caseID)
	var btn slackfake.Button
	e.waitFor("the message to show "+actionID, func() bool {
		m, _ := e.sl.Message(ref.Channel, ref.TS)
		for _, b := range m.Buttons() {
			if b.ActionID == actionID {
				btn = b
				return true
			}
		}
		return false
	})
	status, body, err := slackfake.Deliver(context.Background(), e.base+"/slack/interactions", e.secret,
		slackfake.BlockAction(user, strings.ToLower(user), btn.ActionID, btn.Value, ref.Channel, ref.TS))
	if err != nil || status != http.StatusOK {
		e.t.Fatalf("click %s: %d %s %v", actionID, status, body, err)
	}
}

// ephemeralsTo are the ephemeral messages shown to user.
func (e *runEnv) ephemeralsTo(user string) []string {
	var out []string
	for _, m := range e.sl.Ephemerals() {
		if m.User == user {
			out = append(out, m.Text)
		}
	}
	return out
}
