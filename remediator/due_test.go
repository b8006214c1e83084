package remediator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// countingTracker counts ticket status reads.
type countingTracker struct {
	model.Tracker
	status map[string]int
}

func (c *countingTracker) Status(ctx context.Context, ref model.TicketRef) (model.TicketStatus, error) {
	c.status[ref.ID]++
	return c.Tracker.Status(ctx, ref)
}

// The periodic scan and ticket poll read what is due, not every case: with 40 open
// cases owing nothing, one risk acceptance and one ticket, idle passes read no case,
// and each timer reads only its case when it comes due.
func TestTimersReadOnlyWhatIsDue(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	tr := &countingTracker{Tracker: tracker.NewBuiltin(b), status: map[string]int{}}
	r := newRem(t, b, clk, tr, func(c *Config) {
		c.ExpiryScanInterval, c.TicketPollInterval, c.StaleWork = time.Minute, 10*time.Minute, time.Minute
	})
	for i := 0; i < 40; i++ {
		if err := r.HandleFinding(ctx, observation(fmt.Sprintf("4000000000%02d", i), true, model.SourceSweep, clk.Now())); err != nil {
			t.Fatal(err)
		}
	}
	risky := "400000000001"
	exp := clk.Now().Add(30 * time.Minute)
	a := action(model.ActionAcceptRisk, risky, risky+"-1")
	a.Reason, a.Expires = "legacy integration", &exp
	if err := r.HandleAction(ctx, a); err != nil {
		t.Fatal(err)
	}
	ticketed := approvedCase(t, r) // account acct, ticket opened
	r.scan(ctx, true)              // start-up: every case, once
	r.pollTickets(ctx)             // first poll: every ticket, once
	polls := tr.status[ticketed.Ticket.ID]

	pass := func() {
		clk.Add(time.Minute)
		r.scan(ctx, false)
		r.pollTickets(ctx)
	}
	// The first minutes fire the hints the approval left (its owed ticket, done since):
	// one read each, then nothing.
	pass()
	pass()
	kv := bustest.CountKV(t, b, bus.BucketCases)
	for i := 0; i < 5; i++ { // 5 idle minutes
		pass()
	}
	if kv.Reads() != 0 || kv.Listings() != 0 {
		t.Errorf("5 idle minutes read %d cases and listed the bucket %d times, want 0 and 0", kv.Reads(), kv.Listings())
	}
	if n := tr.status[ticketed.Ticket.ID]; n != polls {
		t.Errorf("ticket read %d times before its poll was due", n-polls)
	}

	for i := 0; i < 3; i++ { // minute 10: the ticket poll is due
		pass()
	}
	if n := tr.status[ticketed.Ticket.ID]; n != polls+1 {
		t.Errorf("ticket read %d times by its due poll, want 1", n-polls)
	}
	before := kv.Reads()
	for i := 0; i < 20; i++ { // minute 30: the risk acceptance expires
		pass()
	}
	if c := getCase(t, r, risky); c.State != model.StateOpen {
		t.Fatalf("risk acceptance not reopened at expiry: %s", c.State)
	}
	// 20 minutes: 2 ticket polls and 1 expiry (with its re-check a minute later),
	// each one or two reads; 40 cases at one read per pass would be 800.
	if got := kv.Reads() - before; got > 12 || kv.Listings() != 0 {
		t.Errorf("20 minutes with 3 things due read %d cases and listed %d times, want ≤ 12 and 0", got, kv.Listings())
	}
	if n := dueEntries(t, r); len(n) != 2 {
		t.Errorf("due index holds %d entries (%v), want the next ticket poll and the expiry's re-check", len(n), n)
	}
}

// dueEntries lists the index's entries (not its pointers).
func dueEntries(t *testing.T, r *Remediator) []string {
	t.Helper()
	keys, err := r.dueKeys(context.Background(), ">")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if _, _, _, ok := parseDueKey(k); ok {
			out = append(out, k)
		}
	}
	return out
}

// Each transition of a ticketed case schedules its next poll; the polls do not
// multiply: one ticket read per interval however many transitions came before.
func TestTicketPollsDoNotMultiplyWithTransitions(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	startResponder(t, b, clk).set(acct, true) // the keys stay: the case stays ticketed
	tr := &countingTracker{Tracker: tracker.NewBuiltin(b), status: map[string]int{}}
	r := newRem(t, b, clk, tr, func(c *Config) {
		c.ExpiryScanInterval, c.TicketPollInterval, c.StaleWork = time.Minute, 10*time.Minute, time.Minute
	})
	rec := approvedCase(t, r)
	r.pollTickets(ctx)       // the first pass reads every case
	for i := 0; i < 4; i++ { // re-checks 3 minutes apart: 4 transitions, 4 schedules
		clk.Add(3 * time.Minute)
		if err := r.HandleAction(ctx, action(model.ActionRecheck, acct, rec.ID)); err != nil {
			t.Fatal(err)
		}
		r.work(ctx, acct)
		r.pollTickets(ctx)
	}
	polls := tr.status[rec.Ticket.ID]
	r.scan(ctx, true)
	for i := 0; i < 30; i++ { // 30 minutes: 3 polls due
		clk.Add(time.Minute)
		r.scan(ctx, false)
		r.pollTickets(ctx)
	}
	if n := tr.status[rec.Ticket.ID] - polls; n != 3 {
		t.Errorf("30 minutes at a 10-minute poll read the ticket %d times, want 3", n)
	}
	if c := getCase(t, r, acct); c.State != model.StateTicketed {
		t.Fatalf("case %s, want ticketed", c.State)
	}
	if n := dueEntries(t, r); len(n) != 1 {
		t.Errorf("due index holds %v, want the next poll only", n)
	}
}
