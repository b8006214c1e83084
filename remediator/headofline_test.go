package remediator

import (
	"context"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// hangingTracker is the built-in tracker, except that opening the ticket of one case
// hangs (a ticket system that stopped answering) until released.
type hangingTracker struct {
	*tracker.Builtin
	caseID  string
	release chan struct{}
}

func (h *hangingTracker) Open(ctx context.Context, c model.Case, link string) (model.TicketRef, error) {
	if c.ID == h.caseID {
		select {
		case <-h.release:
		case <-ctx.Done():
			return model.TicketRef{}, ctx.Err()
		}
	}
	return h.Builtin.Open(ctx, c, link)
}

func TestSlowTicketSystemForOneCaseDoesNotHoldUpOtherAccounts(t *testing.T) {
	const other = "333333333333"
	b := bustest.New(t)
	clk := newClock()
	startResponder(t, b, clk)
	tr := &hangingTracker{Builtin: tracker.NewBuiltin(b), caseID: caseID(acct, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(tr.release) })
	r := newRem(t, b, clk, tr)
	runRem(t, r)

	publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	publishFinding(t, b, observation(other, true, model.SourceSweep, clk.Now()))
	waitState(t, r, acct, model.StateOpen)
	waitState(t, r, other, model.StateOpen)

	publishAction(t, b, action(model.ActionApprove, acct, caseID(acct, 1))) // its ticket hangs
	waitState(t, r, acct, model.StateTicketed)
	time.Sleep(50 * time.Millisecond)

	// Another account's approval and a new finding must not wait for that ticket.
	publishAction(t, b, action(model.ActionApprove, other, caseID(other, 1)))
	const third = "444444444444"
	publishFinding(t, b, observation(third, true, model.SourceSweep, clk.Now()))
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		o, th := getCase(t, r, other), getCase(t, r, third)
		if o.State == model.StateTicketed && o.Ticket != nil && th != nil && th.State == model.StateOpen {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	o := getCase(t, r, other)
	t.Fatalf("account %s waited for another account's ticket: state %s ticket %+v; %s has case: %v",
		other, o.State, o.Ticket, third, getCase(t, r, third) != nil)
}
