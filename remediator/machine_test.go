package remediator

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

func caseIn(state model.State) *model.Case {
	c := &model.Case{SchemaVersion: 1, ID: acct + "-1", Number: 1, AccountID: acct, AccountName: "prod", OrgMember: true,
		State: state, Severity: model.SeverityHigh, Keys: []model.KeyDetail{{Slot: 1, Active: true}}, FoundBy: model.SourceSweep,
		LastCheckedAt: t0.Add(-time.Hour), OpenedAt: t0.Add(-2 * time.Hour), UpdatedAt: t0.Add(-time.Hour), Seq: 3}
	switch state {
	case model.StateTicketed, model.StateVerifying:
		c.Ticket = &model.TicketRef{System: "builtin", ID: "RW-1"}
	case model.StateRiskAccepted:
		c.Risk = &model.RiskAcceptance{Reason: "legacy", Expires: t0.Add(time.Hour), By: model.System, At: t0.Add(-time.Hour)}
	case model.StateResolved:
		at := t0.Add(-time.Hour)
		c.ResolvedAt = &at
	}
	return c
}

func TestStateMachineTable(t *testing.T) {
	exp := t0.Add(24 * time.Hour)
	act := func(k model.ActionKind) func() Input {
		return func() Input {
			a := action(k, acct, acct+"-1")
			if k == model.ActionAcceptRisk {
				a.Reason, a.Expires = "legacy integration", &exp
			}
			return Input{At: t0, Action: &a}
		}
	}
	find := func(present bool, errText string) func() Input {
		return func() Input {
			o := observation(acct, present, model.SourceSweep, t0)
			o.Error = errText
			return Input{At: t0, Finding: &o}
		}
	}
	check := func(present bool) func() Input {
		return func() Input {
			o := observation(acct, present, model.SourceCheck, t0)
			return Input{At: t0, Check: &o, Verify: true}
		}
	}
	inputs := []struct {
		name string
		in   func() Input
		// expected outcome per state: a next state, "refused", "noop" (nothing stored),
		// "same" (stored, state unchanged), "new" (a new open case)
		want map[model.State]string
	}{
		// Unchanged: nothing is stored (steady state) until LastCheckedAt lags by checkedEvery.
		{"finding keys present", find(true, ""), map[model.State]string{
			"": "new", "open": "noop", "ticketed": "noop", "verifying": "noop", "resolved": "new", "risk_accepted": "noop"}},
		{"finding keys present, last check long ago", func() Input {
			o := observation(acct, true, model.SourceSweep, t0.Add(2*DefaultCheckedEvery))
			return Input{At: t0, Finding: &o}
		}, map[model.State]string{
			"": "new", "open": "same", "ticketed": "same", "verifying": "same", "resolved": "new", "risk_accepted": "same"}},
		{"finding keys absent", find(false, ""), map[model.State]string{
			"": "noop", "open": "resolved", "ticketed": "resolved", "verifying": "resolved", "resolved": "noop", "risk_accepted": "resolved"}},
		{"finding with only an error", find(false, "AccessDenied"), map[model.State]string{
			"": "noop", "open": "same", "ticketed": "same", "verifying": "same", "resolved": "noop", "risk_accepted": "same"}},
		{"approve", act(model.ActionApprove), map[model.State]string{
			"": "error", "open": "ticketed", "ticketed": "refused", "verifying": "refused", "resolved": "refused", "risk_accepted": "refused"}},
		{"accept_risk", act(model.ActionAcceptRisk), map[model.State]string{
			"": "error", "open": "risk_accepted", "ticketed": "risk_accepted", "verifying": "refused", "resolved": "refused", "risk_accepted": "refused"}},
		{"revoke_acceptance", act(model.ActionRevokeAccept), map[model.State]string{
			"": "error", "open": "refused", "ticketed": "refused", "verifying": "refused", "resolved": "refused", "risk_accepted": "open"}},
		{"confirm_deleted", act(model.ActionConfirmDeleted), map[model.State]string{
			"": "error", "open": "refused", "ticketed": "verifying", "verifying": "refused", "resolved": "refused", "risk_accepted": "refused"}},
		{"recheck", act(model.ActionRecheck), map[model.State]string{
			"": "error", "open": "same", "ticketed": "same", "verifying": "same", "resolved": "refused", "risk_accepted": "same"}},
		{"unknown action", act("launch_missiles"), map[model.State]string{
			"": "error", "open": "refused", "ticketed": "refused", "verifying": "refused", "resolved": "refused", "risk_accepted": "refused"}},
		{"verification says keys present", check(true), map[model.State]string{
			"": "new", "open": "same", "ticketed": "same", "verifying": "ticketed", "resolved": "new", "risk_accepted": "same"}},
		{"verification says no keys", check(false), map[model.State]string{
			"": "noop", "open": "resolved", "ticketed": "resolved", "verifying": "resolved", "resolved": "noop", "risk_accepted": "resolved"}},
		{"expiry scan after expiry", func() Input { return Input{At: t0.Add(2 * time.Hour), Expire: true} }, map[model.State]string{
			"": "noop", "open": "noop", "ticketed": "noop", "verifying": "noop", "resolved": "noop", "risk_accepted": "open"}},
		{"expiry scan before expiry", func() Input { return Input{At: t0, Expire: true} }, map[model.State]string{
			"": "noop", "open": "noop", "ticketed": "noop", "verifying": "noop", "resolved": "noop", "risk_accepted": "noop"}},
	}
	states := []model.State{"", model.StateOpen, model.StateTicketed, model.StateVerifying, model.StateResolved, model.StateRiskAccepted}
	for _, tc := range inputs {
		for _, st := range states {
			want := tc.want[st]
			name := fmt.Sprintf("%s on %s → %s", tc.name, orDash(string(st)), want)
			t.Run(name, func(t *testing.T) {
				var c *model.Case
				if st != "" {
					c = caseIn(st)
				}
				var before model.Case
				if c != nil {
					before = cloneCase(*c)
				}
				d, err := Apply(c, tc.in())
				if c != nil && mustJSON(t, *c) != mustJSON(t, before) {
					t.Fatalf("Apply mutated its input")
				}
				if want == "error" {
					if err == nil {
						t.Fatalf("want an error, got %+v", d)
					}
					return
				}
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				switch want {
				case "noop":
					if d.Changed() {
						t.Fatalf("want no change, got state %s events %v", d.Case.State, eventTypes(d.Events))
					}
					return
				case "refused":
					if !d.Changed() || d.Refused == "" || len(d.Events) != 1 || d.Events[0].Type != model.EventRefused {
						t.Fatalf("want one refused event, got %+v", d)
					}
					if d.Case.State != st || d.Case.Seq != c.Seq+1 || !slices.Equal(d.Case.Pending, c.Pending) {
						t.Fatalf("refusal changed the case: %+v", d.Case)
					}
					return
				}
				if !d.Changed() {
					t.Fatalf("want a change, got none")
				}
				switch want {
				case "new":
					if d.Case.State != model.StateOpen || d.Case.ID == "" || (c != nil && d.Case.ID == c.ID) {
						t.Fatalf("want a new open case, got %s %s", d.Case.ID, d.Case.State)
					}
					if d.Events[0].Type != model.EventOpened || d.Events[0].Seq != 1 {
						t.Fatalf("want opened event with seq 1, got %+v", d.Events[0])
					}
				case "same":
					if d.Case.State != st {
						t.Fatalf("state %s → %s, want unchanged", st, d.Case.State)
					}
				default:
					if string(d.Case.State) != want {
						t.Fatalf("state %s → %s, want %s", st, d.Case.State, want)
					}
					if len(d.Events) == 0 || d.Events[len(d.Events)-1].To != d.Case.State {
						t.Fatalf("no event for the transition: %v", eventTypes(d.Events))
					}
				}
				for i, ev := range d.Events {
					if ev.ID != EventID(ev.CaseID, ev.Seq) || ev.Case.Seq != ev.Seq || ev.At != tc.in().At {
						t.Errorf("event %d malformed: %+v", i, ev)
					}
				}
			})
		}
	}
}

