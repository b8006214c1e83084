package notifier_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

const msgTS = "1700000000.000100"

func click(user, actionID, acct, caseID string) url.Values {
	return slackfake.BlockAction(user, strings.ToLower(user), actionID, notifier.ButtonValue(acct, caseID), channelID, msgTS)
}

func signed(secret string, at time.Time, body []byte) http.Header {
	return slackfake.Sign(secret, at, body)
}

func TestBadInteractionsChangeNothing(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	open := baseCase(account+"-2", now)
	e.putCase(open)
	resolved := baseCase("444444444444-1", now)
	resolved.AccountID = "444444444444"
	resolved.State = model.StateResolved
	e.putCase(resolved)
	accepted := baseCase("333333333333-1", now)
	accepted.AccountID = "333333333333"
	accepted.State = model.StateRiskAccepted
	e.putCase(accepted)

	good := []byte(click(approverUser, notifier.ActionIDApprove, account, open.ID).Encode())
	wall := time.Now()
	big := append([]byte("payload="), make([]byte, 2<<20)...)

	type tc struct {
		name       string
		headers    http.Header
		body       []byte
		status     int
		bodyHas    string
		ephemeral  string // text the clicking user is told, "" for none
		ephemeralU string
	}
	sign := func(b []byte) (http.Header, []byte) { return signed(signingSecret, wall, b), b }
	form := func(v url.Values) (http.Header, []byte) { return sign([]byte(v.Encode())) }
	mk := func(name string, hb func() (http.Header, []byte), status int, bodyHas, eph, ephUser string) tc {
		h, b := hb()
		return tc{name, h, b, status, bodyHas, eph, ephUser}
	}
	cases := []tc{
		{"forged signature is rejected", signed("not-the-secret", wall, good), good, 401, "invalid signature", "", ""},
		{"body changed after signing is rejected", signed(signingSecret, wall, good), append([]byte("x"), good...), 401, "invalid signature", "", ""},
		{"stale timestamp is rejected", signed(signingSecret, wall.Add(-6*time.Minute), good), good, 401, "5 minutes", "", ""},
		{"future timestamp is rejected", signed(signingSecret, wall.Add(6*time.Minute), good), good, 401, "5 minutes", "", ""},
		{"missing headers are rejected", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, good, 401, "missing", "", ""},
		mk("malformed payload is rejected", func() (http.Header, []byte) { return form(url.Values{"payload": {"{not json"}}) }, 400, "malformed", "", ""),
		mk("request without payload is rejected", func() (http.Header, []byte) { return form(url.Values{"foo": {"bar"}}) }, 400, "payload", "", ""),
		mk("oversized body is rejected", func() (http.Header, []byte) { return sign(big) }, 413, "larger than", "", ""),
		mk("unknown action id is rejected", func() (http.Header, []byte) {
			return form(click(approverUser, "rw_launch_missiles", account, open.ID))
		}, 400, "unknown action id", "does not know the action", approverUser),
		mk("malformed button value is rejected", func() (http.Header, []byte) {
			return form(slackfake.BlockAction(approverUser, "alice", notifier.ActionIDApprove, "garbage", channelID, msgTS))
		}, 400, "malformed action value", "", ""),
		mk("unsupported interaction type is rejected", func() (http.Header, []byte) {
			return form(url.Values{"payload": {`{"type":"shortcut","user":{"id":"U1"}}`}})
		}, 400, "unsupported", "", ""),
		mk("non-approver cannot approve", func() (http.Header, []byte) {
			return form(click(outsider, notifier.ActionIDApprove, account, open.ID))
		}, 200, "", "only on-call approvers", outsider),
		mk("non-approver cannot accept risk", func() (http.Header, []byte) {
			return form(click(outsider, notifier.ActionIDAcceptRisk, account, open.ID))
		}, 200, "", "You may not accept the risk", outsider),
		mk("non-approver cannot revoke", func() (http.Header, []byte) {
			return form(click(outsider, notifier.ActionIDRevoke, accepted.AccountID, accepted.ID))
		}, 200, "", "You may not revoke", outsider),
		mk("click on a resolved case is refused", func() (http.Header, []byte) {
			return form(click(approverUser, notifier.ActionIDRecheck, resolved.AccountID, resolved.ID))
		}, 200, "", "is resolved", approverUser),
		mk("click on a stale case id is refused", func() (http.Header, []byte) {
			return form(click(approverUser, notifier.ActionIDApprove, account, account+"-1"))
		}, 200, "", "is stale", approverUser),
		mk("click for an account without a case is refused", func() (http.Header, []byte) {
			return form(click(approverUser, notifier.ActionIDApprove, "999999999999", "999999999999-1"))
		}, 200, "", "is stale", approverUser),
		mk("button of another state is refused", func() (http.Header, []byte) {
			return form(click(outsider, notifier.ActionIDConfirmDeleted, account, open.ID))
		}, 200, "", "no longer applies", outsider),
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.fake.Ephemerals())
			status, body := e.raw(c.headers, c.body)
			if status != c.status {
				t.Fatalf("status = %d (%s), want %d", status, body, c.status)
			}
			if c.bodyHas != "" && !strings.Contains(body, c.bodyHas) {
				t.Errorf("answer %q lacks %q", body, c.bodyHas)
			}
			eph := e.fake.Ephemerals()[before:]
			switch {
			case c.ephemeral == "" && len(eph) != 0:
				t.Errorf("unexpected ephemeral %+v", eph)
			case c.ephemeral != "" && (len(eph) != 1 || !strings.Contains(eph[0].Text, c.ephemeral) || eph[0].User != c.ephemeralU):
				t.Errorf("ephemerals = %+v, want one to %s saying %q", eph, c.ephemeralU, c.ephemeral)
			}
			if a := e.actions(); len(a) != 0 {
				t.Fatalf("%d actions published, want none: %+v", len(a), a)
			}
			if v := e.fake.Views(); len(v) != 0 {
				t.Errorf("a modal was opened: %+v", v)
			}
		})
	}
}

