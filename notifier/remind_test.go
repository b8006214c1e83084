package notifier_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/notifier"
)

func (e *env) tick(n *notifier.Notifier) {
	e.t.Helper()
	if err := n.Tick(context.Background()); err != nil {
		e.t.Fatalf("tick: %v", err)
	}
}

func countReplies(m slackfake.Message, has string) int {
	n := 0
	for _, r := range m.Replies {
		if strings.Contains(r.Text, has) {
			n++
		}
	}
	return n
}

func TestRemindersMentionApproversAndStop(t *testing.T) {
	e := newEnv(t, nil)
	e.run()
	e.openCase()

	e.clock.Add(29 * time.Minute)
	e.tick(e.n)
	if n := countReplies(e.onlyMessage(), "Reminder"); n != 0 {
		t.Fatalf("reminder before RemindAfter: %d", n)
	}
	e.clock.Add(time.Minute)
	e.tick(e.n)
	e.tick(e.n) // a second pass at the same time sends nothing more
	m := e.onlyMessage()
	if n := countReplies(m, "Reminder 1/3"); n != 1 || len(m.Replies) != 1 {
		t.Fatalf("replies = %+v, want one Reminder 1/3", m.Replies)
	}
	if r := m.Replies[0].Text; !strings.Contains(r, "<@"+approverUser+">") || !strings.Contains(r, "<!subteam^"+oncallGroup+">") {
		t.Errorf("reminder does not mention the approvers: %s", r)
	}

	// A restarted notifier (new instance, same bus) continues from the stored timers.
	n2, err := notifier.New(e.cfg, slog.New(slog.NewTextHandler(e.logs, nil)), e.b, e.api)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(10 * time.Minute)
	e.tick(n2)
	if n := countReplies(e.onlyMessage(), "Reminder"); n != 1 {
		t.Fatalf("reminder before the interval after a restart: %d", n)
	}
	e.clock.Add(20 * time.Minute)
	e.tick(n2)
	e.clock.Add(30 * time.Minute)
	e.tick(n2)
	m = e.onlyMessage()
	if countReplies(m, "Reminder 2/3") != 1 || countReplies(m, "Reminder 3/3") != 1 {
		t.Fatalf("replies = %+v, want reminders 2/3 and 3/3", m.Replies)
	}
	for range 4 {
		e.clock.Add(30 * time.Minute)
		e.tick(n2)
	}
	if n := countReplies(e.onlyMessage(), "Reminder"); n != 3 {
		t.Fatalf("reminders = %d, want at most 3", n)
	}
	if got := len(e.fake.Messages(channelID)); got != 1 {
		t.Errorf("top-level messages = %d, want 1 (reminders are thread replies)", got)
	}
}

func TestReminderFailureIsRetriedNextPass(t *testing.T) {
	e := newEnv(t, nil)
	// The case is posted by a running notifier, which then stops: its reminder loop
	// (a first pass at start) must not race the passes this test makes.
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.n.Run(ctx) }()
	e.openCase()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.clock.Add(31 * time.Minute)
	e.fake.FailNext("chat.postMessage", 1, slackfake.ServerError(500))
	if err := e.n.Tick(context.Background()); err == nil {
		t.Fatalf("tick with Slack down: no error")
	}
	e.tick(e.n)
	if n := countReplies(e.onlyMessage(), "Reminder 1/3"); n != 1 {
		t.Fatalf("reminder after a failed send = %d, want 1", n)
	}
}