func TestNewCaseAfterResolvedGetsNextNumber(t *testing.T) {
	o := observation(acct, true, model.SourceEvent, t0)
	d, err := Apply(caseIn(model.StateResolved), Input{At: t0, Finding: &o})
	if err != nil {
		t.Fatal(err)
	}
	if d.Case.ID != acct+"-2" || d.Case.Number != 2 || d.Case.Seq != 1 || d.Case.FoundBy != model.SourceEvent {
		t.Fatalf("got %s n=%d seq=%d by %s", d.Case.ID, d.Case.Number, d.Case.Seq, d.Case.FoundBy)
	}
	if d.Events[0].Reason != "root access keys found (seen by event)" {
		t.Errorf("reason %q", d.Events[0].Reason)
	}
}

func TestResolvedReasonNamesTheSource(t *testing.T) {
	for _, src := range []model.Source{model.SourceSweep, model.SourceEvent, model.SourceCheck} {
		o := observation(acct, false, src, t0)
		d, err := Apply(caseIn(model.StateTicketed), Input{At: t0, Finding: &o})
		if err != nil {
			t.Fatal(err)
		}
		want := "no root access keys (seen by " + string(src) + ")"
		if d.Events[0].Reason != want {
			t.Errorf("reason %q, want %q", d.Events[0].Reason, want)
		}
		if len(d.TicketOps) != 1 || d.TicketOps[0].Op != TicketClose {
			t.Errorf("resolving a ticketed case must close its ticket: %+v", d.TicketOps)
		}
	}
}

