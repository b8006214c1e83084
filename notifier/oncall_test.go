package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/pagerduty"
	"github.com/rootwarden/rootwarden/internal/pagerduty/pdfake"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

const (
	payChannel = "C0PAY"
	sbxChannel = "C0SBX"
	pdToken    = "u+PDTOKENSECRET"
	pdKey      = "R0UTINGKEYSECRET0000000000000000"
	pdSchedule = "PSCHED1"
	todayUser  = "U0BOB"
	ydayUser   = "U0CAROL"
	ownerUser  = "U0PAT"
)

// oncallEnv is env plus the Events and commands endpoints and, when asked, PagerDuty.
type oncallEnv struct {
	*env
	pd       *pdfake.Server
	events   *httptest.Server
	commands *httptest.Server
}

func newOnCallEnv(t *testing.T, withPD bool, mutate func(*notifier.Config)) *oncallEnv {
	t.Helper()
	o := &oncallEnv{}
	var pdc *pagerduty.Client
	if withPD {
		o.pd = pdfake.New(pdToken, pdKey)
		t.Cleanup(o.pd.Close)
		var err error
		pdc, err = pagerduty.New(pagerduty.Config{Token: pdToken, Schedules: []string{pdSchedule}, RoutingKey: pdKey,
			APIURL: o.pd.URL(), EventsURL: o.pd.URL(), Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
	}
	o.env = newEnv(t, func(c *notifier.Config) {
		c.OwnerTag = "owner"
		c.HomeDebounce = 20 * time.Millisecond
		if pdc != nil {
			c.OnCall, c.Pager = pdc, pdc
		}
		if mutate != nil {
			mutate(c)
		}
	})
	if withPD {
		now := o.clock.Now()
		o.pd.AddShift(pdSchedule, pdfake.User{ID: "PCAROL", Name: "Carol", Email: "carol@example.com"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
		o.pd.AddShift(pdSchedule, pdfake.User{ID: "PBOB", Name: "Bob", Email: "bob@example.com"}, now.Add(-24*time.Hour), now.Add(24*time.Hour))
	}
	o.fake.AddUserWithEmail(todayUser, "bob", "bob@example.com")
	o.fake.AddUserWithEmail(ydayUser, "carol", "carol@example.com")
	o.fake.AddUserWithEmail(ownerUser, "pat", "pat@example.com")
	o.fake.AddUser(outsider, "mallory")
	o.events = httptest.NewServer(o.n.EventsHandler())
	t.Cleanup(o.events.Close)
	o.commands = httptest.NewServer(o.n.CommandsHandler())
	t.Cleanup(o.commands.Close)
	return o
}

func (o *oncallEnv) openCaseWith(account, ou string, tags map[string]string) model.Case {
	o.t.Helper()
	c := baseCase(account+"-1", o.clock.Now())
	c.AccountID, c.OUPath, c.Tags = account, ou, tags
	o.publish(c, model.EventOpened, "", model.System, "root access key found")
	o.rendered(c.ID, 1)
	return c
}

// click presses a button of the case's message as user and returns the ephemerals
// that user got and the actions published since.
func (o *oncallEnv) click(c model.Case, channel, user, actionID string) (eph []string, acts []model.Action) {
	o.t.Helper()
	ref := o.slackRef(c.ID)
	beforeE, beforeA := len(o.fake.Ephemerals()), len(o.actions())
	if status, body := o.deliver(slackfake.BlockAction(user, user, actionID, notifier.ButtonValue(c.AccountID, c.ID), channel, ref.TS)); status != 200 {
		o.t.Fatalf("click answered %d %s", status, body)
	}
	for _, e := range o.fake.Ephemerals()[beforeE:] {
		if e.User == user {
			eph = append(eph, e.Text)
		}
	}
	return eph, o.actions()[beforeA:]
}

func TestRoutedCaseLandsInItsTeamChannelAndKeepsItsMessage(t *testing.T) {
	routes := []notifier.Route{{OU: "Root/Prod", Channel: payChannel}, {Account: "333333333333", Channel: sbxChannel}}
	o := newOnCallEnv(t, false, func(c *notifier.Config) { c.Routes = routes })
	o.fake.AddChannel(payChannel, "payments-sec")
	o.fake.AddChannel(sbxChannel, "sandbox-sec")
	if err := o.n.CheckSlack(context.Background()); err != nil {
		t.Fatalf("CheckSlack: %v", err)
	}
	o.run()

	// Inherited down the tree: Root/Prod/Payments matches the Root/Prod rule.
	c := o.openCaseWith(account, "Root/Prod/Payments", map[string]string{"team": "payments"})
	if got := o.fake.Messages(payChannel); len(got) != 1 {
		t.Fatalf("payments channel has %d messages, want 1", len(got))
	}
	if got := o.fake.Messages(channelID); len(got) != 0 {
		t.Fatalf("default channel has %d messages, want 0", len(got))
	}
	// By account id; and no rule → the default channel.
	o.openCaseWith("333333333333", "Root/Prod/Payments", nil)
	o.openCaseWith("444444444444", "Root/Sandbox", nil)
	if len(o.fake.Messages(sbxChannel)) != 0 {
		t.Fatal("the first matching rule must win: account 333333333333 is under Root/Prod")
	}
	if got := o.fake.Messages(channelID); len(got) != 1 {
		t.Fatalf("unrouted case: default channel has %d messages, want 1", len(got))
	}

	// The account moves to another OU: the case keeps its one message, edited in place.
	moved := c
	moved.OUPath = "Root/Sandbox"
	o.publish(moved, model.EventUpdated, model.StateOpen, model.System, "details refreshed")
	o.rendered(c.ID, 2)
	msgs := o.fake.Messages(payChannel)
	if len(msgs) != 2 || msgs[0].Edits == 0 {
		t.Fatalf("after the move: %d messages in the payments channel (edits %d), want the same message edited", len(msgs), msgs[0].Edits)
	}
	if got := o.fake.Messages(channelID); len(got) != 1 {
		t.Fatalf("after the move the default channel has %d messages, want still 1", len(got))
	}
}

func TestStartupCheckNamesTheWrongRoutingRule(t *testing.T) {
	cases := map[string]struct {
		setup func(*slackfake.Server)
		want  []string
	}{
		"missing channel":    {func(*slackfake.Server) {}, []string{"ROOTWARDEN_SLACK_ROUTES: rule 2 (tag:team=payments=C0PAY)", "channel_not_found"}},
		"bot not a member":   {func(f *slackfake.Server) { f.AddChannel(payChannel, "p"); f.SetMember(payChannel, false) }, []string{"rule 2", "not_in_channel", "/invite"}},
		"all channels right": {func(f *slackfake.Server) { f.AddChannel(payChannel, "p") }, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := newOnCallEnv(t, false, func(c *notifier.Config) {
				c.Routes = []notifier.Route{{Account: account, Channel: channelID}, {TagKey: "team", TagValue: "payments", Channel: payChannel}}
			})
			tc.setup(o.fake)
			err := o.n.CheckSlack(context.Background())
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckSlack: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckSlack passed with a broken rule")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	if _, err := notifier.New(notifier.Config{Channel: channelID, SigningSecret: "s",
		OnCallConfig: notifier.OnCallConfig{Routes: []notifier.Route{{OU: "Root/Prod", Channel: "#payments"}}}}, nil, newEnv(t, nil).b, slackClient(newEnv(t, nil), botToken)); err == nil ||
		!strings.Contains(err.Error(), "ROOTWARDEN_SLACK_ROUTES: rule 1") {
		t.Fatalf("a channel name in a rule: %v", err)
	}
}

func TestOwnerIsMentionedButIsNoApprover(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	o.run()
	c := o.openCaseWith(account, "Root/Prod", map[string]string{"owner": "Pat@Example.com"})
	msg := o.onlyMessage()
	if !strings.Contains(msg.AllText(), "<@"+ownerUser+">") {
		t.Fatalf("owner not mentioned:\n%s", msg.AllText())
	}
	eph, acts := o.click(c, channelID, ownerUser, notifier.ActionIDApprove)
	if len(acts) != 0 || len(eph) != 1 || !strings.Contains(eph[0], "may not approve") {
		t.Fatalf("owner's approval: ephemerals %q, actions %d; want refused", eph, len(acts))
	}

	// Slack's lookup fails: the message still goes out, with the email and no mention.
	o.fake.FailNext("users.lookupByEmail", 1, slackfake.ServerError(http.StatusInternalServerError))
	o.openCaseWith("565656565656", "", map[string]string{"owner": "sam@example.com"})

	// No owner tag, and an owner who is not in Slack: both said on the message.
	o.openCaseWith("555555555555", "", nil)
	o.openCaseWith("666666666666", "", map[string]string{"owner": "gone@example.com"})
	var texts []string
	for _, m := range o.fake.Messages(channelID) {
		texts = append(texts, m.AllText())
	}
	// As a reader sees it: the emails are escaped so that Slack links none of them.
	all := strings.ReplaceAll(strings.Join(texts, "\n"), escape.ZWSP, "")
	for _, want := range []string{"no owner: the account has no `owner` tag", "gone@example.com (not a Slack user)", "sam@example.com (Slack lookup failed)"} {
		if !strings.Contains(all, want) {
			t.Errorf("messages do not say %q", want)
		}
	}
}

func TestOnCallPersonMayApproveAndYesterdaysMayNot(t *testing.T) {
	o := newOnCallEnv(t, true, func(c *notifier.Config) { c.Approvers = []string{approverUser} })
	o.run()
	c := o.openCase()

	eph, acts := o.click(c, channelID, ydayUser, notifier.ActionIDApprove)
	if len(acts) != 0 || len(eph) != 1 || !strings.Contains(eph[0], "may not approve") || !strings.Contains(eph[0], "<@"+todayUser+">") {
		t.Fatalf("yesterday's on-call: ephemerals %q, actions %d; want refused, naming today's", eph, len(acts))
	}
	_, acts = o.click(c, channelID, todayUser, notifier.ActionIDApprove)
	if len(acts) != 1 || acts[0].Kind != model.ActionApprove || acts[0].Actor.ID != todayUser {
		t.Fatalf("today's on-call: actions %+v, want one approval by %s", acts, todayUser)
	}
	if calls := o.pd.Calls("/oncalls"); calls != 1 {
		t.Errorf("PagerDuty asked %d times within the cache TTL, want 1", calls)
	}

	// A day later the shift has passed to nobody known: bob may no longer approve.
	o.clock.Add(25 * time.Hour)
	c2 := c
	c2.ID, c2.AccountID = "777777777777-1", "777777777777"
	o.publish(c2, model.EventOpened, "", model.System, "found")
	o.rendered(c2.ID, 1)
	eph, acts = o.click(c2, channelID, todayUser, notifier.ActionIDApprove)
	if len(acts) != 0 || len(eph) != 1 {
		t.Fatalf("after the shift ended: ephemerals %q, actions %d; want refused", eph, len(acts))
	}
}

func TestPagerDutyDownRefusesOnCallApprovalWithReason(t *testing.T) {
	o := newOnCallEnv(t, true, func(c *notifier.Config) { c.Approvers = []string{approverUser} })
	o.run()
	c := o.openCase()
	o.pd.SetDown(true)
	eph, acts := o.click(c, channelID, todayUser, notifier.ActionIDApprove)
	if len(acts) != 0 || len(eph) != 1 || !strings.Contains(eph[0], "could not ask PagerDuty who is on call") ||
		!strings.Contains(eph[0], "unreachable") {
		t.Fatalf("PagerDuty down: ephemerals %q, actions %d; want refused with the reason", eph, len(acts))
	}
	_, acts = o.click(c, channelID, approverUser, notifier.ActionIDApprove)
	if len(acts) != 1 {
		t.Fatalf("a static approver must still approve while PagerDuty is down: %d actions", len(acts))
	}
	if strings.Contains(o.logs.String(), "PDTOKENSECRET") {
		t.Fatal("PagerDuty token in the logs")
	}
	// PagerDuty is back: a few seconds later the on-call person may approve.
	o.pd.SetDown(false)
	o.clock.Add(6 * time.Second)
	_, acts = o.click(c, channelID, todayUser, notifier.ActionIDApprove)
	if len(acts) != 1 || acts[0].Actor.ID != todayUser {
		t.Fatalf("after PagerDuty recovered: %d actions, want bob's approval", len(acts))
	}
}

func TestReminderMentionsWhoeverIsOnCall(t *testing.T) {
	o := newOnCallEnv(t, true, func(c *notifier.Config) { c.Approvers = []string{approverUser} })
	o.run()
	c := o.openCase()
	o.clock.Add(31 * time.Minute)
	if err := o.n.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	replies := o.fake.Replies(channelID, o.slackRef(c.ID).TS)
	if len(replies) == 0 {
		t.Fatal("no reminder")
	}
	last := replies[len(replies)-1].Text
	if !strings.Contains(last, "Reminder") || !strings.Contains(last, "<@"+todayUser+">") || strings.Contains(last, ydayUser) {
		t.Fatalf("reminder %q does not mention today's on-call only", last)
	}
}

func TestCriticalCaseTriggersAnIncidentResolvedWithTheCase(t *testing.T) {
	o := newOnCallEnv(t, true, nil)
	o.run()
	// A high case pages nobody.
	high := baseCase("888888888888-1", o.clock.Now())
	high.AccountID, high.Severity = "888888888888", model.SeverityHigh
	o.publish(high, model.EventOpened, "", model.System, "found")
	o.rendered(high.ID, 1)

	c := o.openCase() // critical: a root key in use
	testutil.Eventually(t, "incident triggered", func() bool {
		in, ok := o.pd.Incident(c.ID)
		return ok && in.Status == "triggered"
	})
	// More events of the open case do not page again.
	o.publish(c, model.EventUpdated, model.StateOpen, model.System, "details refreshed")
	o.rendered(c.ID, 2)
	done := c
	done.State = model.StateResolved
	o.publish(done, model.EventResolved, model.StateOpen, model.System, "AWS reports no root access keys")
	testutil.Eventually(t, "incident resolved", func() bool {
		in, _ := o.pd.Incident(c.ID)
		return in.Status == "resolved"
	})
	in, _ := o.pd.Incident(c.ID)
	if in.Triggers != 1 || o.pd.Incidents() != 1 || !strings.Contains(in.Summary, account) {
		t.Fatalf("incident %+v, %d incidents; want one trigger for the critical case only", in, o.pd.Incidents())
	}
}

func TestPagerDutyEventsRetryAfterAnOutage(t *testing.T) {
	o := newOnCallEnv(t, true, nil)
	o.pd.FailNext("/v2/enqueue", 2, http.StatusServiceUnavailable)
	o.run()
	c := o.openCase()
	testutil.Eventually(t, "incident triggered after 503s", func() bool {
		in, ok := o.pd.Incident(c.ID)
		return ok && in.Status == "triggered"
	})
}

// homeOf waits until the user's Home tab satisfies cond.
func (o *oncallEnv) homeOf(user, what string, cond func(slackfake.HomeView) bool) slackfake.HomeView {
	o.t.Helper()
	var h slackfake.HomeView
	testutil.Eventually(o.t, what, func() bool {
		var ok bool
		h, ok = o.fake.Home(user)
		return ok && cond(h)
	})
	return h
}

func TestAppHomeShowsEachStatesButtonsAndRefreshes(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	o.run()
	now := o.clock.Now()
	mk := func(acct string, st model.State, age time.Duration) model.Case {
		c := baseCase(acct+"-1", now)
		c.AccountID, c.State, c.OpenedAt = acct, st, now.Add(-age)
		c.Tags = map[string]string{"owner": "pat@example.com"}
		if st == model.StateTicketed || st == model.StateVerifying {
			c.Ticket = &model.TicketRef{System: "builtin", ID: "RW-" + acct[:2]}
		}
		if st == model.StateRiskAccepted {
			c.Risk = &model.RiskAcceptance{Reason: "legacy", Expires: now.Add(48 * time.Hour), By: model.System, At: now}
		}
		o.putCase(c)
		return c
	}
	open := mk("111111111111", model.StateOpen, 2*time.Hour)
	older := mk("121212121212", model.StateOpen, 5*time.Hour)
	tick := mk("131313131313", model.StateTicketed, time.Hour)
	ver := mk("141414141414", model.StateVerifying, time.Hour)
	risk := mk("151515151515", model.StateRiskAccepted, time.Hour)
	done := mk("161616161616", model.StateResolved, time.Hour)

	if status, _, _ := slackfake.DeliverJSON(context.Background(), o.events.URL, "wrong-secret", slackfake.AppHomeOpened(approverUser)); status != http.StatusUnauthorized {
		t.Fatalf("forged event answered %d, want 401", status)
	}
	status, body, err := slackfake.DeliverJSON(context.Background(), o.events.URL, signingSecret, slackfake.URLVerification("chal-123"))
	if err != nil || status != 200 || string(body) != "chal-123" {
		t.Fatalf("url_verification: %d %q %v", status, body, err)
	}
	if status, _, err := slackfake.DeliverJSON(context.Background(), o.events.URL, signingSecret, slackfake.AppHomeOpened(approverUser)); err != nil || status != 200 {
		t.Fatalf("app_home_opened: %d %v", status, err)
	}
	h := o.homeOf(approverUser, "home published", func(slackfake.HomeView) bool { return true })

	perBlock := map[string][]string{}
	for _, b := range h.Buttons() {
		perBlock[b.BlockID] = append(perBlock[b.BlockID], b.ActionID)
	}
	want := map[string][]string{
		"rw_home_" + open.ID:  {notifier.ActionIDApprove, notifier.ActionIDAcceptRisk, notifier.ActionIDRecheck},
		"rw_home_" + older.ID: {notifier.ActionIDApprove, notifier.ActionIDAcceptRisk, notifier.ActionIDRecheck},
		"rw_home_" + tick.ID:  {notifier.ActionIDConfirmDeleted, notifier.ActionIDRecheck},
		"rw_home_" + ver.ID:   {notifier.ActionIDRecheck}, // a failing verification can be retried by hand
		"rw_home_" + risk.ID:  {notifier.ActionIDRevoke},
	}
	if fmt.Sprint(perBlock) != fmt.Sprint(want) {
		t.Fatalf("Home buttons %v, want %v", perBlock, want)
	}
	text := h.AllText()
	for _, s := range []string{ver.ID, "<@" + ownerUser + ">", "ticket RW-13", "open 5h"} {
		if !strings.Contains(text, s) {
			t.Errorf("Home tab does not show %q", s)
		}
	}
	if strings.Contains(text, done.ID) {
		t.Error("Home tab lists a resolved case")
	}
	if strings.Index(text, older.ID) > strings.Index(text, open.ID) {
		t.Error("Home tab is not oldest first")
	}

	// A click in the Home tab goes through the same gateway.
	if status, _ := o.deliver(slackfake.HomeBlockAction(approverUser, "alice", notifier.ActionIDApprove,
		notifier.ButtonValue(open.AccountID, open.ID), "rw_home_"+open.ID)); status != 200 {
		t.Fatalf("Home click answered %d", status)
	}
	if acts := o.actions(); len(acts) != 1 || acts[0].Kind != model.ActionApprove || acts[0].CaseID != open.ID {
		t.Fatalf("Home click published %+v", acts)
	}
	// A refused click from the Home tab is told in the tab.
	if status, _ := o.deliver(slackfake.HomeBlockAction(outsider, "mallory", notifier.ActionIDApprove,
		notifier.ButtonValue(open.AccountID, open.ID), "rw_home_"+open.ID)); status != 200 {
		t.Fatal("outsider's Home click not answered 200")
	}
	o.fake.AddUser(outsider, "mallory")
	o.homeOf(outsider, "refusal shown in the outsider's Home", func(h slackfake.HomeView) bool {
		return strings.Contains(h.AllText(), "may not approve")
	})

	// The case moves: the tab is published again without anyone reopening it
	// (once the notifier watches the cases: under load Run can get there late).
	testutil.Eventually(t, "the App Home watch", o.n.HomeWatching)
	moved := open
	moved.State = model.StateTicketed
	o.putCase(moved)
	o.homeOf(approverUser, "home refreshed after the case moved", func(h slackfake.HomeView) bool {
		for _, b := range h.Buttons() {
			if b.BlockID == "rw_home_"+open.ID && b.ActionID == notifier.ActionIDConfirmDeleted {
				return true
			}
		}
		return false
	})
}

func (o *oncallEnv) command(user, text, responseURL string) (int, map[string]any) {
	o.t.Helper()
	status, body, err := slackfake.Deliver(context.Background(), o.commands.URL, signingSecret,
		slackfake.SlashCommand(user, "u", text, channelID, responseURL))
	if err != nil {
		o.t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return status, m
}

func TestSlashCommandAnswersEphemerally(t *testing.T) {
	checked := make(chan string, 1)
	o := newOnCallEnv(t, false, func(c *notifier.Config) {
		c.Checker = checkerFunc(func(_ context.Context, acct, _ string) (model.Observation, error) {
			checked <- acct
			return model.Observation{AccountID: acct, RootKeysPresent: false}, nil
		})
	})
	o.run()
	c := o.openCase()
	answers := make(chan string, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		answers <- fmt.Sprint(m["response_type"], " ", m["text"])
	}))
	t.Cleanup(hook.Close)

	for _, tc := range []struct{ text, want string }{
		{"", "Usage"},
		{"help", "Usage"},
		{"status", "1 active cases: 1 open"},
		{"case " + c.ID, "History"},
		{"case nope", "is not a case id"},
		{"check 12", "is not a 12-digit"},
		{"rm -rf /", "does not know"},
		{"status extra", "does not know"},
	} {
		t.Run(tc.text, func(t *testing.T) {
			status, m := o.command(outsider, tc.text, hook.URL)
			if status != 200 || m["response_type"] != "ephemeral" || !strings.Contains(fmt.Sprint(m["text"]), tc.want) {
				t.Fatalf("answer %d %v, want ephemeral saying %q", status, m, tc.want)
			}
		})
	}
	if _, m := o.command(outsider, "status", ""); !strings.Contains(fmt.Sprint(m["text"]), "Oldest open case: `"+c.ID+"`") ||
		!strings.Contains(fmt.Sprint(m["text"]), "Last sweep: none yet") {
		t.Errorf("status does not name the oldest open case and the missing sweep: %v", m["text"])
	}
	sweep, _ := json.Marshal(map[string]any{"id": "20261201T100000Z-abc", "started_at": o.clock.Now().Add(-20 * time.Minute),
		"done": true, "accounts": 42, "error": "organizations:ListAccounts: AccessDenied"})
	if _, err := o.b.Sched.Put(context.Background(), "sweep", sweep); err != nil {
		t.Fatal(err)
	}
	if _, m := o.command(outsider, "status", ""); !strings.Contains(fmt.Sprint(m["text"]), "Last sweep: `20261201T100000Z-abc`") ||
		!strings.Contains(fmt.Sprint(m["text"]), "42 accounts; listing failed: organizations:ListAccounts: AccessDenied") ||
		!strings.Contains(fmt.Sprint(m["text"]), "(20m ago)") {
		t.Errorf("status does not report the last sweep and its error: %v", m["text"])
	}

	// check of an account with a case: the same Re-check action as the button.
	_, m := o.command(outsider, "check "+account, "")
	acts := o.actions()
	if !strings.Contains(fmt.Sprint(m["text"]), "Re-check") || len(acts) != 1 || acts[0].Kind != model.ActionRecheck || acts[0].CaseID != c.ID {
		t.Fatalf("check with a case: %v, actions %+v", m["text"], acts)
	}
	_, m = o.command(outsider, "check "+account, "")
	if !strings.Contains(fmt.Sprint(m["text"]), "checked less than") || len(o.actions()) != 1 {
		t.Fatalf("a second check within a minute must be throttled: %v", m["text"])
	}
	// check of a listed account without a case: the detector is asked, the answer follows.
	o.list("999999999999")
	_, m = o.command(outsider, "check 999999999999", hook.URL)
	if !strings.Contains(fmt.Sprint(m["text"]), "Checking account 999999999999") {
		t.Fatalf("check without a case: %v", m["text"])
	}
	if got := <-checked; got != "999999999999" {
		t.Fatalf("checked %s", got)
	}
	if a := <-answers; !strings.Contains(a, "ephemeral") || !strings.Contains(a, "no root access keys") {
		t.Fatalf("delayed answer %q", a)
	}

	// Verified like interactions.
	body := []byte(slackfake.SlashCommand(outsider, "u", "status", channelID, "").Encode())
	req, _ := http.NewRequest(http.MethodPost, o.commands.URL, strings.NewReader(string(body)))
	req.Header = slackfake.Sign(signingSecret, time.Now().Add(-10*time.Minute), body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stale signature answered %d, want 401", resp.StatusCode)
	}
}

type checkerFunc func(ctx context.Context, account, reason string) (model.Observation, error)

func (f checkerFunc) Check(ctx context.Context, account, reason string) (model.Observation, error) {
	return f(ctx, account, reason)
}

func TestSocketModeHomeAndSlashCommand(t *testing.T) {
	o := newOnCallEnv(t, false, func(c *notifier.Config) { c.AppToken = appToken; c.SigningSecret = "" })
	o.run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.fake.WaitSocket(ctx); err != nil {
		t.Fatal(err)
	}
	c := o.openCase()
	id, err := o.fake.SendEnvelope("events_api", slackfake.AppHomeOpened(approverUser))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.fake.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	o.homeOf(approverUser, "home over Socket Mode", func(h slackfake.HomeView) bool {
		return slices.ContainsFunc(h.Buttons(), func(b slackfake.Button) bool {
			return b.BlockID == "rw_home_"+c.ID && b.ActionID == notifier.ActionIDApprove
		})
	})
	id, err = o.fake.SendEnvelope("slash_commands", slackfake.SlashCommandPayload(
		slackfake.SlashCommand(outsider, "u", "status", channelID, "")))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := o.fake.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if json.Unmarshal(ack, &m) != nil || m["response_type"] != "ephemeral" || !strings.Contains(fmt.Sprint(m["text"]), "1 open") {
		t.Fatalf("slash command over Socket Mode acked %s", ack)
	}
}

func TestPagerDutyConsumerSurvivesARestart(t *testing.T) {
	o := newOnCallEnv(t, true, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.n.Run(ctx) }()
	c := o.openCase()
	testutil.Eventually(t, "incident triggered", func() bool { _, ok := o.pd.Incident(c.ID); return ok })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A second process (same bus) starts later and resolves the incident.
	n2, err := notifier.New(o.cfg, o.logs.Logger(), o.b, o.api)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, 10*time.Second, n2.Run)
	resolved := c
	resolved.State = model.StateResolved
	o.publish(resolved, model.EventResolved, model.StateOpen, model.System, "gone")
	testutil.Eventually(t, "incident resolved by the restarted notifier", func() bool {
		in, _ := o.pd.Incident(c.ID)
		return in.Status == "resolved"
	})
	if strings.Contains(o.logs.String(), "PagerDuty incident consumer: retrying") {
		t.Fatal("the restarted consumer could not start")
	}
}

func TestAppHomeWithManyCasesStaysWithinSlacksBlockLimit(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	now := o.clock.Now()
	for i := range 60 {
		c := baseCase(fmt.Sprintf("%012d-1", 900000000000+i), now)
		c.AccountID, c.OpenedAt = fmt.Sprintf("%012d", 900000000000+i), now.Add(-time.Duration(i)*time.Minute)
		o.putCase(c)
	}
	if err := o.n.HomeOpened(context.Background(), approverUser); err != nil {
		t.Fatalf("HomeOpened: %v", err)
	}
	h, ok := o.fake.Home(approverUser)
	if !ok || len(h.View.Blocks.BlockSet) > 100 {
		t.Fatalf("home published %v with %d blocks", ok, len(h.View.Blocks.BlockSet))
	}
	if !strings.Contains(h.AllText(), "more cases") || !strings.Contains(h.AllText(), "900000000059-1") {
		t.Fatal("the Home tab neither shows the oldest cases first nor says how many are left out")
	}
}
