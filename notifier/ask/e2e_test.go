package ask_test

// End to end: a root console sign-in arrives through SQS (the AWS simulator), the
// detector reports it, the remediator asks the question and owns its deadline, the
// notifier (this package) asks the owner by DM and tells the routed channel, and
// signed clicks answer it — over a real embedded NATS server, the real SDK and
// slack-go against the Slack fake.

import (
	"context"

	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/pagerduty"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
	"github.com/rootwarden/rootwarden/notifier/ask"
	"github.com/rootwarden/rootwarden/remediator"
)

const (
	mgmt      = "111111111111"
	member    = "222222222222"
	channel   = "C0CASES"
	owner     = "U0OWNER"
	approver  = "U0APPROVER"
	outsider  = "U0OUTSIDER"
	botToken  = "xoxb-1-2-BOTTOKEN"
	secret    = "0123456789abcdefSIGNING"
	ownerMail = "owner@example.com"
)

type fakePager struct {
	mu       sync.Mutex
	triggers []pagerduty.Incident
}

func (p *fakePager) Trigger(_ context.Context, in pagerduty.Incident) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.triggers = append(p.triggers, in)
	return nil
}
func (p *fakePager) Resolve(context.Context, string) error { return nil }
func (p *fakePager) keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, in := range p.triggers {
		out = append(out, in.DedupKey)
	}
	return out
}

type world struct {
	t      *testing.T
	sim    *awssim.Sim
	queue  string
	clock  *testutil.Clock
	b      *bus.Bus
	fake   *slackfake.Server
	pager  *fakePager
	http   *httptest.Server
	logs   *testutil.LogBuffer
	within time.Duration
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, clock: testutil.NewClock(time.Now().UTC().Truncate(time.Minute)), pager: &fakePager{},
		logs: &testutil.LogBuffer{}, within: 15 * time.Minute}
	w.sim = awssim.New(awssim.Options{Now: w.clock.Now})
	w.sim.AddAccount(awssim.Account{ID: mgmt, Name: "management", Management: true})
	w.sim.AddAccount(awssim.Account{ID: member, Name: "payments-prod"})
	w.sim.EnableOrganization(mgmt)
	w.sim.SetAccountTags(member, map[string]string{"owner": ownerMail})
	srv := w.sim.Start()
	t.Cleanup(srv.Close)
	w.queue = w.sim.CreateQueue(mgmt, "rootwarden-events")
	awsCfg, err := w.sim.ClientConfig(context.Background(), srv.URL, mgmt)
	if err != nil {
		t.Fatal(err)
	}
	w.b = bustest.New(t)
	log := w.logs.Logger()

	det, err := detector.New(detector.Config{OrgRoleName: "OrganizationAccountAccessRole", SQSQueueURL: w.queue,
		ScanInterval: 24 * time.Hour, Concurrency: 2, AccountTimeout: 10 * time.Second, MaxBackoff: 20 * time.Millisecond,
		Now: w.clock.Now}, log, w.b, awsCfg)
	if err != nil {
		t.Fatal(err)
	}
	rem, err := remediator.New(remediator.Config{ExpiryScanInterval: 50 * time.Millisecond, TicketPollInterval: time.Hour,
		Now: w.clock.Now, ActivityAnswerWithin: w.within}, log, w.b, det, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.fake = slackfake.New(slackfake.WithBotToken(botToken), slackfake.WithChannel(channel, "root-keys"))
	apiURL := w.fake.Start()
	t.Cleanup(w.fake.Close)
	w.fake.AddUserWithEmail(owner, "olivia", ownerMail)
	w.fake.AddUser(approver, "alice")
	w.fake.AddUser(outsider, "mallory")
	cfg := notifier.Config{Channel: channel, SigningSecret: secret, APIURL: apiURL, Approvers: []string{approver},
		Now: w.clock.Now, RetryBase: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond, TickEvery: time.Hour,
		PostRate: notifier.Rate{Every: time.Millisecond, Burst: 100}, Tier3Rate: notifier.Rate{Every: time.Millisecond, Burst: 100}}
	cfg.OwnerTag = "owner"
	cfg.Pager = w.pager
	n, err := notifier.New(cfg, log, w.b, slack.New(botToken, slack.OptionAPIURL(apiURL)))
	if err != nil {
		t.Fatal(err)
	}
	w.http = httptest.NewServer(n.InteractionsHandler())
	t.Cleanup(w.http.Close)
	testutil.Run(t, 30*time.Second, det.Run)
	testutil.Run(t, 30*time.Second, rem.Run)
	testutil.Run(t, 30*time.Second, n.Run)
	return w
}

