package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
	"github.com/rootwarden/rootwarden/remediator"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRunWiring starts `rootwarden run` as an operator would — configuration only
// through the environment, AWS through the SDK's standard variables — against the AWS
// simulator and a local Slack, and follows one case to a verified resolution through
// the case API and signed Slack clicks.
func TestRunWiring(t *testing.T) {
	sim := scanSim(t, 2)
	member := "200000000001"
	sim.CreateRootKey(member, time.Now().AddDate(-1, 0, 0))

	const (
		token    = "xoxb-e2e-bot-token-secret"
		secret   = "e2e-signing-secret-value"
		apiToken = "e2e-api-token"
		channel  = "C0E2E00001"
		approver = "U0E2EAPPR"
	)
	sl := slackfake.New(slackfake.WithChannel(channel, "oncall"), slackfake.WithBotToken(token))
	slackURL := sl.Start()
	t.Cleanup(sl.Close)

	addr := freeAddr(t)
	for k, v := range map[string]string{
		"ROOTWARDEN_NATS_URL": "", "ROOTWARDEN_DATA_DIR": t.TempDir(), "ROOTWARDEN_HTTP_ADDR": addr,
		"ROOTWARDEN_API_TOKEN": apiToken, "SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": secret,
		"SLACK_APP_TOKEN": "", "ROOTWARDEN_SLACK_CHANNEL": channel, "ROOTWARDEN_SLACK_API_URL": slackURL,
		"ROOTWARDEN_APPROVERS": approver, "ROOTWARDEN_ORG_ROLE_NAME": "OrganizationAccountAccessRole",
		"ROOTWARDEN_SCAN_INTERVAL": "1h", "ROOTWARDEN_SQS_QUEUE_URL": "", "ROOTWARDEN_CONFIG": "",
		"ROOTWARDEN_LOG_LEVEL": "debug", "ROOTWARDEN_TRACKER": "",
	} {
		t.Setenv(k, v)
	}

	logs := &testutil.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- dispatch(ctx, []string{"run"}, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("run exited %d after shutdown; logs:\n%s", code, logs)
			}
		case <-time.After(20 * time.Second):
			t.Error("run did not stop within 20s of its context ending")
		}
		for _, s := range []string{token, secret, apiToken} {
			if strings.Contains(logs.String(), s) {
				t.Errorf("logs contain the secret %q", s)
			}
		}
	})
	base := "http://" + addr

	get := func(path, bearer string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	caseOf := func(account string) (remediator.CaseView, bool) {
		code, body := get("/api/v1/cases?account="+account, apiToken)
		var list remediator.CaseList
		if code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Cases) == 0 {
			return remediator.CaseView{}, false
		}
		return list.Cases[0], true
	}

	waitFor("/healthz", func() bool { code, _ := get("/healthz", ""); return code == http.StatusOK })
	waitFor("/readyz", func() bool { code, _ := get("/readyz", ""); return code == http.StatusOK })

	t.Run("case API needs the bearer token", func(t *testing.T) {
		if code, _ := get("/api/v1/cases", ""); code != http.StatusUnauthorized {
			t.Errorf("no token: %d, want 401", code)
		}
		if code, _ := get("/api/v1/cases", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("wrong token: %d, want 401", code)
		}
	})

	var c remediator.CaseView
	waitFor("an open case for the member account", func() bool {
		var ok bool
		c, ok = caseOf(member)
		return ok && c.State == model.StateOpen
	})
	if c.AccountName != "member-1" || c.Severity != model.SeverityHigh {
		t.Errorf("case = %+v, want member-1, high", c.Case)
	}
	if other, ok := caseOf("200000000002"); ok {
		t.Errorf("account without root keys has a case: %+v", other.Case)
	}

	click := func(user, actionID string) {
		t.Helper()
		var ref model.SlackRef
		waitFor("the case's Slack message", func() bool {
			for _, m := range sl.Messages(channel) {
				if m.Metadata != nil && m.Metadata.EventPayload["case_id"] == c.ID {
					ref = model.SlackRef{Channel: channel, TS: m.TS}
					return true
				}
			}
			return false
		})
		var btn slackfake.Button
		waitFor("the message to show "+actionID, func() bool {
			m, _ := sl.Message(ref.Channel, ref.TS)
			for _, b := range m.Buttons() {
				if b.ActionID == actionID {
					btn = b
					return true
				}
			}
			return false
		})
		status, body, err := slackfake.Deliver(context.Background(), base+"/slack/interactions", secret,
			slackfake.BlockAction(user, "someone", btn.ActionID, btn.Value, ref.Channel, ref.TS))
		if err != nil || status != http.StatusOK {
			t.Fatalf("click %s: %d %s %v", actionID, status, body, err)
		}
	}

	t.Run("a forged click changes nothing", func(t *testing.T) {
		status, _, err := slackfake.Deliver(context.Background(), base+"/slack/interactions", "not-the-secret",
			slackfake.BlockAction(approver, "mallory", notifier.ActionIDApprove, notifier.ButtonValue(member, c.ID), channel, "1.1"))
		if err != nil || status != http.StatusUnauthorized {
			t.Fatalf("forged click: %d %v, want 401", status, err)
		}
		// That it changed nothing is checked on the case's history once the real
		// clicks that follow it have been applied (below): no sleep.
	})

	click(approver, notifier.ActionIDApprove)
	waitFor("ticketed with a ticket", func() bool {
		c, _ = caseOf(member)
		return c.State == model.StateTicketed && c.Ticket != nil && c.Ticket.ID != ""
	})

	for _, k := range sim.RootKeys(member) {
		sim.DeleteRootKey(member, k.ID)
	}
	click("U0SOMEONE", notifier.ActionIDConfirmDeleted)
	waitFor("resolved", func() bool { c, _ = caseOf(member); return c.State == model.StateResolved })

	code, body := get("/api/v1/cases/"+c.ID, apiToken)
	var view remediator.CaseView
	if code != http.StatusOK || json.Unmarshal(body, &view) != nil {
		t.Fatalf("show case: %d %s", code, body)
	}
	var types []string
	for _, h := range view.History {
		types = append(types, string(h.Type))
	}
	for _, want := range []string{"opened", "ticketed", "verifying", "resolved"} {
		if !strings.Contains(strings.Join(types, ","), want) {
			t.Errorf("history %v lacks %s", types, want)
		}
	}
	// The forged click came before every real one: had it been taken, it would be in
	// the history before them (an approval by mallory, or the real approval refused).
	for _, h := range view.History {
		if h.Actor.Name == "mallory" || h.Type == model.EventRefused || (h.Type == model.EventTicketed && h.Actor.Name != "someone") {
			t.Errorf("the forged click left a trace in the history: %+v (all: %v)", h, types)
		}
	}
	t.Run("rootwarden cases reads the API", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := runCases(context.Background(), []string{"show", c.ID, "--json"}, &out, &errb); code != 0 {
			t.Fatalf("cases show: exit %d: %s", code, errb.String())
		}
		var shown remediator.CaseView
		if err := json.Unmarshal(out.Bytes(), &shown); err != nil || shown.State != model.StateResolved || len(shown.History) < 4 {
			t.Fatalf("cases show --json: %v %+v", err, shown)
		}
		out.Reset()
		if code := runCases(context.Background(), []string{"list", "--state", "resolved"}, &out, &errb); code != 0 ||
			!strings.Contains(out.String(), c.ID) {
			t.Fatalf("cases list: exit %d: %s %s", code, out.String(), errb.String())
		}
		t.Setenv("ROOTWARDEN_API_TOKEN", "wrong")
		errb.Reset()
		if code := runCases(context.Background(), []string{"list"}, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Fatalf("cases with a wrong token: exit %d, stderr %q", code, errb.String())
		}
	})
	code, body = get("/metrics", "")
	for _, m := range []string{"go_goroutines", "rootwarden_detector_accounts_checked_total",
		"rootwarden_remediator_transitions_total", "rootwarden_notifier"} {
		if code != http.StatusOK || !bytes.Contains(body, []byte(m)) {
			t.Errorf("/metrics (%d) lacks %s", code, m)
		}
	}
}