func TestStaleAndDuplicateActions(t *testing.T) {
	c := caseIn(model.StateOpen)
	c.ID, c.Number = acct+"-2", 2
	a := action(model.ActionApprove, acct, acct+"-1")
	d, err := Apply(c, Input{At: t0, Action: &a})
	if err != nil {
		t.Fatal(err)
	}
	if d.Case.State != model.StateOpen || !strings.Contains(d.Refused, "stale") || d.Events[0].ActionID != a.ID {
		t.Fatalf("stale action: state %s refused %q", d.Case.State, d.Refused)
	}
	// The same action delivered again: nothing at all.
	d2, err := Apply(d.Case, Input{At: t0, Action: &a})
	if err != nil || d2.Changed() {
		t.Fatalf("duplicate of a refused action changed the case: %v %+v", err, d2)
	}
	ok := action(model.ActionApprove, acct, c.ID)
	d3, _ := Apply(d.Case, Input{At: t0, Action: &ok})
	d4, _ := Apply(d3.Case, Input{At: t0, Action: &ok})
	if d3.Case.State != model.StateTicketed || d4.Changed() {
		t.Fatalf("duplicate approve: %s then changed=%v", d3.Case.State, d4.Changed())
	}
}

func TestActionIDsAreBounded(t *testing.T) {
	c := caseIn(model.StateOpen)
	for i := 0; i < 10; i++ {
		a := action(model.ActionRecheck, acct, c.ID)
		d, err := Apply(c, Input{At: t0, Action: &a, MaxActionIDs: 4})
		if err != nil {
			t.Fatal(err)
		}
		c = d.Case
	}
	if len(c.ActionIDs) != 4 {
		t.Fatalf("kept %d action ids, want 4", len(c.ActionIDs))
	}
}

func TestApprovePicksAssumeRootOnlyForMembers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		member     bool
		management bool
		assumeRoot bool
		want       string
	}{
		{"member with AssumeRoot on deletes through the API", true, false, true, PendingDeleteKeys},
		{"member with AssumeRoot off gets a ticket", true, false, false, PendingOpenTicket},
		{"management account always gets a ticket", true, true, true, PendingOpenTicket},
		{"standalone account gets a ticket", false, false, true, PendingOpenTicket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := caseIn(model.StateOpen)
			c.OrgMember, c.Management = tc.member, tc.management
			a := action(model.ActionApprove, acct, c.ID)
			d, err := Apply(c, Input{At: t0, Action: &a, AssumeRoot: tc.assumeRoot})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.Case.Pending, []string{tc.want}) {
				t.Fatalf("pending %v, want %s", d.Case.Pending, tc.want)
			}
		})
	}
}

func TestAcceptRiskNeedsReasonAndFutureExpiry(t *testing.T) {
	past := t0.Add(-time.Minute)
	for name, a := range map[string]model.Action{
		"no expiry":   {Reason: "x"},
		"past expiry": {Reason: "x", Expires: &past},
		"no reason":   {Expires: &past},
	} {
		t.Run(name, func(t *testing.T) {
			b := action(model.ActionAcceptRisk, acct, acct+"-1")
			b.Reason, b.Expires = a.Reason, a.Expires
			d, err := Apply(caseIn(model.StateOpen), Input{At: t0, Action: &b})
			if err != nil || d.Refused == "" || d.Case.State != model.StateOpen {
				t.Fatalf("want refusal: %v %+v", err, d)
			}
		})
	}
}

func TestErrorFindingIsRecordedOncePerText(t *testing.T) {
	c := caseIn(model.StateOpen)
	o := observation(acct, false, model.SourceSweep, t0)
	o.Error = "AccessDenied: not authorized"
	d, _ := Apply(c, Input{At: t0, Finding: &o})
	if d.Case.State != model.StateOpen || d.Case.LastError == "" || len(d.Events) != 1 || d.Events[0].Type != model.EventCheckFailed {
		t.Fatalf("first error: %+v", d)
	}
	o2 := o
	o2.ObservedAt = t0.Add(time.Minute)
	d2, _ := Apply(d.Case, Input{At: t0, Finding: &o2})
	if d2.Changed() && len(d2.Events) > 0 {
		t.Fatalf("same error again made events: %v", eventTypes(d2.Events))
	}
}

