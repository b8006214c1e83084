package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

// floodCase is case i of a flood: its own account, every fifth one critical.
func floodCase(i int, now time.Time) model.Case {
	acct := fmt.Sprintf("%012d", 100000000000+i)
	c := baseCase(acct+"-1", now)
	c.AccountID, c.AccountName = acct, fmt.Sprintf("acct-%d", i)
	c.Severity = model.SeverityHigh
	if i%5 == 0 {
		c.Severity = model.SeverityCritical
	}
	return c
}

// fastRates lets tests go at ten times Slack's speed.
func fastRates(c *notifier.Config) {
	c.PostRate = notifier.Rate{Every: 20 * time.Millisecond, Burst: 5}
	c.Tier3Rate = notifier.Rate{Every: 20 * time.Millisecond, Burst: 5}
}

func TestCaseEventsStayInOrderPerCaseUnderParallelProjection(t *testing.T) {
	e := newEnvWith(t, []slackfake.Option{slackfake.WithSeed(42)}, fastRates)
	// One call in five fails: 5xx, lost answers, 429s.
	e.fake.FailShare("chat.postMessage", 0.1, slackfake.ServerError(503))
	e.fake.FailShare("chat.postMessage", 0.1, slackfake.LostResponse())
	e.fake.FailShare("chat.update", 0.05, slackfake.RateLimited(time.Second))
	e.fake.FailShare("chat.update", 0.1, slackfake.LostResponse())
	e.run()
	const n = 12
	cases := make([]model.Case, n)
	for i := range cases {
		cases[i] = floodCase(i, e.clock.Now())
		e.publish(cases[i], model.EventOpened, "", model.System, "found")
	}
	// Interleaved: every case's events go out one round at a time.
	steps := []struct {
		typ      model.CaseEventType
		from, to model.State
	}{
		{model.EventTicketed, model.StateOpen, model.StateTicketed},
		{model.EventVerifying, model.StateTicketed, model.StateVerifying},
		{model.EventStillPresent, model.StateVerifying, model.StateTicketed},
	}
	for _, s := range steps {
		for i := range cases {
			cases[i].State = s.to
			e.publish(cases[i], s.typ, s.from, model.System, string(s.typ))
		}
	}
	for _, c := range cases {
		testutil.EventuallyWithin(t, 60*time.Second, "case "+c.ID+" fully rendered", func() bool { return renderedSeq(e, c.ID) >= 4 })
	}
	if msgs := caseMessages(e); len(msgs) != n {
		t.Fatalf("case messages = %d, want exactly one per case (%d)", len(msgs), n)
	}
	for _, c := range cases {
		ref := e.slackRef(c.ID)
		m, ok := e.fake.Message(channelID, ref.TS)
		if !ok {
			t.Fatalf("case %s: its message %s is not in the channel", c.ID, ref.TS)
		}
		var got []string
		for _, r := range m.Replies {
			if r.Metadata == nil {
				t.Fatalf("case %s: a thread reply without metadata: %q", c.ID, r.Text)
			}
			got = append(got, fmt.Sprintf("%s/%v", r.Metadata.EventPayload["case_id"], r.Metadata.EventPayload["seq"]))
		}
		want := fmt.Sprintf("%s/2,%s/3,%s/4", c.ID, c.ID, c.ID)
		if strings.Join(got, ",") != want {
			t.Errorf("case %s: thread replies %v, want %s (in order, none twice)", c.ID, got, want)
		}
	}
	if e.fake.Injected("") == 0 {
		t.Fatalf("no failure was injected: the test proves nothing")
	}
}

func TestANewCaseCostsNoHistoryCall(t *testing.T) {
	e := newEnv(t, fastRates)
	e.run()
	for i := range 20 {
		e.publish(floodCase(i, e.clock.Now()), model.EventOpened, "", model.System, "found")
	}
	for i := range 20 {
		e.rendered(floodCase(i, e.clock.Now()).ID, 1)
	}
	if n := e.fake.Calls("conversations.history"); n != 0 {
		t.Errorf("conversations.history calls = %d for 20 new cases, want 0 (only after an interrupted post)", n)
	}
}

func TestOneHungCaseDoesNotHoldTheOthers(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.CallTimeout = time.Minute })
	e.run()
	a := e.openCase()
	e.fake.FailNext("chat.update", 1, slackfake.Hang())
	a.State = model.StateTicketed
	e.publish(a, model.EventTicketed, model.StateOpen, model.System, "ticket opened")
	testutil.Eventually(t, "case A's edit hanging", func() bool { return e.fake.Calls("chat.update") == 1 })
	b := floodCase(1, e.clock.Now())
	e.publish(b, model.EventOpened, "", model.System, "found")
	e.rendered(b.ID, 1)
	if got := renderedSeq(e, a.ID); got != 1 {
		t.Fatalf("case A rendered seq %d while its edit hangs, want 1", got)
	}
}

