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
	if n, _ := r.dueKeys(ctx, ">"); len(n) != 2 {
		t.Errorf("due index holds %d entries (%v), want the next ticket poll and the expiry's re-check", len(n), n)
	}
}