func TestApproverClicksPublishOneAction(t *testing.T) {
	e := newEnv(t, nil)
	c := baseCase(account+"-1", e.clock.Now())
	e.putCase(c)

	approve := click(approverUser, notifier.ActionIDApprove, account, c.ID)
	if status, body := e.deliver(approve); status != 200 {
		t.Fatalf("approve: %d %s", status, body)
	}
	acts := e.actions()
	if len(acts) != 1 {
		t.Fatalf("actions = %d, want 1", len(acts))
	}
	a := acts[0]
	if a.Kind != model.ActionApprove || a.AccountID != account || a.CaseID != c.ID || a.Actor.ID != approverUser ||
		a.Actor.Kind != model.ActorSlack || a.Origin != "slack" || !strings.HasPrefix(a.ID, "slack:"+approverUser+":") {
		t.Errorf("action = %+v", a)
	}
	// Slack retries the same delivery: deduplicated by Nats-Msg-Id.
	if status, _ := e.deliver(approve); status != 200 {
		t.Fatalf("retry: %d", status)
	}
	if n := len(e.actions()); n != 1 {
		t.Fatalf("after a repeated delivery: %d actions, want 1", n)
	}

	// A member of the approver user group; membership is cached.
	if status, body := e.deliver(click(groupMember, notifier.ActionIDApprove, account, c.ID)); status != 200 {
		t.Fatalf("group approve: %d %s", status, body)
	}
	if n := len(e.actions()); n != 2 {
		t.Fatalf("actions after group member's click = %d, want 2", n)
	}
	if status, _ := e.deliver(click(groupMember, notifier.ActionIDRecheck, account, c.ID)); status != 200 {
		t.Fatal("recheck")
	}
	e.deliver(click(groupMember, notifier.ActionIDApprove, account, c.ID))
	if n := e.fake.Calls("usergroups.users.list"); n != 1 {
		t.Errorf("usergroups.users.list calls = %d, want 1 (cached)", n)
	}
	e.clock.Add(2 * time.Minute)
	e.deliver(click(groupMember, notifier.ActionIDApprove, account, c.ID))
	if n := e.fake.Calls("usergroups.users.list"); n != 2 {
		t.Errorf("usergroups.users.list calls = %d after the cache expired, want 2", n)
	}

	// Anyone may re-check; the actor is recorded.
	if status, _ := e.deliver(click(outsider, notifier.ActionIDRecheck, account, c.ID)); status != 200 {
		t.Fatal("outsider recheck")
	}
	last := e.actions()[len(e.actions())-1]
	if last.Kind != model.ActionRecheck || last.Actor.ID != outsider {
		t.Errorf("last action = %+v, want a recheck by %s", last, outsider)
	}
	if eph := e.fake.Ephemerals(); len(eph) != 0 {
		t.Errorf("accepted clicks got ephemerals: %+v", eph)
	}

	// Anyone may say the keys are gone once the case is ticketed.
	c.State = model.StateTicketed
	e.putCase(c)
	before := len(e.actions())
	e.deliver(click(outsider, notifier.ActionIDConfirmDeleted, account, c.ID))
	if acts := e.actions(); len(acts) != before+1 || acts[len(acts)-1].Kind != model.ActionConfirmDeleted {
		t.Errorf("confirm_deleted not published")
	}
}