func (w *world) signIn(at time.Time) {
	w.sim.SendMessage(w.queue, awssim.RootConsoleLoginEvent(member, "198.51.100.7", true, false, at))
}

// click delivers a signed click of user on the button actionID of msg.
func (w *world) click(user, actionID string, msg slackfake.Message) {
	w.t.Helper()
	for _, b := range msg.Buttons() {
		if b.ActionID == actionID {
			status, body, err := slackfake.Deliver(context.Background(), w.http.URL, secret,
				slackfake.BlockAction(user, user, actionID, b.Value, msg.Channel, msg.TS))
			if err != nil || status != http.StatusOK {
				w.t.Fatalf("click %s by %s: %d %s %v", actionID, user, status, body, err)
			}
			return
		}
	}
	w.t.Fatalf("no button %s on %q", actionID, msg.AllText())
}

// dm waits for the owner's n-th DM question and returns it.
func (w *world) dm(n int) slackfake.Message {
	w.t.Helper()
	var m slackfake.Message
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if dms := w.fake.DMs(owner); len(dms) >= n {
			m = dms[n-1]
			break
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for DM question %d (%d DMs)\nlogs:\n%s", n, len(w.fake.DMs(owner)), w.logs.String())
		}
	}
	return m
}

// notice waits for the channel's n-th top-level message and returns it.
func (w *world) notice(n int, cond func(slackfake.Message) bool) slackfake.Message {
	w.t.Helper()
	var m slackfake.Message
	ok := func() bool {
		var tops []slackfake.Message
		for _, x := range w.fake.Messages(channel) {
			if x.ThreadTS == "" || x.ThreadTS == x.TS {
				tops = append(tops, x)
			}
		}
		if len(tops) < n {
			return false
		}
		m = tops[n-1]
		return cond(m)
	}
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for channel notice %d; it reads %q\nlogs:\n%s", n, m.AllText(), w.logs.String())
		}
	}
	return m
}

func has(s ...string) func(slackfake.Message) bool {
	return func(m slackfake.Message) bool {
		t := m.AllText()
		for _, x := range s {
			if !strings.Contains(t, x) {
				return false
			}
		}
		return true
	}
}

