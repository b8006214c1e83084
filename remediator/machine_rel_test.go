package remediator

import (
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// applyAll applies inputs in order and returns the case and every event.
func applyAll(t *testing.T, c *model.Case, ins ...Input) (*model.Case, []model.CaseEvent) {
	t.Helper()
	var evs []model.CaseEvent
	for _, in := range ins {
		d, err := Apply(c, in)
		if err != nil {
			t.Fatal(err)
		}
		if d.Changed() {
			c = d.Case
		}
		evs = append(evs, d.Events...)
	}
	return c, evs
}

func TestSameAWSFailureWithNewRequestIDsIsOneEvent(t *testing.T) {
	var ins []Input
	for i, rid := range []string{"919b3ccb-1f0e-4a53-9e8e-51c7a2b0c001", "6e0e10cc-2a1b-4c3d-8e9f-0a1b2c3d4e5f", "0b7c9d2e-3f4a-4b5c-9d6e-7f8a9b0c1d2e"} {
		o := observation(acct, false, model.SourceSweep, t0.Add(time.Duration(i)*time.Minute))
		o.ErrorCode = "AccessDenied"
		o.Error = "assume role in 222222222222: operation error STS: AssumeRole, https response error StatusCode: 403, RequestID: " +
			rid + ", api error AccessDenied: not authorized (request id " + rid + ")"
		ins = append(ins, Input{At: t0.Add(time.Duration(i) * time.Minute), Finding: &o})
	}
	c, evs := applyAll(t, caseIn(model.StateOpen), ins...)
	if len(evs) != 1 || evs[0].Type != model.EventCheckFailed {
		t.Fatalf("one failure in 3 sweeps made events %v", eventTypes(evs))
	}
	if strings.Contains(c.LastError, "919b3ccb") || !strings.Contains(c.LastError, "AccessDenied") {
		t.Fatalf("last error %q: want the failure without its request id", c.LastError)
	}
	// The check works again: one event that says so, then nothing.
	ok1 := observation(acct, true, model.SourceSweep, t0.Add(10*time.Minute))
	ok2 := observation(acct, true, model.SourceSweep, t0.Add(20*time.Minute))
	c, evs = applyAll(t, c, Input{At: t0.Add(10 * time.Minute), Finding: &ok1}, Input{At: t0.Add(20 * time.Minute), Finding: &ok2})
	if len(evs) != 1 || !strings.Contains(evs[0].Reason, "check works again") || c.LastError != "" {
		t.Fatalf("after the error cleared: events %v (%v), last error %q", eventTypes(evs), reasons(evs), c.LastError)
	}
}

func TestTicketErrorIsKeptApartFromChecks(t *testing.T) {
	c := caseIn(model.StateTicketed)
	c.Ticket = nil
	c.Pending = []string{PendingOpenTicket}
	var ins []Input
	for i := range 3 {
		at := t0.Add(time.Duration(i) * 15 * time.Minute)
		o := observation(acct, true, model.SourceSweep, at)
		ins = append(ins,
			Input{At: at, TicketError: "create jira issue: HTTP 400: issue type Task is not valid"},
			Input{At: at, Finding: &o})
	}
	c, evs := applyAll(t, c, ins...)
	if len(evs) != 1 {
		t.Fatalf("one persistent ticket error and 3 sweeps made events %v (%v)", eventTypes(evs), reasons(evs))
	}
	if !strings.Contains(c.TicketError, "could not open ticket") || c.LastError != "" {
		t.Fatalf("ticket error %q, check error %q", c.TicketError, c.LastError)
	}
}

func TestCaseIDsDifferAfterStateLoss(t *testing.T) {
	o1 := observation(acct, true, model.SourceSweep, t0)
	first, _ := applyAll(t, nil, Input{At: t0, Finding: &o1})
	// The state is lost; weeks later the account has keys again.
	later := t0.Add(30 * 24 * time.Hour)
	o2 := observation(acct, true, model.SourceSweep, later)
	second, _ := applyAll(t, nil, Input{At: later, Finding: &o2})
	if first.ID == second.ID {
		t.Fatalf("two cases of one account share id %s after state loss", first.ID)
	}
	if !strings.HasPrefix(second.ID, acct+"-1-") {
		t.Fatalf("id %s: want <account>-<n>-<opened>", second.ID)
	}
}

func TestRecheckAndIDeletedAreThrottledPerCase(t *testing.T) {
	c := caseIn(model.StateTicketed)
	at := t0
	var evs []model.CaseEvent
	for i := range 5 {
		a := action(model.ActionRecheck, acct, c.ID)
		in := Input{At: at.Add(time.Duration(i) * time.Second), Action: &a}
		var e []model.CaseEvent
		c, e = applyAll(t, c, in)
		evs = append(evs, e...)
	}
	if len(evs) != 2 || evs[0].Type != model.EventUpdated || evs[1].Type != model.EventRefused {
		t.Fatalf("5 re-check clicks within seconds made %d events %v, want 1 re-check and 1 refusal", len(evs), eventTypes(evs))
	}
	// The check answered; a re-check right after is honoured: no cooldown outlives
	// the check.
	o := observation(acct, true, model.SourceCheck, t0.Add(5*time.Second))
	c, _ = applyAll(t, c, Input{At: t0.Add(5 * time.Second), Check: &o})
	a := action(model.ActionRecheck, acct, c.ID)
	_, e := applyAll(t, c, Input{At: t0.Add(6 * time.Second), Action: &a})
	if len(e) != 1 || e[0].Type != model.EventUpdated {
		t.Fatalf("re-check right after the answer: events %v", eventTypes(e))
	}
}

// "I deleted the keys" is refused only while its verification runs: told "keys are
// still there", a person who then deletes them and presses again is heard at once
// (issue 19 item 10: it was refused for 30 s).
func TestIDeletedRightAfterAFalseClaimIsHeard(t *testing.T) {
	c := caseIn(model.StateTicketed)
	a := action(model.ActionConfirmDeleted, acct, c.ID)
	c, evs := applyAll(t, c, Input{At: t0, Action: &a})
	if c.State != model.StateVerifying || len(evs) != 1 {
		t.Fatalf("first claim: %s %v", c.State, eventTypes(evs))
	}
	again := action(model.ActionConfirmDeleted, acct, c.ID)
	c, evs = applyAll(t, c, Input{At: t0.Add(time.Second), Action: &again})
	if c.State != model.StateVerifying || len(evs) != 1 || evs[0].Type != model.EventRefused ||
		!strings.Contains(evs[0].Reason, "verifying the deletion") {
		t.Fatalf("a second claim while verifying: %s %v %v", c.State, eventTypes(evs), reasons(evs))
	}
	o := observation(acct, true, model.SourceCheck, t0.Add(2*time.Second))
	c, evs = applyAll(t, c, Input{At: t0.Add(2 * time.Second), Check: &o, Verify: true})
	if c.State != model.StateTicketed || !strings.Contains(strings.Join(reasons(evs), " "), "keys are still there") {
		t.Fatalf("the check found the keys: %s %v", c.State, reasons(evs))
	}
	third := action(model.ActionConfirmDeleted, acct, c.ID)
	c, evs = applyAll(t, c, Input{At: t0.Add(3 * time.Second), Action: &third})
	if c.State != model.StateVerifying || len(evs) != 1 || evs[0].Type != model.EventVerifying {
		t.Fatalf("a true claim a second after the false one: %s %v %v", c.State, eventTypes(evs), reasons(evs))
	}
}

func TestVerifyingIsTimeBoxedBackToTicketed(t *testing.T) {
	c := caseIn(model.StateVerifying) // claimed 10 minutes before t0
	o := observation(acct, false, model.SourceCheck, t0)
	o.ErrorCode, o.Error = "AccountNotActive", "account 222222222222 is SUSPENDED"
	c, _ = applyAll(t, c, Input{At: t0, CheckError: "AccountNotActive: account 222222222222 is SUSPENDED"})
	c, evs := applyAll(t, c, Input{At: t0.Add(DefaultVerifyTimeout), Expire: true})
	if c.State != model.StateTicketed || len(evs) != 1 || !strings.Contains(evs[0].Reason, "could not verify") ||
		!strings.Contains(evs[0].Reason, "SUSPENDED") {
		t.Fatalf("verifying past its time box: %s, events %v %v", c.State, eventTypes(evs), reasons(evs))
	}
}

func reasons(evs []model.CaseEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Reason)
	}
	return out
}

