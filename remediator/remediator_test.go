package remediator

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

func publishFinding(t *testing.T, b *bus.Bus, o model.Observation) {
	t.Helper()
	if _, err := b.PublishJSON(context.Background(), bus.FindingSubject(o.AccountID), o.ID, o); err != nil {
		t.Fatal(err)
	}
}

func publishAction(t *testing.T, b *bus.Bus, a model.Action) {
	t.Helper()
	if _, err := b.PublishJSON(context.Background(), bus.ActionSubject(a.AccountID), a.ID, a); err != nil {
		t.Fatal(err)
	}
}

func TestFindingThroughApprovalToResolvedOverTheBus(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	resp := startResponder(t, b, clk)
	r := newRem(t, b, clk, nil)
	runRem(t, r)

	publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	rec := waitState(t, r, acct, model.StateOpen)
	if rec.ID != caseID(acct, 1) {
		t.Fatalf("case id %s", rec.ID)
	}
	publishAction(t, b, action(model.ActionApprove, acct, rec.ID))
	testutil.Eventually(t, "ticket saved", func() bool { c := getCase(t, r, acct); return c.Ticket != nil && len(c.Outbox) == 0 })
	rec = getCase(t, r, acct)
	if rec.State != model.StateTicketed || rec.Ticket.System != "builtin" || len(rec.Pending) != 0 {
		t.Fatalf("after approve: %s %+v pending %v", rec.State, rec.Ticket, rec.Pending)
	}
	tks := builtinTickets(t, b)
	if len(tks) != 1 || tks[0].CaseID != rec.ID || !strings.Contains(tks[0].Body, tracker.AWSGuideURL) {
		t.Fatalf("tickets: %+v", tks)
	}

	resp.set(acct, false)
	publishAction(t, b, action(model.ActionConfirmDeleted, acct, rec.ID))
	rec = waitState(t, r, acct, model.StateResolved)
	if resp.calls.Load() == 0 {
		t.Fatal("resolved without asking the detector")
	}
	testutil.Eventually(t, "ticket closed", func() bool { return builtinTickets(t, b)[0].State == "done" })

	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	want := []string{"opened", "ticketed", "updated", "verifying", "resolved"}
	if !slices.Equal(eventTypes(evs), want) {
		t.Fatalf("events %v, want %v", eventTypes(evs), want)
	}
	last := evs[len(evs)-1]
	if last.Reason != "no root access keys (seen by check)" || last.Case.State != model.StateResolved {
		t.Errorf("last event %+v", last)
	}
	if evs[1].Actor.ID != "U123" || evs[1].ActionID == "" {
		t.Errorf("approval event lacks its actor: %+v", evs[1].Actor)
	}
}

func TestTwoFindingsAtOnceMakeOneCase(t *testing.T) {
	b := bustest.New(t)
	b2 := bustest.Connect(t, b)
	clk := newClock()
	r1 := newRem(t, b, clk, nil)
	r2 := newRem(t, b2, clk, nil)
	ctx := ctxT(t)
	for round := 0; round < 5; round++ {
		account := "33333333333" + string(rune('0'+round))
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := r1
				if i%2 == 1 {
					r = r2
				}
				errs <- r.HandleFinding(ctx, observation(account, true, model.SourceSweep, clk.Now()))
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		rec := getCase(t, r1, account)
		if rec.ID != caseID(account, 1) || rec.Seq != 1 {
			t.Fatalf("case %s seq %d", rec.ID, rec.Seq)
		}
		evs := allEvents(t, b, account)
		if len(evs) != 1 || evs[0].Type != model.EventOpened {
			t.Fatalf("events %v, want exactly one opened", eventTypes(evs))
		}
	}
}

