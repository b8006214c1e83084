package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// newInternal builds a notifier on a real embedded NATS server and slackfake, for
// tests that drive its loops' parts directly.
func newInternal(t *testing.T, mutate func(*Config)) (*Notifier, *slackfake.Server) {
	t.Helper()
	b := bustest.New(t)
	fake := slackfake.New(slackfake.WithBotToken("xoxb-test"), slackfake.WithChannel("C0CASES", "root-keys"))
	apiURL := fake.Start()
	t.Cleanup(fake.Close)
	cfg := Config{Channel: "C0CASES", SigningSecret: "secret", APIURL: apiURL, RetryBase: 10 * time.Millisecond,
		RetryMax: 20 * time.Millisecond, TickEvery: time.Hour, BurstThreshold: 10, BurstWindow: time.Hour,
		PostRate: Rate{Every: time.Millisecond, Burst: 100}, Tier3Rate: Rate{Every: time.Millisecond, Burst: 100}}
	if mutate != nil {
		mutate(&cfg)
	}
	n, err := New(cfg, (&testutil.LogBuffer{}).Logger(), b, slack.New("xoxb-test", slack.OptionAPIURL(apiURL)))
	if err != nil {
		t.Fatal(err)
	}
	return n, fake
}

func burstEvent(i int, now time.Time) model.CaseEvent {
	rotated := now.Add(-time.Duration(400+i%300) * 24 * time.Hour)
	acct := fmt.Sprintf("%012d", 100000000000+i)
	sev := model.SeverityHigh
	if i%5 == 0 {
		sev = model.SeverityCritical
	}
	c := model.Case{SchemaVersion: model.SchemaVersion, ID: "case-" + acct + "-1", AccountID: acct,
		AccountName: "account " + acct, State: model.StateOpen, Severity: sev,
		Keys: []model.KeyDetail{{Slot: 1, Active: true, LastRotated: &rotated}}}
	return model.CaseEvent{SchemaVersion: model.SchemaVersion, CaseID: c.ID, AccountID: acct, Seq: 1,
		Type: model.EventOpened, Case: c, At: now}
}

// The first sweep of a 10,000-account organization with legacy keys is one burst: its
// summary value must stay far below NATS's max_payload (1 MiB) and be saved.
func TestBurstSummaryOf10000CasesStaysSmallAndIsSaved(t *testing.T) {
	n, fake := newInternal(t, nil)
	ctx := context.Background()
	now := time.Now()
	const cases = 10000
	for i := range cases {
		n.opened(burstEvent(i, now), uint64(i+1))
	}
	if err := n.flushSummary(ctx); err != nil {
		t.Fatalf("flushSummary: %v", err)
	}
	e, err := n.b.Slack.Get(ctx, summaryKey)
	if err != nil {
		t.Fatalf("the summary was not saved: %v", err)
	}
	t.Logf("summary value of a %d-case burst: %d bytes", cases, len(e.Value()))
	if size := len(e.Value()); size > 2048 {
		t.Errorf("summary value = %d bytes for %d cases, want ≤ 2 KiB (figures, not members)", size, cases)
	}
	var s summary
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Counts.Cases != cases || s.Counts.Accounts != cases || s.Counts.Critical != cases/5 || s.Counts.States[model.StateOpen] != cases {
		t.Errorf("counts = %+v", s.Counts)
	}
	if s.TS == "" {
		t.Error("the saved summary has no ts")
	}
	msgs := fake.Messages("C0CASES")
	if len(msgs) != 1 || !strings.Contains(msgs[0].Text, "10000 root access key cases") {
		t.Errorf("summary messages = %+v", msgs)
	}
}

// After a restart, a member's next event moves the saved figures, and an opening
// delivered again is not counted twice.
func TestBurstSummaryFiguresSurviveARestart(t *testing.T) {
	n, _ := newInternal(t, nil)
	ctx := context.Background()
	now := time.Now()
	for i := range 20 {
		n.opened(burstEvent(i, now), uint64(i+1))
	}
	if err := n.flushSummary(ctx); err != nil {
		t.Fatal(err)
	}
	// A second process over the same bus: the summary comes back from KV only.
	n2, err := New(n.cfg, n.log, n.b, n.api)
	if err != nil {
		t.Fatal(err)
	}
	n2.loadSummary(ctx)
	n2.opened(burstEvent(3, now), 4) // redelivered: counted before the restart
	ev := burstEvent(3, now)
	ev.Seq, ev.Type, ev.Case.State = 2, model.EventTicketed, model.StateTicketed
	before := &record{AccountID: ev.AccountID, State: model.StateOpen, Severity: ev.Case.Severity, Burst: n2.burst.cur.ID}
	before.TS = "1.1"
	n2.afterProjected(ctx, ev, before)
	ev4 := burstEvent(4, now) // a member whose record does not carry the burst
	ev4.Seq, ev4.Type, ev4.Case.State = 2, model.EventTicketed, model.StateTicketed
	n2.afterProjected(ctx, ev4, &record{AccountID: ev4.AccountID, State: model.StateOpen})
	s := n2.burst.snapshot()
	if s.Counts.Cases != 20 || s.Counts.States[model.StateOpen] != 19 || s.Counts.States[model.StateTicketed] != 1 {
		t.Errorf("counts after the restart = %+v, want 20 cases, open 19, ticketed 1", s.Counts)
	}
}

// A value over max_payload is refused by NATS for good: retrying cannot help.
func TestMaxPayloadIsPermanent(t *testing.T) {
	n, _ := newInternal(t, nil)
	_, err := n.b.Slack.Put(context.Background(), "too-big", make([]byte, 2<<20))
	if !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("put of 2 MiB: %v, want nats.ErrMaxPayload", err)
	}
	if cl, _ := classify(fmt.Errorf("save burst summary b: %w", err)); cl != classPermanent {
		t.Errorf("classify(max payload) = %v, want permanent", cl)
	}
}

// A summary that fails for good is tried once per burst, not on every change.
func TestBurstSummaryPermanentFailureIsNotRetried(t *testing.T) {
	n, fake := newInternal(t, func(c *Config) { c.Channel = "C0GONE"; c.SummaryEvery = time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); n.summaryLoop(ctx) }()
	now := time.Now()
	for i := range 10 {
		n.opened(burstEvent(i, now), uint64(i+1))
	}
	testutil.Eventually(t, "the summary to fail for good", func() bool {
		n.burst.mu.Lock()
		defer n.burst.mu.Unlock()
		return n.burst.failed != ""
	})
	for i := 10; i < 20; i++ { // the burst goes on: every opening pokes the loop
		n.opened(burstEvent(i, now), uint64(i+1))
		testutil.Eventually(t, "the loop to take the change", func() bool { return len(n.burst.dirty) == 0 })
	}
	cancel()
	<-done
	if k := fake.Calls("chat.postMessage") + fake.Calls("conversations.history"); k != 1 {
		t.Errorf("Slack calls for the summary = %d, want 1 (a permanent error is not retried)", k)
	}
}
