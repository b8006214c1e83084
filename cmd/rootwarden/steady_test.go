package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
	"github.com/rootwarden/rootwarden/remediator"
)

// consumerIdle waits until a durable consumer has settled everything on its stream:
// the positive signal that the component processed every message published so far.
func consumerIdle(t *testing.T, b *bus.Bus, stream, consumer string) {
	t.Helper()
	testutil.Eventually(t, consumer+" caught up", func() bool { return bustest.Settled(b, stream, consumer) })
}

// Unchanged sweeps of an open case edit nothing in Slack (0 chat.update, 0 thread
// replies), and a person still learns when the account was last checked: the case
// message says its time is the check on record when it was rendered and where the
// latest is, `/rootwarden case` and the App Home give the latest sweep's exact time,
// and `/rootwarden status` says the last sweep checked every account.
func TestUnchangedSweepsEditNothingAndSlackSaysWhenLastChecked(t *testing.T) {
	const (
		channel = "C0STEADY1"
		secret  = "steady-signing-secret"
		token   = "xoxb-steady"
		member  = "200000000001"
		viewer  = "U0VIEWER"
	)
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clk := testutil.NewClock(t0)
	b := bustest.New(t)
	sl := slackfake.New(slackfake.WithChannel(channel, "root-keys"), slackfake.WithBotToken(token))
	apiURL := sl.Start()
	t.Cleanup(sl.Close)
	sl.AddUser(viewer, "vera")

	rem, err := remediator.New(remediator.Config{Now: clk.Now, TicketPollInterval: time.Hour, ExpiryScanInterval: time.Hour},
		nil, b, bus.Checker{NC: b.NC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := notifier.New(notifier.Config{Channel: channel, SigningSecret: secret, APIURL: apiURL, Approvers: []string{"U0APPROVER"},
		Now: clk.Now, TickEvery: time.Hour, PostRate: notifier.Rate{Every: time.Millisecond, Burst: 100},
		Tier3Rate: notifier.Rate{Every: time.Millisecond, Burst: 100}}, nil, b, slack.New(token, slack.OptionAPIURL(apiURL)))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, 10*time.Second, rem.Run)
	testutil.Run(t, 10*time.Second, n.Run)
	commands := httptest.NewServer(n.CommandsHandler())
	t.Cleanup(commands.Close)
	command := func(text string) string {
		t.Helper()
		status, body, err := slackfake.Deliver(context.Background(), commands.URL, secret,
			slackfake.SlashCommand(viewer, "vera", text, channel, ""))
		var m map[string]any
		if err != nil || status != 200 || json.Unmarshal(body, &m) != nil {
			t.Fatalf("/rootwarden %s: %d %s %v", text, status, body, err)
		}
		return fmt.Sprint(m["text"])
	}

	sweep := func(i int) {
		t.Helper()
		o := model.Observation{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("sweep-%d-%s", i, member), AccountID: member,
			AccountName: "member-1", OrgMember: true, Source: model.SourceSweep, ObservedAt: clk.Now(), RootKeysPresent: true,
			Keys: []model.KeyDetail{{Slot: 1, Active: true}}, SweepID: fmt.Sprintf("sweep-%d", i)}
		if _, err := b.PublishJSON(context.Background(), bus.FindingSubject(member), o.ID, o); err != nil {
			t.Fatal(err)
		}
		// What the detector keeps about the sweep: listed, and its job done (RW_SCAN empty).
		st, _ := json.Marshal(map[string]any{"id": o.SweepID, "started_at": clk.Now(), "done": true, "accounts": 1})
		if _, err := b.Sched.Put(context.Background(), "sweep", st); err != nil {
			t.Fatal(err)
		}
	}

	sweep(0)
	var msg slackfake.Message
	testutil.Eventually(t, "the case message", func() bool {
		msgs := sl.Messages(channel)
		if len(msgs) == 1 && msgs[0].Metadata != nil {
			msg = msgs[0]
			return true
		}
		return false
	})
	caseID := fmt.Sprint(msg.Metadata.EventPayload["case_id"])
	consumerIdle(t, b, bus.StreamCases, bus.ConsumerNotifierCases)
	updates := sl.Calls("chat.update")

	for i := 1; i <= 8; i++ { // two hours of unchanged sweeps
		clk.Add(15 * time.Minute)
		sweep(i)
	}
	consumerIdle(t, b, bus.StreamFindings, bus.ConsumerRemediatorFind) // every sweep applied
	consumerIdle(t, b, bus.StreamCases, bus.ConsumerNotifierCases)     // and anything it caused projected

	m, _ := sl.Message(channel, msg.TS)
	if got := sl.Calls("chat.update") - updates; got != 0 || len(m.Replies) != 0 || len(sl.Messages(channel)) != 1 {
		t.Fatalf("8 unchanged sweeps: %d chat.update, %d thread replies, %d messages; want 0, 0, 1",
			got, len(m.Replies), len(sl.Messages(channel)))
	}
	text := m.AllText()
	for _, want := range []string{"Check on record when this message was updated: 2026-12-01 09:00 UTC",
		"a check that changes nothing does not edit this message", "`/rootwarden case " + caseID + "`"} {
		if !strings.Contains(text, want) {
			t.Errorf("case message lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "last checked") {
		t.Errorf("case message still presents a stale time as the last check:\n%s", text)
	}

	// The latest check, exact, where the message points.
	if got, want := command("case "+caseID), "Last check: 2026-12-01 11:00 UTC (0m ago) by a sweep: root access keys present"; !strings.Contains(got, want) {
		t.Errorf("/rootwarden case answers\n%s\nwant it to contain %q", got, want)
	}
	if got, want := command("status"), "Last sweep: `sweep-8` started 2026-12-01 11:00 UTC (0m ago), 1 accounts listed; no check still to do"; !strings.Contains(got, want) {
		t.Errorf("/rootwarden status answers\n%s\nwant it to contain %q", got, want)
	}
	if err := n.HomeOpened(context.Background(), viewer); err != nil {
		t.Fatal(err)
	}
	h, ok := sl.Home(viewer)
	if !ok || !strings.Contains(h.AllText(), "Last check: 2026-12-01 11:00 UTC by a sweep: root access keys present") ||
		!strings.Contains(h.AllText(), "no check still to do") {
		t.Errorf("App Home does not show the last check and sweep:\n%s", h.AllText())
	}
}