func TestCrashAfterTicketCreatedBeforeSaveOpensOneTicket(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	crashed := errors.New("simulated crash")
	r1 := newRem(t, b, clk, nil, func(c *Config) { c.afterTicketCreate = func(string) error { return crashed } })
	if err := r1.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r1.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err)
	}
	if err := r1.runWork(ctx, acct); !errors.Is(err, crashed) {
		t.Fatalf("work: %v, want the simulated crash", err)
	}
	if n := len(builtinTickets(t, b)); n != 1 {
		t.Fatalf("%d tickets after the crash, want 1", n)
	}
	if c := getCase(t, r1, acct); c.Ticket != nil || !slices.Contains(c.Pending, PendingOpenTicket) {
		t.Fatalf("the crash must leave the intent, not the ref: %+v %v", c.Ticket, c.Pending)
	}

	// A fresh remediator on the same bus resumes at start-up.
	r2 := newRem(t, bustest.Connect(t, b), clk, nil)
	runRem(t, r2)
	testutil.Eventually(t, "ticket ref saved", func() bool { c := getCase(t, r2, acct); return c.Ticket != nil && len(c.Pending) == 0 })
	tks := builtinTickets(t, b)
	if len(tks) != 1 || getCase(t, r2, acct).Ticket.ID != tks[0].ID {
		t.Fatalf("tickets %+v, case ticket %+v", tks, getCase(t, r2, acct).Ticket)
	}
	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	if !slices.Equal(eventTypes(evs), []string{"opened", "ticketed", "updated"}) {
		t.Fatalf("events %v", eventTypes(evs))
	}
}

func TestCrashAfterSaveBeforeAckMakesOneTransition(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	var failures atomic.Int32
	failures.Store(2) // the finding's save and the approval's save each "crash" once
	r := newRem(t, b, clk, nil, func(c *Config) {
		c.afterSave = func(string) error {
			if failures.Add(-1) >= 0 {
				return errors.New("simulated crash before ack")
			}
			return nil
		}
	})
	runRem(t, r)
	publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	waitState(t, r, acct, model.StateOpen)
	publishAction(t, b, action(model.ActionApprove, acct, caseID(acct, 1)))
	testutil.Eventually(t, "ticket", func() bool { c := getCase(t, r, acct); return c.Ticket != nil && len(c.Outbox) == 0 })
	if failures.Load() >= 0 {
		t.Fatalf("the crash hook did not fire twice")
	}
	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	if !slices.Equal(eventTypes(evs), []string{"opened", "ticketed", "updated"}) {
		t.Fatalf("events %v", eventTypes(evs))
	}
	if n := len(builtinTickets(t, b)); n != 1 {
		t.Fatalf("%d tickets", n)
	}
}

func TestOutboxIsFlushedAtStartup(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r1 := newRem(t, b, clk, nil, func(c *Config) { c.afterSave = func(string) error { return errors.New("crash") } })
	if err := r1.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err == nil {
		t.Fatal("want the simulated crash")
	}
	if n := len(allEvents(t, b, acct)); n != 0 {
		t.Fatalf("%d events before the restart", n)
	}
	r2 := newRem(t, b, clk, nil)
	runRem(t, r2)
	testutil.Eventually(t, "outbox flushed", func() bool { return len(getCase(t, r2, acct).Outbox) == 0 })
	if evs := allEvents(t, b, acct); len(evs) != 1 || evs[0].ID != caseID(acct, 1)+"/1" {
		t.Fatalf("events %v", eventTypes(evs))
	}
}

