package notifier_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/slackfake"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/notifier"
)

// What the person who clicked "I deleted the keys" waits for is the edit that shows
// the verification's outcome. These tests pace chat.update slowly (as Slack's Tier 3
// budget does under load) and look at the order in which messages change, not at
// durations.

func (e *env) messageOf(caseID string) (slackfake.Message, bool) {
	for _, m := range e.fake.Messages(channelID) {
		if m.Metadata != nil && m.Metadata.EventPayload["case_id"] == caseID {
			return m, true
		}
	}
	return slackfake.Message{}, false
}

// The resolved event is the system's (the detector verified), but a person asked for
// that verification and waits for it: its edit goes before the edits of other cases
// already waiting for Slack's budget.
func TestVerificationOutcomeIsNotQueuedBehindOtherEdits(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) {
		c.Tier3Rate = notifier.Rate{Every: 150 * time.Millisecond, Burst: 1}
		c.BurstThreshold = -1
	})
	e.run()
	x := baseCase(account+"-1", e.clock.Now())
	x.State, x.Ticket = model.StateTicketed, &model.TicketRef{System: "builtin", ID: "RW-1"}
	x.Severity = model.SeverityHigh // the others' too: no one is ahead by severity
	e.publish(x, model.EventOpened, "", model.System, "root access key found")
	var others []model.Case
	for i := range 8 {
		c := baseCase(fmt.Sprintf("3000000000%02d-1", i), e.clock.Now())
		c.AccountID = fmt.Sprintf("3000000000%02d", i)
		e.publish(c, model.EventOpened, "", model.System, "root access key found")
		others = append(others, c)
	}
	e.rendered(x.ID, 1)
	for _, c := range others {
		e.rendered(c.ID, 1)
	}

	// The click's own edit: verifying (a person's event), rendered before the backlog.
	x.State = model.StateVerifying
	e.publish(x, model.EventVerifying, model.StateTicketed, slackActor(outsider, "bob"), "I deleted the keys")
	e.rendered(x.ID, 2)
	// Eight other cases change (system events) and wait for chat.update tokens…
	for _, c := range others {
		c.Severity = model.SeverityHigh
		e.publish(c, model.EventUpdated, model.StateOpen, model.System, "details refreshed")
	}
	// …when AWS answers the verification.
	x.State = model.StateResolved
	now := e.clock.Now()
	x.ResolvedAt = &now
	e.publish(x, model.EventResolved, model.StateVerifying, model.System, "AWS reports no root access keys")

	testutil.Eventually(t, "the clicked case's message to show Resolved", func() bool {
		m, _ := e.messageOf(x.ID)
		return strings.Contains(m.AllText(), "Resolved — verified")
	})
	edited := 0
	for _, c := range others {
		if m, _ := e.messageOf(c.ID); m.Edits > 0 {
			edited++
		}
	}
	if edited > 4 {
		t.Fatalf("%d of the 8 other cases' edits went before the verified edit the clicker waits for, want it first", edited)
	}
}

// When the verification's outcome is known before the "verifying" edit got its
// chat.update token, the message goes straight to the outcome: one edit, not a stale
// state followed by a second wait for Slack's budget. The thread still tells both.
func TestSupersededStateIsNotShown(t *testing.T) {
	e := newEnv(t, func(c *notifier.Config) {
		c.Tier3Rate = notifier.Rate{Every: 400 * time.Millisecond, Burst: 1}
	})
	e.run()
	c := e.openCase()
	c.State, c.Ticket = model.StateTicketed, &model.TicketRef{System: "builtin", ID: "RW-1"}
	e.publish(c, model.EventTicketed, model.StateOpen, slackActor(approverUser, "alice"), "approved in Slack")
	e.rendered(c.ID, 2) // took the only token: the next edit waits
	c.State = model.StateVerifying
	e.publish(c, model.EventVerifying, model.StateTicketed, slackActor(outsider, "bob"), "I deleted the keys")
	c.State = model.StateResolved
	now := e.clock.Now()
	c.ResolvedAt = &now
	e.publish(c, model.EventResolved, model.StateVerifying, model.System, "AWS reports no root access keys")
	e.rendered(c.ID, 4)

	m := e.onlyMessage()
	if !strings.Contains(m.AllText(), "Resolved — verified") {
		t.Fatalf("message after resolved:\n%s", m.AllText())
	}
	if m.Edits != 2 {
		t.Errorf("chat.update calls = %d, want 2 (ticketed; then verifying and resolved in one)", m.Edits)
	}
	if len(m.Replies) != 3 || !strings.Contains(m.Replies[1].Text, "Checking with AWS") {
		t.Errorf("thread = %d replies, want ticketed, verifying (Checking with AWS…), resolved: %+v", len(m.Replies), m.Replies)
	}
}