func TestGroupLookupFailureFailsClosed(t *testing.T) {
	e := newEnv(t, nil)
	c := baseCase(account+"-1", e.clock.Now())
	e.putCase(c)
	e.fake.FailNext("usergroups.users.list", 1, slackfake.APIError("missing_scope"))
	if status, _ := e.deliver(click(groupMember, notifier.ActionIDApprove, account, c.ID)); status != 200 {
		t.Fatal("status")
	}
	if n := len(e.actions()); n != 0 {
		t.Fatalf("%d actions published while membership was unknown", n)
	}
	if eph := e.fake.Ephemerals(); len(eph) != 1 || !strings.Contains(eph[0].Text, "could not check") {
		t.Errorf("ephemerals = %+v", eph)
	}
}

func TestNoApproversConfiguredRefusesApprovals(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.Approvers = nil })
	if !strings.Contains(e.logs.String(), "level=WARN") || !strings.Contains(e.logs.String(), "no approvers configured") {
		t.Errorf("New did not warn about missing approvers:\n%s", e.logs.String())
	}
	c := baseCase(account+"-1", e.clock.Now())
	e.putCase(c)
	e.deliver(click(approverUser, notifier.ActionIDApprove, account, c.ID))
	if n := len(e.actions()); n != 0 {
		t.Fatalf("approval published with no approvers configured")
	}
	if eph := e.fake.Ephemerals(); len(eph) != 1 || !strings.Contains(eph[0].Text, "no on-call approvers are configured") {
		t.Errorf("ephemerals = %+v", eph)
	}
	// Re-check needs no approver.
	e.deliver(click(approverUser, notifier.ActionIDRecheck, account, c.ID))
	if n := len(e.actions()); n != 1 {
		t.Errorf("recheck refused: %d actions", n)
	}
}