func TestStartupErrorsNameTheVariable(t *testing.T) {
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing Slack token", map[string]string{"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN"},
		{"bad interval", map[string]string{"ROOTWARDEN_SCAN_INTERVAL": "often"}, "ROOTWARDEN_SCAN_INTERVAL"},
		{"malformed queue URL", map[string]string{"ROOTWARDEN_SQS_QUEUE_URL": "events"}, "ROOTWARDEN_SQS_QUEUE_URL"},
		{"unreachable NATS", map[string]string{"ROOTWARDEN_NATS_URL": "nats://127.0.0.1:1"}, "ROOTWARDEN_NATS_URL"},
		{"data directory is a file", map[string]string{"ROOTWARDEN_DATA_DIR": notADir}, "ROOTWARDEN_DATA_DIR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := map[string]string{"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "ROOTWARDEN_SLACK_CHANNEL": "C1",
				"ROOTWARDEN_HTTP_ADDR": "127.0.0.1:0", "ROOTWARDEN_SCAN_INTERVAL": "", "ROOTWARDEN_SQS_QUEUE_URL": "",
				"ROOTWARDEN_NATS_URL": "", "ROOTWARDEN_CONFIG": "", "AWS_REGION": "us-east-1"}
			for k, v := range tc.env {
				base[k] = v
			}
			for k, v := range base {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			code := dispatch(ctx, []string{"run"}, io.Discard, &stderr)
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if code != 2 || !strings.Contains(stderr.String(), tc.want) || len(lines) != 1 {
				t.Fatalf("exit %d, stderr %q: want exit 2 and one line naming %s", code, stderr.String(), tc.want)
			}
		})
	}
}