func TestCrashBetweenPostAndSaveAcrossARestart(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) {
		c.AckWait = 500 * time.Millisecond
		c.RetryBase, c.RetryMax = time.Hour, time.Hour // the first process never retries
	})
	// The post takes effect, its answer is lost; the process then dies.
	e.fake.FailNext("chat.postMessage", 1, slackfake.LostResponse())
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.n.Run(ctx) }()
	c := baseCase(account+"-1", e.clock.Now())
	e.publish(c, model.EventOpened, "", model.System, "found")
	testutil.Eventually(t, "the lost post", func() bool { return len(e.fake.Messages(channelID)) == 1 })
	time.Sleep(50 * time.Millisecond)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("first run: %v", err)
	}
	// A new process on the same bus takes the event over within AckWait.
	cfg := e.cfg
	cfg.RetryBase, cfg.RetryMax = 50*time.Millisecond, 200*time.Millisecond
	n2, err := notifier.New(cfg, e.logs.Logger(), e.b, e.api)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, 10*time.Second, n2.Run)
	e.rendered(c.ID, 1)
	m := e.onlyMessage()
	if ref := e.slackRef(c.ID); ref.TS != m.TS {
		t.Errorf("SlackRef ts %q, want the adopted message %s", ref.TS, m.TS)
	}
	if h := e.fake.Calls("conversations.history"); h != 1 {
		t.Errorf("conversations.history calls = %d, want 1 (the interrupted post only)", h)
	}
}

func renderedSeq(e *env, caseID string) int {
	ent, err := e.b.Slack.Get(context.Background(), caseID)
	if err != nil {
		return 0
	}
	s := string(ent.Value())
	var seq int
	if i := strings.Index(s, `"rendered_seq":`); i >= 0 {
		fmt.Sscanf(s[i+len(`"rendered_seq":`):], "%d", &seq)
	}
	return seq
}

// caseMessages are the channel's top-level case messages (not the burst summary).
func caseMessages(e *env) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range e.fake.Messages(channelID) {
		if m.Metadata != nil && m.Metadata.EventType == notifier.MetadataCase {
			out = append(out, m)
		}
	}
	return out
}

func summaryMessage(e *env) (slackfake.Message, int) {
	var out slackfake.Message
	k := 0
	for _, m := range e.fake.Messages(channelID) {
		if m.Metadata != nil && m.Metadata.EventType == notifier.MetadataSummary {
			out, k = m, k+1
		}
	}
	return out, k
}

func TestBurstGetsOneSummaryKeptInStep(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) {
		fastRates(c)
		c.BurstThreshold, c.SummaryEvery = 5, 20*time.Millisecond
	})
	e.run()
	const n = 8
	cases := make([]model.Case, n)
	for i := range cases {
		cases[i] = floodCase(i, e.clock.Now())
		e.publish(cases[i], model.EventOpened, "", model.System, "found")
	}
	for _, c := range cases {
		e.rendered(c.ID, 1)
	}
	testutil.Eventually(t, "the summary of all 8", func() bool {
		m, _ := summaryMessage(e)
		return strings.Contains(m.Text, "8 root access key cases") && strings.Contains(m.Text, "8 of 8 case messages posted")
	})
	m, k := summaryMessage(e)
	if k != 1 {
		t.Fatalf("summary messages = %d, want 1", k)
	}
	all := m.AllText()
	for _, want := range []string{"*Accounts*\n8", "*Critical (key in use)*\n2", "*Oldest key*", "open 8"} {
		if !strings.Contains(all, want) {
			t.Errorf("summary lacks %q:\n%s", want, all)
		}
	}
	if len(caseMessages(e)) != n {
		t.Errorf("case messages = %d, want %d: every case keeps its own message", len(caseMessages(e)), n)
	}
	for _, c := range cases[:3] {
		c.State = model.StateTicketed
		e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
	}
	testutil.Eventually(t, "the summary to follow the approvals", func() bool {
		m, _ := summaryMessage(e)
		return strings.Contains(m.Text, "open 5 · ticketed 3")
	})
	if _, k := summaryMessage(e); k != 1 {
		t.Errorf("summary messages = %d after the updates, want 1", k)
	}
}

func TestFewCasesGetNoSummary(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.BurstThreshold = 5 })
	e.run()
	for i := range 4 {
		e.publish(floodCase(i, e.clock.Now()), model.EventOpened, "", model.System, "found")
	}
	for i := range 4 {
		e.rendered(floodCase(i, e.clock.Now()).ID, 1)
	}
	if _, k := summaryMessage(e); k != 0 {
		t.Errorf("summary messages = %d for 4 cases (threshold 5), want 0", k)
	}
}