func TestKeyInUseRaisesSeverity(t *testing.T) {
	o := observation(acct, true, model.SourceEvent, t0)
	o.Event = &model.TrailEvent{EventName: "ListBuckets", KeyInUse: true, AccessKeyID: "AKIAEXAMPLE"}
	d, err := Apply(caseIn(model.StateTicketed), Input{At: t0, Finding: &o})
	if err != nil {
		t.Fatal(err)
	}
	if d.Case.Severity != model.SeverityCritical || len(d.Events) != 1 || !strings.Contains(d.Events[0].Reason, "severity raised") {
		t.Fatalf("got severity %s events %+v", d.Case.Severity, d.Events)
	}
}

func TestStaleFindingIsIgnored(t *testing.T) {
	o := observation(acct, false, model.SourceSweep, t0.Add(-2*time.Hour)) // before LastCheckedAt
	d, err := Apply(caseIn(model.StateOpen), Input{At: t0, Finding: &o})
	if err != nil || d.Changed() {
		t.Fatalf("an observation older than the case's last check changed it: %v %+v", err, d)
	}
}

func TestDeletionOutcome(t *testing.T) {
	c := caseIn(model.StateTicketed)
	c.Pending = []string{PendingDeleteKeys}
	d, _ := Apply(c, Input{At: t0, Deleted: &Deletion{KeyIDs: []string{"AKIA1"}}})
	if d.Case.State != model.StateVerifying || d.Events[0].Type != model.EventKeysDeleted || !slices.Equal(d.Case.DeletedKeyIDs, []string{"AKIA1"}) {
		t.Fatalf("success: %+v", d)
	}
	d, _ = Apply(c, Input{At: t0, Deleted: &Deletion{Err: "AccessDenied"}})
	if d.Case.State != model.StateTicketed || !slices.Equal(d.Case.Pending, []string{PendingOpenTicket}) ||
		!strings.Contains(d.Events[0].Reason, "AccessDenied") {
		t.Fatalf("failure must fall back to a ticket with the reason: %+v", d)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLateCheckAnswerDoesNotReopenAResolvedCase(t *testing.T) {
	// A re-check's answer (observed at t0-30m, keys present) arrives after a sweep,
	// observed at t0-10m, saw the keys gone and resolved the case.
	c := caseIn(model.StateResolved)
	c.LastCheckedAt = t0.Add(-10 * time.Minute)
	o := observation(acct, true, model.SourceCheck, t0.Add(-30*time.Minute))
	d, err := Apply(c, Input{At: t0, Check: &o})
	if err != nil {
		t.Fatal(err)
	}
	if d.Changed() && d.Case.ID != c.ID {
		t.Fatalf("a check older than the sweep that resolved the case opened %s (%v)", d.Case.ID, eventTypes(d.Events))
	}
	// A newer check that sees keys again does open a new case.
	o = observation(acct, true, model.SourceCheck, t0)
	if d, err := Apply(c, Input{At: t0, Check: &o}); err != nil || !d.Changed() || d.Case.ID != acct+"-2" {
		t.Fatalf("a current check with keys did not open a new case: %v %+v", err, d.Case)
	}
}

func TestObservationOUAndTagsReachTheCase(t *testing.T) {
	o := observation(acct, true, model.SourceSweep, t0)
	o.OUPath, o.Tags = "Root/Prod/Payments", map[string]string{"team": "payments", "owner": "pat@example.com"}
	d, err := Apply(nil, Input{At: t0, Finding: &o})
	if err != nil || d.Case == nil {
		t.Fatalf("open: %v %+v", err, d)
	}
	if d.Case.OUPath != "Root/Prod/Payments" || d.Case.Tags["owner"] != "pat@example.com" {
		t.Fatalf("new case lacks OU/tags: %q %v", d.Case.OUPath, d.Case.Tags)
	}
	// A later sweep that sees a new owner tag updates the case; one without tags keeps them.
	o2 := observation(acct, true, model.SourceSweep, t0)
	o2.OUPath, o2.Tags = "Root/Prod/Payments", map[string]string{"team": "payments", "owner": "sam@example.com"}
	d2, err := Apply(d.Case, Input{At: t0, Finding: &o2})
	if err != nil || d2.Case == nil || d2.Case.Tags["owner"] != "sam@example.com" {
		t.Fatalf("changed tag not stored: %v %+v", err, d2.Case)
	}
	o3 := observation(acct, true, model.SourceSweep, t0)
	d3, err := Apply(d2.Case, Input{At: t0, Finding: &o3})
	if err != nil {
		t.Fatal(err)
	}
	if d3.Case != nil && d3.Case.Tags["owner"] != "sam@example.com" {
		t.Fatalf("observation without tags dropped them: %v", d3.Case.Tags)
	}
}