func TestDemoCompletes(t *testing.T) {
	var out, errb testutil.LogBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if code := dispatch(ctx, []string{"demo"}, &out, &errb); code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"Resolved — verified", "severity raised to critical", "still_present", "risk_accepted", "Nothing was done", "The story is complete"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// What the demo prints as Slack is what Slack shows at that moment: the false claim's
	// thread has its replies, and the accepted risk's message says so and offers no
	// approval any more.
	section := func(n int) string {
		s := out.String()
		_, s, _ = strings.Cut(s, fmt.Sprintf("── %d.", n))
		s, _, _ = strings.Cut(s, fmt.Sprintf("── %d.", n+1))
		return s
	}
	_, thread, _ := strings.Cut(section(4), "Slack thread of case")
	for _, want := range []string{"↳ :mag: Checking with AWS", "↳ :x: AWS still reports root access keys"} {
		if !strings.Contains(thread, want) {
			t.Errorf("the demo's thread of the false claim lacks %q:\n%s", want, thread)
		}
	}
	_, msg, _ := strings.Cut(section(5), "message of case")
	if !strings.Contains(msg, "*Risk accepted*") || strings.Contains(msg, "[Approve remediation]") {
		t.Errorf("the demo's message after the risk acceptance is not the accepted one:\n%s", msg)
	}
}

func TestUnknownCommand(t *testing.T) {
	var stderr bytes.Buffer
	if code := dispatch(context.Background(), []string{"frobnicate"}, io.Discard, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "unknown command") {
		t.Fatalf("exit %d, %q", code, stderr.String())
	}
}

// `rootwarden sim` prints variables that make `rootwarden scan` work against it.
func TestSimServesAnOrganizationScanCanRead(t *testing.T) {
	scanSim(t, 0) // clears AWS_* and ROOTWARDEN_* variables for the test
	addr := freeAddr(t)
	out := &testutil.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"sim", "--addr", addr, "--accounts", "3", "--root-keys", "1"}, out, io.Discard)
	}()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "ROOTWARDEN_SQS_QUEUE_URL") {
		if time.Now().After(deadline) {
			t.Fatalf("sim printed %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && strings.HasPrefix(line, "export ") {
			t.Setenv(k, v)
		}
	}
	code, stdout, stderr := runScanT(t, "--json")
	var rows []model.Observation
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("scan --json: %v\n%s\n%s", err, stdout, stderr)
	}
	present := 0
	for _, r := range rows {
		if r.RootKeysPresent {
			present++
		}
	}
	if code != 1 || len(rows) != 4 || present != 1 {
		t.Fatalf("scan against sim: exit %d, %d accounts, %d with keys; want 1, 4, 1", code, len(rows), present)
	}
}