// A throttled click still leaves one trace in the audit log per throttle window: a
// refused event naming the clicker and why, never one per click.
func TestAThrottledCheckRequestIsRecordedOncePerWindow(t *testing.T) {
	c := caseIn(model.StateTicketed)
	a := action(model.ActionRecheck, acct, c.ID)
	c, _ = applyAll(t, c, Input{At: t0, Action: &a})
	var evs []model.CaseEvent
	for i, kind := range []model.ActionKind{model.ActionRecheck, model.ActionConfirmDeleted, model.ActionRecheck} {
		a := action(kind, acct, c.ID)
		var e []model.CaseEvent
		c, e = applyAll(t, c, Input{At: t0.Add(time.Duration(i+1) * time.Second), Action: &a})
		evs = append(evs, e...)
	}
	if len(evs) != 1 || evs[0].Type != model.EventRefused || evs[0].Actor.Name != "alice" ||
		!strings.Contains(evs[0].Reason, "a check is already running") || c.State != model.StateTicketed {
		t.Fatalf("3 throttled clicks while a check runs: %s, events %v %v, want one refused event saying why", c.State, eventTypes(evs), reasons(evs))
	}
	// The check answers; a click now is honoured, and a click while that second
	// check runs is refused once more (a new check, a new record).
	o := observation(acct, true, model.SourceCheck, t0.Add(5*time.Second))
	c, _ = applyAll(t, c, Input{At: t0.Add(5 * time.Second), Check: &o})
	a = action(model.ActionRecheck, acct, c.ID)
	if c, evs = applyAll(t, c, Input{At: t0.Add(6 * time.Second), Action: &a}); len(evs) != 1 || evs[0].Type != model.EventUpdated {
		t.Fatalf("a re-check after the answer: events %v %v", eventTypes(evs), reasons(evs))
	}
	for i := range 2 {
		a = action(model.ActionConfirmDeleted, acct, c.ID)
		var e []model.CaseEvent
		c, e = applyAll(t, c, Input{At: t0.Add(time.Duration(7+i) * time.Second), Action: &a})
		if want := 1 - i; len(e) != want {
			t.Fatalf("throttled click %d during the second check: events %v %v, want %d", i+1, eventTypes(e), reasons(e), want)
		}
	}
}