func TestAcceptRiskModal(t *testing.T) {
	e := newEnv(t, nil)
	c := baseCase(account+"-1", e.clock.Now())
	e.putCase(c)
	form := click(approverUser, notifier.ActionIDAcceptRisk, account, c.ID)
	if status, body := e.deliver(form); status != 200 {
		t.Fatalf("accept click: %d %s", status, body)
	}
	views := e.fake.Views()
	if len(views) != 1 {
		t.Fatalf("views opened = %d, want 1", len(views))
	}
	v := views[0]
	var p struct {
		TriggerID string `json:"trigger_id"`
	}
	_ = json.Unmarshal(slackfake.Payload(form), &p)
	if v.TriggerID != p.TriggerID || v.Request.Type != slack.VTModal || v.Request.CallbackID != notifier.CallbackAcceptRisk ||
		v.Request.PrivateMetadata != notifier.ButtonValue(account, c.ID) {
		t.Fatalf("view = %+v (trigger %s)", v.Request, p.TriggerID)
	}
	if n := len(e.actions()); n != 0 {
		t.Fatalf("opening the modal published %d actions", n)
	}

	today := e.clock.Now().UTC().Format("2006-01-02")
	in30 := e.clock.Now().UTC().AddDate(0, 0, 30).Format("2006-01-02")
	values := func(reason, date string) map[string]map[string]slack.BlockAction {
		return map[string]map[string]slack.BlockAction{
			notifier.BlockIDReason:  {notifier.ActionIDReason: slackfake.TextValue(reason)},
			notifier.BlockIDExpires: {notifier.ActionIDExpires: slackfake.DateValue(date)},
		}
	}
	invalid := []struct {
		name, user, reason, date, block, says string
	}{
		{"missing reason", approverUser, "   ", in30, notifier.BlockIDReason, "reason"},
		{"no expiry", approverUser, "ok", "", notifier.BlockIDExpires, "expiry"},
		{"expiry today", approverUser, "ok", today, notifier.BlockIDExpires, "future"},
		{"expiry in the past", approverUser, "ok", e.clock.Now().AddDate(0, 0, -3).Format("2006-01-02"), notifier.BlockIDExpires, "future"},
		{"expiry beyond the maximum", approverUser, "ok", e.clock.Now().AddDate(0, 0, 91).Format("2006-01-02"), notifier.BlockIDExpires, "90 days"},
		{"not a date", approverUser, "ok", "31/12/2026", notifier.BlockIDExpires, "Not a date"},
		{"submitted by a non-approver", outsider, "ok", in30, notifier.BlockIDReason, "may not"},
	}
	for _, tc := range invalid {
		t.Run(tc.name+" is answered in the modal", func(t *testing.T) {
			status, body := e.deliver(slackfake.ViewSubmission(tc.user, "x", v, values(tc.reason, tc.date)))
			if status != 200 {
				t.Fatalf("status %d %s", status, body)
			}
			var resp slack.ViewSubmissionResponse
			if err := json.Unmarshal([]byte(body), &resp); err != nil || resp.ResponseAction != slack.RAErrors {
				t.Fatalf("answer %q is not a modal errors response", body)
			}
			if msg := resp.Errors[tc.block]; !strings.Contains(msg, tc.says) {
				t.Errorf("errors = %v, want %s to say %q", resp.Errors, tc.block, tc.says)
			}
			if n := len(e.actions()); n != 0 {
				t.Fatalf("%d actions published for invalid input", n)
			}
		})
	}

	valid := slackfake.ViewSubmission(approverUser, "alice", v, values("break-glass account, vaulted", in30))
	status, body := e.deliver(valid)
	if status != 200 || strings.TrimSpace(body) != "" {
		t.Fatalf("valid submission: %d %q, want 200 and an empty body (closes the modal)", status, body)
	}
	e.deliver(valid) // Slack's retry
	acts := e.actions()
	if len(acts) != 1 {
		t.Fatalf("actions = %d, want 1", len(acts))
	}
	a := acts[0]
	if a.Kind != model.ActionAcceptRisk || a.Reason != "break-glass account, vaulted" || a.Expires == nil ||
		a.Expires.Format("2006-01-02") != in30 || a.Actor.ID != approverUser || a.CaseID != c.ID {
		t.Errorf("action = %+v", a)
	}

	// A submission after the case moved on is refused in the modal.
	c.State = model.StateTicketed
	e.putCase(c)
	status, body = e.deliver(slackfake.ViewSubmission(approverUser, "alice", v, values("late", in30)))
	if status != 200 || !strings.Contains(body, "no longer") {
		t.Errorf("late submission: %d %s", status, body)
	}
	if n := len(e.actions()); n != 1 {
		t.Errorf("actions = %d after a late submission, want 1", n)
	}
}