func TestSLAEscalationIsBroadcastOnce(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.MaxReminders = -1 })
	e.run()
	c := baseCase(account+"-1", e.clock.Now())
	e.publish(c, model.EventOpened, "", model.System, "found")
	c.State = model.StateTicketed
	c.Ticket = &model.TicketRef{System: "builtin", ID: "RW-1", URL: "https://tickets.example/RW-1"}
	e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
	e.rendered(c.ID, 2)

	e.clock.Add(23 * time.Hour)
	e.tick(e.n)
	if n := countReplies(e.onlyMessage(), "SLA breached"); n != 0 {
		t.Fatalf("escalated before the SLA")
	}
	e.clock.Add(time.Hour)
	e.tick(e.n)
	e.clock.Add(24 * time.Hour)
	e.tick(e.n)
	m := e.onlyMessage()
	var esc []slackfake.Message
	for _, r := range m.Replies {
		if strings.Contains(r.Text, "SLA breached") {
			esc = append(esc, r)
		}
	}
	if len(esc) != 1 {
		t.Fatalf("escalations = %d, want 1", len(esc))
	}
	if !esc[0].Broadcast || !strings.Contains(esc[0].Text, "<@"+approverUser+">") || !strings.Contains(esc[0].Text, "RW-1") {
		t.Errorf("escalation = %+v, want a broadcast mentioning approvers and the ticket", esc[0])
	}
	if n := countReplies(m, "Reminder"); n != 0 {
		t.Errorf("reminders sent with MaxReminders < 0")
	}
}

func TestLogsNeverContainSecrets(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.AppToken = appToken })
	e.run()
	c := baseCase(account+"-1", e.clock.Now())
	e.fake.FailNext("chat.postMessage", 1, slackfake.ServerError(500))
	e.publish(c, model.EventOpened, "", model.System, "found")
	e.rendered(c.ID, 1)
	e.raw(slackfake.Sign("forged", time.Now(), []byte("payload={}")), []byte("payload={}"))
	e.deliver(click(outsider, notifier.ActionIDApprove, account, c.ID))
	e.deliver(click(approverUser, notifier.ActionIDApprove, account, c.ID))
	bad, _ := notifier.New(e.cfg, e.logs.Logger(), e.b,
		slackClient(e, "xoxb-wrong-"+botToken))
	if err := bad.CheckSlack(context.Background()); err == nil || strings.Contains(err.Error(), botToken) {
		t.Errorf("CheckSlack with a bad token = %v", err)
	}
	slog.New(slog.NewTextHandler(e.logs, nil)).Info("config", "cfg", e.cfg)
	logs := e.logs.String()
	if !strings.Contains(logs, "signing_secret_set=true") {
		t.Errorf("config was not logged through LogValue:\n%s", logs)
	}
	assertNoSecrets(t, logs)
	if s := e.cfg.String(); strings.Contains(s, signingSecret) || strings.Contains(s, appToken) {
		t.Errorf("Config.String leaks a secret")
	}
}

func TestMaxRemindersZeroSendsNone(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.MaxReminders = 0 }) // ROOTWARDEN_MAX_REMINDERS=0
	e.run()
	e.openCase()
	for range 5 {
		e.clock.Add(31 * time.Minute)
		e.tick(e.n)
	}
	if n := countReplies(e.onlyMessage(), "Reminder"); n != 0 {
		t.Fatalf("reminders = %d with MaxReminders 0, want none", n)
	}
}

func TestReminderPassReadsOnlyDueCases(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.PostRate = notifier.Rate{Every: time.Millisecond, Burst: 50} })
	e.run()
	for i := range 30 {
		e.publish(floodCase(i, e.clock.Now()), model.EventOpened, "", model.System, "found")
	}
	for i := range 30 {
		e.rendered(floodCase(i, e.clock.Now()).ID, 1)
	}
	e.tick(e.n)
	if n := e.n.TickReads(); n != 0 {
		t.Fatalf("a pass with nothing due read %d cases, want 0", n)
	}
	e.clock.Add(31 * time.Minute)
	e.tick(e.n)
	if n := e.n.TickReads(); n != 30 {
		t.Fatalf("a pass with 30 reminders due read %d cases, want 30", n)
	}
	e.tick(e.n)
	if n := e.n.TickReads(); n != 30 {
		t.Errorf("a second pass at the same time read %d more cases, want 0", n-30)
	}
}