func TestSummaryPostedBeforeACrashIsAdopted(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { fastRates(c); c.BurstThreshold = 3 })
	// A previous process saved its intent, posted the summary and died.
	since := time.Now().Add(-time.Second)
	ts := e.fake.PostMessage(slackfake.Message{Channel: channelID, Text: "old render",
		Metadata: &slackMeta{EventType: notifier.MetadataSummary, EventPayload: map[string]any{"summary_id": "burst-1"}}})
	rec, _ := json.Marshal(map[string]any{"id": "burst-1", "posting_since": since, "started": e.clock.Now(),
		"last_open": e.clock.Now(), "members": map[string]any{"c-1": map[string]any{"account": "111111111111", "severity": "critical", "state": "open"}}})
	if _, err := e.b.Slack.Put(context.Background(), "summary.current", rec); err != nil {
		t.Fatal(err)
	}
	e.run()
	testutil.Eventually(t, "the summary re-rendered", func() bool {
		m, _ := e.fake.Message(channelID, ts)
		return m.Edits > 0
	})
	if _, k := summaryMessage(e); k != 1 {
		t.Errorf("summary messages = %d, want 1 (adopted, not posted again)", k)
	}
}

func TestFloodIsPacedAndAClickGoesFirst(t *testing.T) {
	// Slack's limits 20 times faster: posts 1 per 50 ms per channel (burst 3).
	lim := slackfake.SlackLimits()
	lim.PostPerChannel.Every /= 20
	for k, r := range lim.Methods {
		r.Every /= 20
		lim.Methods[k] = r
	}
	e := newEnvWith(t, []slackfake.Option{slackfake.WithLimits(lim)}, func(c *notifier.Config) {
		c.PostRate = notifier.Rate{Every: notifier.DefaultPostRate.Every / 20, Burst: 2}
		c.Tier3Rate = notifier.Rate{Every: notifier.DefaultTier3Rate.Every / 20, Burst: 3}
	})
	// The flood is in the stream when the notifier starts (as after a first sweep):
	// what goes first is decided by priority, not by how fast the test publishes.
	const n = 60
	cases := make([]model.Case, n)
	for i := range cases {
		cases[i] = floodCase(i, e.clock.Now())
		e.publish(cases[i], model.EventOpened, "", model.System, "found")
	}
	e.run()
	// Critical cases (every fifth) go first: the first posts are critical ones, apart
	// from the few other cases whose workers were already waiting for the channel
	// (at most DefaultPerChannelWorkers) when the critical ones arrived.
	first := 8 + notifier.DefaultPerChannelWorkers
	testutil.Eventually(t, "the first case messages", func() bool { return len(caseMessages(e)) >= first })
	crit := 0
	for _, m := range caseMessages(e)[:first] {
		if strings.Contains(strings.ToLower(m.Text), "critical") {
			crit++
		}
	}
	if crit < 8 {
		t.Errorf("%d of the first %d case messages are critical, want the critical ones first", crit, first)
	}
	// An approval of a posted case while most are still waiting.
	c := cases[0]
	c.State = model.StateTicketed
	e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
	e.rendered(c.ID, 2)
	if waiting := n - len(caseMessages(e)); waiting < n/3 {
		t.Errorf("the approval was shown after the flood (%d cases still waiting), want it before the queue", waiting)
	}
	testutil.EventuallyWithin(t, 30*time.Second, "every case in Slack", func() bool { return len(caseMessages(e)) == n })
	posts := e.fake.Calls("chat.postMessage")
	if limited := e.fake.RateLimitedCalls(""); limited*5 > posts {
		t.Errorf("%d of %d posts answered 429, want at most 1 in 5", limited, posts)
	}
	if h := e.fake.Calls("conversations.history"); h != 0 {
		t.Errorf("conversations.history calls = %d in a flood of new cases, want 0", h)
	}
}

func TestRedeliveryLooksInTheThreadOnlyAfterAnInterruptedReply(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) { c.AckWait = 500 * time.Millisecond; c.CallTimeout = time.Minute })
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.n.Run(ctx) }()
	c := baseCase(account+"-1", e.clock.Now())
	e.publish(c, model.EventOpened, "", model.System, "found")
	e.rendered(c.ID, 1)
	// The process dies while the edit of the next event hangs: its reply was never tried.
	e.fake.FailNext("chat.update", 1, slackfake.Hang())
	c.State = model.StateTicketed
	e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
	testutil.Eventually(t, "the hanging edit", func() bool { return e.fake.Calls("chat.update") == 1 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n2, err := notifier.New(e.cfg, e.logs.Logger(), e.b, e.api)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, 10*time.Second, n2.Run)
	e.rendered(c.ID, 2)
	if m := e.onlyMessage(); len(m.Replies) != 1 {
		t.Fatalf("thread replies = %d, want 1", len(m.Replies))
	}
	if n := e.fake.Calls("conversations.replies"); n != 0 {
		t.Errorf("conversations.replies calls = %d on a redelivery whose reply was never tried, want 0", n)
	}
}

