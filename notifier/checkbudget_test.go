package notifier_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/notifier"
)

// A check request is refused while a check of the case is owed or running (and the
// person is told so, with since when), and otherwise only past a small per-person
// budget (told when to retry); never by a cooldown that outlives the check (issue 19
// item 10).
func TestCheckRequestsAreThrottledByStateAndPerPerson(t *testing.T) {
	e := newEnv(t, nil)
	c := baseCase(account+"-1", e.clock.Now())
	c.State = model.StateTicketed
	asked := e.clock.Now().Add(-2 * time.Second)
	c.CheckRequestedAt = &asked
	c.Pending = []string{"recheck"}
	e.putCase(c)
	if status, _ := e.deliver(click(outsider, notifier.ActionIDConfirmDeleted, account, c.ID)); status != 200 {
		t.Fatal("I deleted while a re-check runs")
	}
	eph := e.fake.Ephemerals()
	if n := len(e.actions()); n != 0 || len(eph) != 1 || eph[0].User != outsider ||
		!strings.Contains(eph[0].Text, "rootwarden is already checking case "+c.ID+" with AWS (asked at "+asked.UTC().Format("15:04:05")) {
		t.Fatalf("while a re-check runs: %d actions, ephemerals %+v", n, eph)
	}

	// The check answered: requests go through at once, up to the person's budget.
	c.Pending = nil
	e.putCase(c)
	first := click(outsider, notifier.ActionIDRecheck, account, c.ID)
	for range 2 { // the second is Slack's retry of the same click: it costs nothing
		if status, _ := e.deliver(first); status != 200 {
			t.Fatal("first re-check")
		}
	}
	e.clock.Add(time.Second)
	for i := 1; i < notifier.DefaultCheckBudget; i++ {
		if status, _ := e.deliver(click(outsider, notifier.ActionIDRecheck, account, c.ID)); status != 200 {
			t.Fatalf("re-check %d", i+1)
		}
		e.clock.Add(time.Second)
	}
	if n := len(e.actions()); n != notifier.DefaultCheckBudget {
		t.Fatalf("%d re-checks by one person made %d actions", notifier.DefaultCheckBudget, n)
	}
	e.deliver(click(outsider, notifier.ActionIDConfirmDeleted, account, c.ID))
	eph = e.fake.Ephemerals()
	wait := int((notifier.DefaultCheckBudgetWindow - time.Duration(notifier.DefaultCheckBudget)*time.Second) / time.Second)
	if last := eph[len(eph)-1]; len(e.actions()) != notifier.DefaultCheckBudget || last.User != outsider ||
		!strings.Contains(last.Text, fmt.Sprintf("You have asked for %d checks in the last 5 minutes", notifier.DefaultCheckBudget)) ||
		!strings.Contains(last.Text, fmt.Sprintf("try again in %d s", wait)) {
		t.Fatalf("past the budget: %d actions, last ephemeral %+v, want try again in %d s", len(e.actions()), last, wait)
	}
	// Another person is not held by the first one's budget.
	e.deliver(click(approverUser, notifier.ActionIDRecheck, account, c.ID))
	if n := len(e.actions()); n != notifier.DefaultCheckBudget+1 {
		t.Fatalf("another person's re-check: %d actions", n)
	}
	// Once the first request leaves the window, the person may ask again.
	e.clock.Add(time.Duration(wait) * time.Second)
	e.deliver(click(outsider, notifier.ActionIDConfirmDeleted, account, c.ID))
	if n := len(e.actions()); n != notifier.DefaultCheckBudget+2 {
		t.Fatalf("after the window: %d actions", n)
	}
}
