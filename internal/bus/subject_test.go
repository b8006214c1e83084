package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// CaseEvents reads one account's events in order, once each, of one case or all, and
// leaves no consumer on the stream; NewestObservedAt takes the newest working
// observation by its time, not by the order of publication.
func TestSubjectReadsLeaveNothingBehind(t *testing.T) {
	b := bustest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const a, other = "222222222222", "333333333333"
	pub := func(subject, id string, v any) {
		t.Helper()
		if _, err := b.PublishJSON(ctx, subject, id, v); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []string{"c1", "c2", "c1", "c2", "c1"} {
		ev := model.CaseEvent{ID: fmt.Sprintf("%s/%d", c, i), CaseID: c, Seq: i, AccountID: a}
		pub(bus.CaseSubject(a), ev.ID, ev)
		pub(bus.CaseSubject(other), "o"+ev.ID, model.CaseEvent{ID: "o" + ev.ID, CaseID: "o", AccountID: other})
	}
	// The same event stored twice (a publish retried after the duplicate window).
	pub(bus.CaseSubject(a), "", model.CaseEvent{ID: "c1/0", CaseID: "c1", Seq: 0, AccountID: a})
	all, err := b.CaseEvents(ctx, a, "")
	if err != nil || len(all) != 5 {
		t.Fatalf("all events: %v %v", all, err)
	}
	c1, err := b.CaseEvents(ctx, a, "c1")
	if err != nil || len(c1) != 3 || c1[0].ID != "c1/0" || c1[1].ID != "c1/2" || c1[2].ID != "c1/4" {
		t.Fatalf("case c1: %v %v", c1, err)
	}
	if none, err := b.CaseEvents(ctx, "444444444444", ""); err != nil || len(none) != 0 {
		t.Fatalf("an account without events: %v %v", none, err)
	}

	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i, o := range []model.Observation{
		{ID: "o1", AccountID: a, ObservedAt: t0.Add(16 * time.Minute), RootKeysPresent: true},
		{ID: "o2", AccountID: a, ObservedAt: t0.Add(15 * time.Minute)},                        // published late
		{ID: "o3", AccountID: a, ObservedAt: t0.Add(20 * time.Minute), Error: "AccessDenied"}, // a failed check says nothing
	} {
		pub(bus.FindingSubject(a), fmt.Sprint("f", i), o)
	}
	if at, err := b.NewestObservedAt(ctx, a); err != nil || !at.Equal(t0.Add(16*time.Minute)) {
		t.Fatalf("newest observation %v %v, want %v", at, err, t0.Add(16*time.Minute))
	}
	if at, err := b.NewestObservedAt(ctx, other); err != nil || !at.IsZero() {
		t.Fatalf("an account without observations: %v %v", at, err)
	}

	for _, name := range []string{bus.StreamCases, bus.StreamFindings} {
		s, err := b.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil || info.State.Consumers != 0 {
			t.Fatalf("%s: %d consumers after the reads (%v)", name, info.State.Consumers, err)
		}
	}
}

// Failures are grouped for people by what an operator has to fix.
func TestUncheckedReasons(t *testing.T) {
	for failure, want := range map[string]string{
		"AccessDenied: sts:AssumeRole: AccessDenied: User: arn:aws:iam::1:user/x is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::2:role/r": bus.ReasonNoRole,
		"AccessDenied: iam:GetAccountSummary: AccessDenied: ... with an explicit deny in a service control policy":                                                bus.ReasonSCP,
		"AccountNotActive: account 200000000003 is SUSPENDED":                                                                                                     bus.ReasonSuspended,
		"AccessDenied: iam:GetAccountSummary: AccessDenied: User: x is not authorized to perform: iam:GetAccountSummary because the account is suspended":         bus.ReasonSuspended,
		"AccessDenied: iam:GetAccountSummary: AccessDenied: no identity-based policy allows the iam:GetAccountSummary action":                                     bus.ReasonDenied,
		"Throttling: Rate exceeded":  bus.ReasonThrottled,
		"Timeout: deadline exceeded": bus.ReasonThrottled,
		"Error: connection refused":  bus.ReasonOtherError,
	} {
		if got := bus.UncheckedReason(failure); got != want {
			t.Errorf("%q → %q, want %q", failure, got, want)
		}
	}
	recs := map[string]bus.UncheckedRecord{"3": {Error: "service control policy"}, "1": {Error: "sts:AssumeRole"}, "2": {Error: "sts:AssumeRole"}}
	g := bus.ByReason(recs)
	if len(g) != 2 || g[0].Reason != bus.ReasonNoRole || fmt.Sprint(g[0].Accounts) != "[1 2]" || g[1].Reason != bus.ReasonSCP {
		t.Fatalf("groups %+v", g)
	}
	data, _ := json.Marshal(bus.UncheckedRecord{Failures: 1})
	if string(data) != `{"since":"0001-01-01T00:00:00Z","failures":1,"error":""}` {
		t.Errorf("a record without its last failure encodes as %s", data)
	}
}