func TestDuplicateActionMakesOneTransition(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r := newRem(t, b, clk, nil)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	a := action(model.ActionAcceptRisk, acct, caseID(acct, 1))
	exp := clk.Now().Add(time.Hour)
	a.Reason, a.Expires = "migration in progress", &exp
	for i := 0; i < 3; i++ {
		if err := r.HandleAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(eventTypes(allEvents(t, b, acct)), []string{"opened", "risk_accepted"}) {
		t.Fatalf("events %v", eventTypes(allEvents(t, b, acct)))
	}
}

func TestStaleAndResolvedActionsAreRefused(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r := newRem(t, b, clk, nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())))
	clk.Add(time.Minute)
	must(r.HandleFinding(ctx, observation(acct, false, model.SourceSweep, clk.Now())))
	// Action on a resolved case.
	must(r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))))
	if c := getCase(t, r, acct); c.State != model.StateResolved || c.Ticket != nil || len(c.Pending) != 0 {
		t.Fatalf("action on resolved case changed it: %+v", c.Case)
	}
	clk.Add(time.Minute)
	must(r.HandleFinding(ctx, observation(acct, true, model.SourceEvent, clk.Now())))
	if c := getCase(t, r, acct); c.ID != CaseID(acct, 2, clk.Now()) || c.State != model.StateOpen {
		t.Fatalf("new finding after resolved: %s %s", c.ID, c.State)
	}
	// An action for the old case is stale.
	must(r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))))
	c := getCase(t, r, acct)
	if c.State != model.StateOpen || len(c.Pending) != 0 {
		t.Fatalf("stale action changed the case: %s %v", c.State, c.Pending)
	}
	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	got := eventTypes(evs)
	if !slices.Equal(got, []string{"opened", "resolved", "refused", "opened", "refused"}) {
		t.Fatalf("events %v", got)
	}
	if !strings.Contains(evs[2].Reason, "resolved") || !strings.Contains(evs[4].Reason, "stale") {
		t.Errorf("refusal reasons: %q / %q", evs[2].Reason, evs[4].Reason)
	}
}

func TestRiskAcceptanceReopensAtExpiryAcrossRestart(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r1 := newRem(t, b, clk, nil)
	if err := r1.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	a := action(model.ActionAcceptRisk, acct, caseID(acct, 1))
	exp := clk.Now().Add(48 * time.Hour)
	a.Reason, a.Expires = "vendor integration until Friday", &exp
	if err := r1.HandleAction(ctx, a); err != nil {
		t.Fatal(err)
	}
	r1.ScanNow(ctx)
	if c := getCase(t, r1, acct); c.State != model.StateRiskAccepted {
		t.Fatalf("reopened before expiry: %s", c.State)
	}
	// "Restart": a new remediator, time moves past the expiry.
	clk.Add(49 * time.Hour)
	r2 := newRem(t, b, clk, nil)
	r2.ScanNow(ctx)
	c := getCase(t, r2, acct)
	if c.State != model.StateOpen || c.Risk != nil {
		t.Fatalf("after expiry: %s %+v", c.State, c.Risk)
	}
	evs := allEvents(t, b, acct)
	last := evs[len(evs)-1]
	if last.Type != model.EventReopened || last.Reason != "risk acceptance expired" || last.Actor.Kind != model.ActorSystem {
		t.Fatalf("last event %+v", last)
	}
}

