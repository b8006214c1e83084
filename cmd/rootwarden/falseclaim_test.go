package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/notifier"
)

// A true "I deleted the keys" right after a false one is heard (issue 19 item 10): the
// person told "keys are still there" deletes them and presses again at once. It used
// to be refused for 30 s with "rootwarden is already checking case …" although the
// check had finished in milliseconds.
func TestTrueClaimRightAfterAFalseOneResolves(t *testing.T) {
	sim := scanSim(t, 1)
	member := "200000000001"
	sim.CreateRootKey(member, time.Now().AddDate(-1, 0, 0))
	e := startRun(t, nil)
	var id string
	e.waitFor("an open case", func() bool {
		v, ok := e.caseOf(member)
		id = v.ID
		return ok && v.State == model.StateOpen
	})
	e.click(id, "U0RUNAPPR", notifier.ActionIDApprove)
	e.waitFor("ticketed", func() bool { v, _ := e.caseOf(member); return v.State == model.StateTicketed && v.Ticket != nil })

	const person = "U0PERSON1"
	e.click(id, person, notifier.ActionIDConfirmDeleted) // false: the key is still there
	ref := e.message(id)
	e.waitFor(`the thread to say "keys are still there"`, func() bool {
		for _, r := range e.sl.Replies(ref.Channel, ref.TS) {
			if strings.Contains(r.Text, "still there") {
				return true
			}
		}
		return false
	})
	e.waitFor("ticketed again", func() bool { v, _ := e.caseOf(member); return v.State == model.StateTicketed })

	for _, k := range sim.RootKeys(member) {
		sim.DeleteRootKey(member, k.ID)
	}
	told := len(e.ephemeralsTo(person))
	e.click(id, person, notifier.ActionIDConfirmDeleted) // true now
	e.waitFor("the second claim's outcome", func() bool {
		v, _ := e.caseOf(member)
		return v.State == model.StateResolved || len(e.ephemeralsTo(person)) > told
	})
	if eph := e.ephemeralsTo(person); len(eph) > told {
		t.Fatalf("the true claim right after the false one was refused: %q", eph[told:])
	}
	if v, _ := e.caseOf(member); v.State != model.StateResolved {
		t.Fatalf("case %s is %s", id, v.State)
	}
}