// A flood waiting for one channel's posting rate is a queue, not a parked goroutine
// per case (each holding its rendered message): memory stays flat however many
// cases wait. Another channel's case and an event a person waits for do not queue
// behind it.
func TestAFloodWaitsAsAQueueNotAsParkedWorkers(t *testing.T) {
	const other = "C0OTHER"
	otherAcct := fmt.Sprintf("%012d", 100000000000+9999)
	e := newEnv(t, func(c *notifier.Config) {
		c.PostRate = notifier.Rate{Every: time.Second, Burst: 1}
		c.Routes = []notifier.Route{{Account: otherAcct, Channel: other}}
	})
	e.fake.AddChannel(other, "other-team")
	e.run()
	base := runtime.NumGoroutine()
	const n = 300
	cases := make([]model.Case, n)
	for i := range cases {
		cases[i] = floodCase(i, e.clock.Now())
		cases[i].Severity = model.SeverityHigh // critical ones are not gated
		e.publish(cases[i], model.EventOpened, "", model.System, "found")
	}
	testutil.EventuallyWithin(t, 30*time.Second, "the flood held by the notifier", func() bool {
		running, waiting := e.n.Backlog()
		return running+waiting >= n-20
	})
	running, waiting := e.n.Backlog()
	if running > notifier.DefaultPerChannelWorkers {
		t.Errorf("%d cases in projection for one channel, want at most %d", running, notifier.DefaultPerChannelWorkers)
	}
	if g := runtime.NumGoroutine() - base; g > 50 {
		t.Errorf("%d more goroutines with %d cases waiting, want a queue (at most 50)", g, waiting)
	}
	// Another team's channel: posted now, not after the flood.
	oc := floodCase(9999, e.clock.Now())
	e.publish(oc, model.EventOpened, "", model.System, "found")
	e.rendered(oc.ID, 1)
	// An approval through the API of a case still waiting: projected at once.
	late := cases[n-1]
	late.State = model.StateTicketed
	e.publish(late, model.EventTicketed, model.StateOpen, model.Actor{Kind: model.ActorAPI, ID: "ops"}, "approved")
	e.rendered(late.ID, 2)
	if _, waiting := e.n.Backlog(); waiting < n/2 {
		t.Errorf("only %d cases still waiting when the other channel's case and the approval were shown, want them ahead of the flood", waiting)
	}
	if got := len(e.fake.Messages(other)); got != 1 {
		t.Errorf("messages in the other channel = %d, want 1", got)
	}
}

// A flood bigger than the notifier's window (MaxInFlight) holds the rest of the
// stream back; an approval of a posted case must not wait in the stream behind it
// (with 10,000 new cases that would be hours at Slack's posting rate).
func TestAnApprovalIsNotHeldInTheStreamBehindAFlood(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) {
		c.PostRate = notifier.Rate{Every: 200 * time.Millisecond, Burst: 1}
		c.MaxInFlight = 8
	})
	e.run()
	first := floodCase(0, e.clock.Now())
	e.publish(first, model.EventOpened, "", model.System, "found")
	e.rendered(first.ID, 1)
	const n = 60
	for i := 1; i <= n; i++ {
		e.publish(floodCase(i, e.clock.Now()), model.EventOpened, "", model.System, "found")
	}
	// The approval of the first case, published behind the whole flood.
	c := first
	c.State = model.StateTicketed
	e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved")
	e.rendered(c.ID, 2)
	if posted := len(caseMessages(e)); posted > n/2 {
		t.Errorf("the approval was shown after %d of %d case messages, want it ahead of the flood", posted, n+1)
	}
	if got := countReplies(e.onlyMessageOf(c.ID), "approved"); got != 1 {
		t.Errorf("thread replies for the approval = %d, want 1", got)
	}
	// The main consumer delivers the approval again once the flood is through: it is
	// skipped, not shown twice.
	testutil.EventuallyWithin(t, 30*time.Second, "every case in Slack", func() bool { return len(caseMessages(e)) == n+1 })
	testutil.Eventually(t, "the flood acknowledged", func() bool { r, w := e.n.Backlog(); return r+w == 0 })
	if got := countReplies(e.onlyMessageOf(c.ID), "approved"); got != 1 {
		t.Errorf("thread replies for the approval after the flood = %d, want 1", got)
	}
}