func TestTicketClosedVerifiesAndResolves(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	resp := startResponder(t, b, clk)
	tr := tracker.NewBuiltin(b)
	r := newRem(t, b, clk, tr)
	rec := approvedCase(t, r)

	r.PollTicketsNow(ctx) // not done yet: nothing happens
	if c := getCase(t, r, acct); c.State != model.StateTicketed {
		t.Fatalf("state %s", c.State)
	}
	resp.set(acct, false)
	if err := tr.MarkDone(ctx, rec.Ticket.ID, "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	r.PollTicketsNow(ctx)
	c := waitState(t, r, acct, model.StateResolved)
	if c.ResolvedAt == nil {
		t.Fatal("no resolved time")
	}
	evs := allEvents(t, b, acct)
	var verifying *model.CaseEvent
	for i := range evs {
		if evs[i].Type == model.EventVerifying {
			verifying = &evs[i]
		}
	}
	if verifying == nil || verifying.Actor.Kind != model.ActorTicket || verifying.Actor.ID != "bob@example.com" {
		t.Fatalf("verifying event %+v", verifying)
	}
	tk, _, _ := tr.Get(ctx, rec.Ticket.ID)
	if tk.State != "done" || len(tk.Comments) == 0 || !strings.Contains(tk.Comments[len(tk.Comments)-1].Text, "Resolved") {
		t.Fatalf("ticket after resolution: %+v", tk)
	}
}

func TestTicketClosedButKeysStillPresentReopensWithComment(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	resp := startResponder(t, b, clk)
	resp.set(acct, true)
	tr := tracker.NewBuiltin(b)
	r := newRem(t, b, clk, tr)
	rec := approvedCase(t, r)
	if err := tr.MarkDone(ctx, rec.Ticket.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	r.PollTicketsNow(ctx)
	testutil.Eventually(t, "ticket reopened", func() bool {
		tk, _, _ := tr.Get(ctx, rec.Ticket.ID)
		return tk.State == "open" && len(tk.Comments) > 0
	})
	c := getCase(t, r, acct)
	if c.State != model.StateTicketed || len(c.TicketOps) != 0 {
		t.Fatalf("case %s ops %v", c.State, c.TicketOps)
	}
	tk, _, _ := tr.Get(ctx, rec.Ticket.ID)
	if !strings.Contains(tk.Comments[0].Text, "Keys are still there") {
		t.Fatalf("comment %q", tk.Comments[0].Text)
	}
	evs := allEvents(t, b, acct)
	if got := eventTypes(evs); !slices.Equal(got[len(got)-2:], []string{"verifying", "still_present"}) {
		t.Fatalf("events %v", got)
	}
	if evs[len(evs)-1].Reason != "keys are still there" {
		t.Errorf("reason %q", evs[len(evs)-1].Reason)
	}
	// The reopened ticket is not done: the next poll does nothing.
	r.PollTicketsNow(ctx)
	if n := len(allEvents(t, b, acct)); n != len(evs) {
		t.Fatalf("a poll of an open ticket made events")
	}
}

// approvedCase opens a case and approves it; it returns once the ticket is linked.
func approvedCase(t *testing.T, r *Remediator) *record {
	t.Helper()
	ctx := ctxT(t)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, r.cfg.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	rec := getCase(t, r, acct)
	if rec.State != model.StateTicketed || rec.Ticket == nil {
		t.Fatalf("approved case: %s %+v", rec.State, rec.Ticket)
	}
	return rec
}

func TestErrorFindingIsVisibleOnTheCase(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r := newRem(t, b, clk, nil)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		clk.Add(time.Minute)
		o := observation(acct, false, model.SourceSweep, clk.Now())
		o.Error, o.ErrorCode = "AccessDenied: not authorized to perform iam:GetAccountSummary", "AccessDenied"
		if err := r.HandleFinding(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	c := getCase(t, r, acct)
	if c.State != model.StateOpen || !strings.Contains(c.LastError, "AccessDenied") {
		t.Fatalf("case %s last error %q", c.State, c.LastError)
	}
	if got := eventTypes(allEvents(t, b, acct)); !slices.Equal(got, []string{"opened", "check_failed"}) {
		t.Fatalf("events %v", got)
	}
}

func TestRecheckRefreshesAndResolves(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	resp := startResponder(t, b, clk)
	resp.set(acct, true)
	r := newRem(t, b, clk, nil)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionRecheck, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	if c := getCase(t, r, acct); c.State != model.StateOpen || len(c.Pending) != 0 {
		t.Fatalf("after re-check with keys: %s %v", c.State, c.Pending)
	}
	resp.set(acct, false)
	clk.Add(time.Second) // the last re-check was answered: the next one is heard at once
	if err := r.HandleAction(ctx, action(model.ActionRecheck, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	if c := getCase(t, r, acct); c.State != model.StateResolved {
		t.Fatalf("after re-check without keys: %s", c.State)
	}
}

func TestMalformedMessagesAreTermed(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	r := newRem(t, b, clk, nil)
	runRem(t, r)
	ctx := ctxT(t)
	if _, err := b.JS.Publish(ctx, bus.FindingSubject(acct), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JS.Publish(ctx, bus.ActionSubject(acct), []byte(`{"kind":"approve"}`)); err != nil {
		t.Fatal(err)
	}
	// A finding published under another account's subject is refused.
	wrong := observation("666666666666", true, model.SourceSweep, clk.Now())
	if _, err := b.PublishJSON(ctx, bus.FindingSubject("999999999999"), wrong.ID, wrong); err != nil {
		t.Fatal(err)
	}
	// An action for an account without a case is permanent too.
	publishAction(t, b, action(model.ActionApprove, "444444444444", caseID("444444444444", 1)))
	publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	waitState(t, r, acct, model.StateOpen)
	if getCase(t, r, "666666666666") != nil {
		t.Fatal("a finding under another account's subject opened a case")
	}
	for _, c := range []struct{ stream, name string }{
		{bus.StreamFindings, bus.ConsumerRemediatorFind}, {bus.StreamActions, bus.ConsumerRemediatorAction}} {
		testutil.Eventually(t, c.name+" settled", func() bool { return bustest.Settled(b, c.stream, c.name) })
	}
}

func TestNewRefusesAssumeRootWithoutDeleter(t *testing.T) {
	b := bustest.New(t)
	if _, err := New(Config{AssumeRoot: true}, nil, b, bus.Checker{NC: b.NC}, nil); err == nil {
		t.Fatal("AssumeRoot without a deleter must not start")
	}
}

func TestConcurrentActionsOneWinsTheOtherIsRefused(t *testing.T) {
	b := bustest.New(t)
	b2 := bustest.Connect(t, b)
	clk := newClock()
	ctx := ctxT(t)
	r1 := newRem(t, b, clk, nil)
	r2 := newRem(t, b2, clk, nil)
	for round := 0; round < 4; round++ {
		account := "55555555555" + string(rune('0'+round))
		if err := r1.HandleFinding(ctx, observation(account, true, model.SourceSweep, clk.Now())); err != nil {
			t.Fatal(err)
		}
		// Two approvers click at the same moment on two replicas.
		approve := action(model.ActionApprove, account, caseID(account, 1))
		accept := action(model.ActionApprove, account, caseID(account, 1))
		accept.Actor = model.Actor{Kind: model.ActorSlack, ID: "U999", Name: "bob"}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _ = r1.HandleAction(ctx, approve) }()
		go func() { defer wg.Done(); _ = r2.HandleAction(ctx, accept) }()
		wg.Wait()
		evs := allEvents(t, b, account)
		assertEventsUnique(t, evs)
		got := eventTypes(evs)
		if !slices.Equal(got, []string{"opened", "ticketed", "refused"}) {
			t.Fatalf("events %v, want opened, ticketed, refused", got)
		}
		if c := getCase(t, r1, account); string(c.State) != string(evs[1].To) || c.Seq != 3 {
			t.Fatalf("case %s seq %d, last transition to %s", c.State, c.Seq, evs[1].To)
		}
	}
}

func TestMetricsCountTransitions(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	reg := prometheus.NewRegistry()
	r := newRem(t, b, clk, nil, func(c *Config) { c.Metrics = reg })
	ctx := ctxT(t)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	r.ScanNow(ctx)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if m.Counter != nil {
				got[key] = m.Counter.GetValue()
			}
			if m.Gauge != nil {
				got[key] = m.Gauge.GetValue()
			}
		}
	}
	if got["rootwarden_remediator_transitions_total,to=open,type=opened"] != 1 || got["rootwarden_remediator_active_cases"] != 1 {
		t.Errorf("metrics %v", got)
	}
}

func TestVerificationWithoutDetectorIsRetriedByTheScan(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r := newRem(t, b, clk, nil)
	rec := approvedCase(t, r)
	if err := r.HandleAction(ctx, action(model.ActionConfirmDeleted, acct, rec.ID)); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct) // no detector answers
	c := getCase(t, r, acct)
	if c.State != model.StateVerifying || !strings.Contains(c.LastError, "no detector") {
		t.Fatalf("case %s last error %q", c.State, c.LastError)
	}
	resp := startResponder(t, b, clk)
	resp.set(acct, false)
	r.ScanNow(ctx) // work is not stale yet: the scan leaves it to its owner
	if getCase(t, r, acct).State != model.StateVerifying || resp.calls.Load() != 0 {
		t.Fatal("fresh work was taken over by the scan")
	}
	clk.Add(2 * time.Minute)
	r.ScanNow(ctx)
	if c := getCase(t, r, acct); c.State != model.StateResolved || c.LastError != "" {
		t.Fatalf("after the scan: %s %q", c.State, c.LastError)
	}
	got := eventTypes(allEvents(t, b, acct))
	if !slices.Equal(got, []string{"opened", "ticketed", "updated", "verifying", "check_failed", "resolved"}) {
		t.Fatalf("events %v", got)
	}
}
