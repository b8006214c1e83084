package remediator

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// hangingTracker is the built-in tracker, except that opening the ticket of one case
// hangs (a ticket system that stopped answering) until released.
type hangingTracker struct {
	*tracker.Builtin
	caseID  string
	release chan struct{}
	entered chan struct{} // closed when the hanging call has begun
	once    sync.Once
}

func (h *hangingTracker) Open(ctx context.Context, c model.Case, link string) (model.TicketRef, error) {
	if c.ID == h.caseID {
		h.once.Do(func() { close(h.entered) })
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
	tr := &hangingTracker{Builtin: tracker.NewBuiltin(b), caseID: acct + "-1", release: make(chan struct{}),
		entered: make(chan struct{})}
	t.Cleanup(func() { close(tr.release) })
	r := newRem(t, b, clk, tr)
	runRem(t, r)

	publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	publishFinding(t, b, observation(other, true, model.SourceSweep, clk.Now()))
	waitState(t, r, acct, model.StateOpen)
	waitState(t, r, other, model.StateOpen)

	publishAction(t, b, action(model.ActionApprove, acct, acct+"-1")) // its ticket hangs
	waitState(t, r, acct, model.StateTicketed)
	select { // the ticket system is now hanging on that case, and stays so
	case <-tr.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the ticket of the first case was never asked for")
	}

	// Another account's approval and a new finding must not wait for that ticket: the
	// hang lasts until the test ends, so any wait for it would never end.
	publishAction(t, b, action(model.ActionApprove, other, other+"-1"))
	const third = "444444444444"
	publishFinding(t, b, observation(third, true, model.SourceSweep, clk.Now()))
	testutil.EventuallyWithin(t, 30*time.Second, "the other accounts served while one ticket hangs", func() bool {
		o, th := getCase(t, r, other), getCase(t, r, third)
		return o.State == model.StateTicketed && o.Ticket != nil && th != nil && th.State == model.StateOpen
	})
}