func TestSocketMode(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.AppToken = appToken; c.SigningSecret = "" })
	e.run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.fake.WaitSocket(ctx); err != nil {
		t.Fatal(err)
	}
	c := baseCase(account+"-1", e.clock.Now())
	e.putCase(c)

	// Envelope in, ack out, action published.
	id, err := e.fake.SendInteractive(slackfake.Payload(click(approverUser, notifier.ActionIDApprove, account, c.ID)))
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := e.fake.WaitAck(ctx, id); err != nil || string(ack) != "null" {
		t.Fatalf("ack = %s, %v", ack, err)
	}
	testutil.Eventually(t, "the action", func() bool { return len(e.actions()) == 1 })

	// The same handler refuses over Socket Mode too: acked, nothing published.
	id, _ = e.fake.SendInteractive(slackfake.Payload(click(outsider, notifier.ActionIDApprove, account, c.ID)))
	if _, err := e.fake.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	if eph := e.fake.Ephemerals(); len(eph) != 1 || eph[0].User != outsider {
		t.Errorf("ephemerals = %+v", eph)
	}

	// Modal errors travel in the ack payload.
	id, _ = e.fake.SendInteractive(slackfake.Payload(click(approverUser, notifier.ActionIDAcceptRisk, account, c.ID)))
	if _, err := e.fake.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	views := e.fake.Views()
	if len(views) != 1 {
		t.Fatalf("views = %d", len(views))
	}
	sub := slackfake.ViewSubmission(approverUser, "alice", views[0], map[string]map[string]slack.BlockAction{
		notifier.BlockIDReason:  {notifier.ActionIDReason: slackfake.TextValue("")},
		notifier.BlockIDExpires: {notifier.ActionIDExpires: slackfake.DateValue("")},
	})
	id, _ = e.fake.SendInteractive(slackfake.Payload(sub))
	ack, err := e.fake.WaitAck(ctx, id)
	if err != nil || !strings.Contains(string(ack), `"response_action":"errors"`) || !strings.Contains(string(ack), notifier.BlockIDReason) {
		t.Fatalf("ack = %s, %v; want modal errors", ack, err)
	}
	if n := len(e.actions()); n != 1 {
		t.Errorf("actions = %d, want 1", n)
	}

	// HTTP interactions are off without a signing secret.
	if status, _ := e.deliver(click(approverUser, notifier.ActionIDApprove, account, c.ID)); status != http.StatusServiceUnavailable {
		t.Errorf("HTTP status = %d with Socket Mode only, want 503", status)
	}
}

func TestMetricsCountInteractions(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(c *notifier.Config) { c.Metrics = reg })
	c := baseCase(account+"-1", e.clock.Now())
	e.putCase(c)
	e.deliver(click(approverUser, notifier.ActionIDApprove, account, c.ID))
	e.deliver(click(outsider, notifier.ActionIDApprove, account, c.ID))
	if got := counter(t, reg, "rootwarden_notifier_interactions_total", "action", "approve"); got != 1 {
		t.Errorf("approve actions = %v, want 1", got)
	}
	if got := counter(t, reg, "rootwarden_notifier_interactions_total", "block_actions", "unauthorized"); got != 1 {
		t.Errorf("unauthorized clicks = %v, want 1", got)
	}
}

// counter reads one counter of a registered vector by its label values (in label
// name order).
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for i, lp := range m.GetLabel() {
				if lp.GetValue() != labels[i] {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func TestSocketModeBadAppTokenStopsRun(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.AppToken = "xapp-1-wrong-token" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := e.n.Run(ctx)
	if err == nil || !strings.HasPrefix(err.Error(), "SLACK_APP_TOKEN: Socket Mode: invalid_auth") {
		t.Fatalf("Run = %v, want SLACK_APP_TOKEN: Socket Mode: invalid_auth", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Run returned only when the context ended")
	}
	if strings.Contains(err.Error(), "wrong-token") || strings.Contains(e.logs.String(), "wrong-token") {
		t.Errorf("the app token leaked")
	}
}

func TestAcceptRiskReasonLimitCountsCharactersNotBytes(t *testing.T) {
	e := newEnv(t, nil)
	c := baseCase(account+"-1", e.clock.Now())
	e.putCase(c)
	if status, body := e.deliver(click(approverUser, notifier.ActionIDAcceptRisk, account, c.ID)); status != 200 {
		t.Fatalf("accept click: %d %s", status, body)
	}
	v := e.fake.Views()[0]
	// 1,500 characters (4,500 bytes): within the modal's own 2,000-character limit.
	reason := strings.Repeat("鍵", 1500)
	in30 := e.clock.Now().UTC().AddDate(0, 0, 30).Format("2006-01-02")
	status, body := e.deliver(slackfake.ViewSubmission(approverUser, "alice", v, map[string]map[string]slack.BlockAction{
		notifier.BlockIDReason:  {notifier.ActionIDReason: slackfake.TextValue(reason)},
		notifier.BlockIDExpires: {notifier.ActionIDExpires: slackfake.DateValue(in30)},
	}))
	if status != 200 || strings.TrimSpace(body) != "" {
		t.Fatalf("a 1,500-character reason was refused: %d %s", status, body)
	}
	if acts := e.actions(); len(acts) != 1 || acts[0].Reason != reason {
		t.Fatalf("actions = %d, want 1 with the reason", len(acts))
	}
}