func TestRootSignInAskedAnsweredNoEscalatesAndYesConfirms(t *testing.T) {
	w := newWorld(t)

	// 1. A root console sign-in without MFA: the owner is asked by DM, and the routed
	// channel is told at once who was asked and when it escalates.
	w.signIn(w.clock.Now())
	q := w.dm(1)
	if !strings.Contains(q.AllText(), "198.51.100.7") || !strings.Contains(q.AllText(), "MFA used: No") ||
		!strings.Contains(q.AllText(), "payments-prod") {
		t.Fatalf("the DM does not say what happened: %q", q.AllText())
	}
	escalates := w.clock.Now().Add(w.within).UTC().Format("15:04 UTC")
	notice := w.notice(1, has("asked <@"+owner+">", "escalates at "+escalates))
	if len(q.Buttons()) != 2 || len(notice.Buttons()) != 2 {
		t.Fatalf("want Yes and No on the DM and the notice: %+v / %+v", q.Buttons(), notice.Buttons())
	}

	// 2. Someone who is neither asked nor an approver cannot answer: told so, nothing recorded.
	w.click(outsider, ask.ActionIDNo, notice)
	testutil.Eventually(t, "refusal shown to the outsider", func() bool {
		for _, e := range w.fake.Ephemerals() {
			if e.User == outsider && strings.Contains(e.Text, "Only the person asked or an on-call approver") {
				return true
			}
		}
		return false
	})
	if len(w.pager.keys()) != 0 {
		t.Fatal("an outsider's No paged")
	}

	// 3. The owner answers No: critical in the channel with the console steps, and a
	// PagerDuty incident.
	w.click(owner, ask.ActionIDNo, q)
	w.notice(1, has("Critical", "<@"+owner+"> does not recognise this"))
	testutil.Eventually(t, "escalation posted to the channel with console steps", func() bool {
		for _, m := range w.fake.Replies(channel, notice.TS) {
			if m.Broadcast && strings.Contains(m.AllText(), "root activity not confirmed") && strings.Contains(m.AllText(), "Delete every root access key") {
				return true
			}
		}
		return false
	})
	testutil.Eventually(t, "PagerDuty incident", func() bool { return len(w.pager.keys()) == 1 })
	if k := w.pager.keys()[0]; !strings.HasPrefix(k, member+"-a1-") {
		t.Fatalf("incident dedup key %q is not the question's id", k)
	}
	testutil.Eventually(t, "the answered DM without buttons, saying critical", func() bool {
		dm := w.fake.DMs(owner)[0]
		return len(dm.Buttons()) == 0 && strings.Contains(dm.AllText(), "Critical")
	})

	// 4. Later, another sign-in: a new question; the owner says yes, with a reason.
	w.clock.Add(time.Hour)
	w.signIn(w.clock.Now())
	q2 := w.dm(2)
	w.click(owner, ask.ActionIDYes, q2)
	var view slackfake.View
	testutil.Eventually(t, "reason modal opened", func() bool {
		vs := w.fake.Views()
		if len(vs) == 0 {
			return false
		}
		view = vs[len(vs)-1]
		return view.Request.CallbackID == ask.CallbackReason
	})
	// An empty reason is refused in the modal.
	status, body, err := slackfake.Deliver(context.Background(), w.http.URL, secret, slackfake.ViewSubmission(owner, "olivia", view,
		map[string]map[string]slack.BlockAction{ask.BlockIDReason: {ask.ActionIDReason: slackfake.TextValue("  ")}}))
	if err != nil || status != http.StatusOK || !strings.Contains(string(body), "response_action") {
		t.Fatalf("empty reason: %d %s %v", status, body, err)
	}
	status, body, err = slackfake.Deliver(context.Background(), w.http.URL, secret, slackfake.ViewSubmission(owner, "olivia", view,
		map[string]map[string]slack.BlockAction{ask.BlockIDReason: {ask.ActionIDReason: slackfake.TextValue("closing the <!channel> billing, OPS-1")}}))
	if err != nil || status != http.StatusOK || len(body) > 0 {
		t.Fatalf("reason: %d %s %v", status, body, err)
	}
	n2 := w.notice(2, has("Confirmed", "<@"+owner+">", "closing the &lt;!channel&gt; billing, OPS-1"))
	if len(n2.Buttons()) != 0 {
		t.Fatal("the confirmed notice still offers buttons")
	}
	if got := len(w.pager.keys()); got != 1 {
		t.Fatalf("a confirmed question paged: %d incidents", got)
	}
}

func TestUnansweredQuestionEscalatesAtItsDeadlineAndActivityCoalesces(t *testing.T) {
	w := newWorld(t)
	w.signIn(w.clock.Now())
	w.dm(1)
	// The password changed a minute later: the same question, not a second one.
	w.clock.Add(time.Minute)
	w.sim.SendMessage(w.queue, awssim.RootPasswordEvent(member, "PasswordUpdated", "198.51.100.7", w.clock.Now()))
	w.notice(1, has("root password changed", "root signed in to the console"))
	if n := len(w.fake.DMs(owner)); n != 1 {
		t.Fatalf("%d DMs, want one question", n)
	}
	// Not yet due: nothing happens.
	w.clock.Add(5 * time.Minute)
	time.Sleep(300 * time.Millisecond)
	if len(w.pager.keys()) != 0 {
		t.Fatal("escalated before its deadline")
	}
	// No answer by the deadline: critical, paged, by rootwarden itself.
	w.clock.Add(w.within)
	w.notice(1, has("Critical", "no answer within 15m0s"))
	testutil.Eventually(t, "PagerDuty incident", func() bool { return len(w.pager.keys()) == 1 })
	testutil.Eventually(t, "the escalated DM without buttons", func() bool {
		dm := w.fake.DMs(owner)[0]
		return len(dm.Buttons()) == 0 && strings.Contains(dm.AllText(), "no answer within")
	})
}

// Before a workspace re-approves the app with im:write, Slack refuses the DM: the
// channel notice still goes out, says so, and an approver answers there.
func TestRefusedDMStillTellsTheChannel(t *testing.T) {
	w := newWorld(t)
	w.fake.FailNext("conversations.open", 1, slackfake.APIError("missing_scope"))
	w.signIn(w.clock.Now())
	notice := w.notice(1, has("could not DM <@"+owner+">", "missing_scope"))
	w.click(approver, ask.ActionIDNo, notice)
	w.notice(1, has("Critical"))
	testutil.Eventually(t, "PagerDuty incident", func() bool { return len(w.pager.keys()) == 1 })
	if n := len(w.fake.DMs(owner)); n != 0 {
		t.Fatalf("%d DMs despite the refusal", n)
	}
}
