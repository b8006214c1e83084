package remediator

// The round trips between a click and its verification (issue 12: click → resolved
// within one AWS round trip + 30 ms): what each saving keeps.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// Inputs for one account arriving together (a check's answer and the same
// observation as a finding, a redelivery) are decided one after the other: one
// transition, and none of them decides from a revision another just replaced.
func TestInputsForOneAccountAtOnceAreDecidedOneAfterTheOther(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	var logs syncBuf
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := New(Config{Now: clk.Now, CheckTimeout: 5 * time.Second}, log, b, bus.Checker{NC: b.NC}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	gone := observation(acct, false, model.SourceCheck, clk.Now())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := gone
			o.ID = gone.ID + "-" + string(rune('a'+i))
			if err := r.HandleFinding(ctx, o); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	if got := strings.Join(eventTypes(evs), ","); got != "opened,resolved" {
		t.Fatalf("events %s", got)
	}
	if n := strings.Count(logs.String(), "case changed underneath"); n > 0 {
		t.Fatalf("%d inputs decided from a replaced revision (compare-and-set lost in one instance)", n)
	}
}

// A transition that owes a kind of due work no earlier than the entry already in the
// index writes no entry (verifying → resolved within the minute: the verifying
// case's work entry serves the resolved case's ticket closing); an earlier one, or
// one whose entry a timer may already have listed, is written.
func TestDueEntryEarlyEnoughIsNotWrittenAgain(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	r := newRem(t, b, clk, nil)
	ctx := ctxT(t)
	writes := func() uint64 {
		t.Helper()
		s, err := b.JS.Stream(ctx, "KV_"+bus.BucketDue)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	now := clk.Now()
	rec := &record{Case: model.Case{ID: caseID(acct, 1), AccountID: acct, State: model.StateVerifying, UpdatedAt: now, VerifyingSince: &now}}
	if err := r.scheduleDue(ctx, rec, now, nil); err != nil {
		t.Fatal(err)
	}
	// One entry: the work's, a minute on (StaleWork), which the scan also ends the
	// time box from (30 min).
	if got := dueEntries(t, r); len(got) != 1 || got[0] != dueKey(slotOf(now.Add(r.cfg.StaleWork)), dueWork, acct) {
		t.Fatalf("verifying: entries %v", got)
	}
	workSlot, ok, err := r.pointer(ctx, dueWork, acct)
	if err != nil || !ok {
		t.Fatalf("work pointer: %v %v", ok, err)
	}
	before := writes()

	// Resolved 20 s later, its ticket still to close: work owed from a later minute.
	later := now.Add(20 * time.Second)
	resolved := &record{Case: model.Case{ID: rec.ID, AccountID: acct, State: model.StateResolved, UpdatedAt: later},
		TicketOps: []TicketOp{{ID: "ev-1", Op: TicketClose}}}
	if err := r.scheduleDue(ctx, resolved, later, nil); err != nil {
		t.Fatal(err)
	}
	if n := writes() - before; n != 0 {
		t.Fatalf("resolved within the minute wrote %d due entries; the verifying case's work entry fires first", n)
	}
	if p, _, _ := r.pointer(ctx, dueWork, acct); p != workSlot {
		t.Fatalf("work pointer moved %d → %d", workSlot, p)
	}

	// Owed earlier than the current entry: written, and the pointer names it.
	earlier := now.Add(-10 * time.Minute)
	early := &record{Case: model.Case{ID: rec.ID, AccountID: acct, State: model.StateResolved, UpdatedAt: earlier},
		TicketOps: []TicketOp{{ID: "ev-1", Op: TicketClose}}}
	if err := r.scheduleDue(ctx, early, now, nil); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := r.pointer(ctx, dueWork, acct); p != slotOf(now)+1 {
		t.Fatalf("earlier work: pointer %d, want %d", p, slotOf(now)+1)
	}

	// Once the current entry's minute has come (a timer may have listed it), a new
	// entry is written.
	past := now.Add(5 * time.Minute)
	before = writes()
	resolved.UpdatedAt = past
	if err := r.scheduleDue(ctx, resolved, past, nil); err != nil {
		t.Fatal(err)
	}
	if n := writes() - before; n != 2 {
		t.Fatalf("after the entry's minute: %d writes, want entry and pointer", n)
	}
	if p, _, _ := r.pointer(ctx, dueWork, acct); p != slotOf(past.Add(r.cfg.StaleWork)) {
		t.Fatalf("work pointer %d, want %d", p, slotOf(past.Add(r.cfg.StaleWork)))
	}
}

// A claim given up is free at once for another replica, and giving up never undoes
// a claim another replica took after this one's lapsed.
func TestClaimGivenUpIsFreeAtOnceAndALaterOwnersClaimStays(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r1 := newRem(t, b, clk, nil, func(c *Config) { c.Instance, c.LeaseTTL = "r1", time.Hour })
	r2 := newRem(t, b, clk, nil, func(c *Config) { c.Instance, c.LeaseTTL = "r2", time.Hour })
	owner := func() (string, jetstream.KeyValueOp) {
		t.Helper()
		e, err := b.Sched.Get(ctx, leaseKey(acct))
		if err != nil {
			t.Fatal(err)
		}
		var l lease
		_ = json.Unmarshal(e.Value(), &l)
		return l.Owner, e.Operation()
	}

	ok, rev, err := r1.claim(ctx, acct)
	if err != nil || !ok {
		t.Fatalf("r1 claim: %v %v", ok, err)
	}
	if ok, _, _ := r2.claim(ctx, acct); ok {
		t.Fatal("r2 claimed work r1 holds")
	}
	r1.release(ctx, acct, rev)
	if o, op := owner(); o != "" || op != jetstream.KeyValuePut {
		t.Fatalf("given up: owner %q, operation %s (want a free claim, not a delete marker)", o, op)
	}
	ok, rev2, err := r2.claim(ctx, acct)
	if err != nil || !ok {
		t.Fatalf("r2 claim after r1 gave up: %v %v", ok, err)
	}

	// r2's claim lapsed (it died); r1 takes over, then r2's late release comes.
	data, _ := json.Marshal(lease{Owner: "r2", Until: time.Now().Add(-time.Second)})
	if _, err := b.Sched.Update(ctx, leaseKey(acct), data, rev2); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := r1.claim(ctx, acct); err != nil || !ok {
		t.Fatalf("r1 claim of a lapsed claim: %v %v", ok, err)
	}
	r2.release(context.Background(), acct, rev2)
	if o, _ := owner(); o != "r1" {
		t.Fatalf("after r2's late release the claim is %q's, want r1's", o)
	}

	// r1 renewed, but the answer was lost: its release at the revision it knows
	// still gives the claim up.
	e, err := b.Sched.Get(ctx, leaseKey(acct))
	if err != nil {
		t.Fatal(err)
	}
	known := e.Revision()
	data, _ = json.Marshal(lease{Owner: "r1", Until: time.Now().Add(time.Hour)})
	if _, err := b.Sched.Update(ctx, leaseKey(acct), data, known); err != nil {
		t.Fatal(err)
	}
	r1.release(ctx, acct, known)
	if o, _ := owner(); o != "" {
		t.Fatalf("r1's release after a renewal it did not hear of left the claim %q's", o)
	}
}

// Entries and pointers are put side by side: a writer stopped after a pointer and
// before its entry leaves a pointer naming nothing. The entry it would have
// superseded still fires, and the work it hints at is found.
func TestPointerWithoutItsEntrySupersedesNothing(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r := newRem(t, b, clk, nil)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err) // owes opening a ticket: a work entry a minute on
	}
	if _, _, err := r.dueRecords(ctx, true, dueExpiry, dueWork); err != nil { // the scan's start-up pass
		t.Fatal(err)
	}
	slot, ok, err := r.pointer(ctx, dueWork, acct)
	if err != nil || !ok {
		t.Fatalf("work pointer: %v %v", ok, err)
	}
	// The next write's pointer landed (three minutes on); its entry did not.
	if _, err := b.Due.Put(ctx, pointerKey(dueWork, acct), []byte(fmt.Sprint(slot+3))); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute) // the first entry is due, the pointer's is not
	recs, full, err := r.dueRecords(ctx, false, dueExpiry, dueWork)
	if err != nil || full {
		t.Fatalf("due records: full %v err %v", full, err)
	}
	if len(recs) != 1 || recs[0].AccountID != acct {
		t.Fatalf("the due work entry was dropped as superseded by an entry that is not there: %d records", len(recs))
	}
}

// The work's first read serves both: events a crash left in the outbox go out (once),
// and the step the case owes runs.
func TestWorkPublishesLeftoverEventsAndRunsTheStep(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	var crash atomic.Bool
	r := newRem(t, b, clk, nil, func(c *Config) {
		c.afterSave = func(string) error {
			if crash.Load() {
				return errors.New("simulated crash after the save")
			}
			return nil
		}
	})
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	crash.Store(true)
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))); err == nil {
		t.Fatal("want the simulated crash")
	}
	crash.Store(false)
	if rec := getCase(t, r, acct); len(rec.Outbox) != 1 || len(rec.Pending) != 1 {
		t.Fatalf("after the crash: outbox %d, pending %v", len(rec.Outbox), rec.Pending)
	}
	r.work(ctx, acct)
	rec := getCase(t, r, acct)
	if rec.State != model.StateTicketed || rec.Ticket == nil || len(rec.Outbox) != 0 {
		t.Fatalf("after the work: %s ticket %+v outbox %d", rec.State, rec.Ticket, len(rec.Outbox))
	}
	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	if got := strings.Join(eventTypes(evs), ","); got != "opened,ticketed,updated" {
		t.Fatalf("events %s", got)
	}
}

// The check "I deleted the keys" asks for goes out at once, not behind the account's
// work claim: here another replica holds the claim the whole time (it is, say,
// commenting on the account's ticket), and the case is still verified and resolved.
// What must run once (closing the ticket) waits for the claim, and runs once it is
// free; the account is checked once.
func TestVerificationDoesNotWaitForTheWorkClaim(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	resp := startResponder(t, b, clk)
	r := newRem(t, b, clk, nil, func(c *Config) { c.Instance, c.LeaseTTL = "r1", 900*time.Millisecond })
	runRem(t, r)
	ctx := ctxT(t)
	resp.set(acct, true)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	for deadline := time.Now().Add(10 * time.Second); getCase(t, r, acct).Ticket == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no ticket opened")
		}
	}

	// Another replica takes the account's claim and keeps it.
	held, _ := json.Marshal(lease{Owner: "r2", Until: time.Now().Add(time.Hour)})
	if _, err := b.Sched.Put(ctx, leaseKey(acct), held); err != nil {
		t.Fatal(err)
	}
	resp.set(acct, false)
	checks := resp.calls.Load()
	a := action(model.ActionConfirmDeleted, acct, caseID(acct, 1))
	if _, err := b.PublishJSON(ctx, bus.ActionSubject(acct), a.ID, a); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, acct, model.StateResolved)
	if ts := builtinTickets(t, b); len(ts) != 1 || ts[0].State != "open" {
		t.Fatalf("tickets while another replica holds the claim: %+v (want the one ticket, still open)", ts)
	}

	// The claim is given up: the ticket is closed, by this replica, once.
	if _, err := b.Sched.Put(ctx, leaseKey(acct), released); err != nil {
		t.Fatal(err)
	}
	waitOneTicketDone(t, b)
	if n := resp.calls.Load() - checks; n != 1 {
		t.Fatalf("the verification checked the account %d times, want 1", n)
	}
	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	if got := strings.Join(eventTypes(evs), ","); !strings.HasSuffix(got, "verifying,resolved") {
		t.Fatalf("events %s", got)
	}
}

// A verifying case's time box ends on time through the due-time index although it has
// no entry of its own: the work entry is due at the earlier of the two times, here the
// timeout (StaleWork longer than VerifyTimeout), and the scan it fires ends verifying.
func TestVerifyingTimeBoxEndsFromTheWorkEntry(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	chk := &failingChecker{}
	r, err := New(Config{Now: clk.Now, StaleWork: time.Hour, VerifyTimeout: 10 * time.Minute, ExpiryScanInterval: time.Hour}, nil, b, chk, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	rec := approvedCase(t, r)
	r.ScanNow(ctx) // the first pass reads every case; later ones only what the index says is due
	if err := r.HandleAction(ctx, action(model.ActionConfirmDeleted, acct, rec.ID)); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct) // the check fails: still verifying
	if c := getCase(t, r, acct); c.State != model.StateVerifying {
		t.Fatalf("state %s", c.State)
	}
	if got := dueEntries(t, r); !slices.Contains(got, dueKey(slotOf(clk.Now().Add(10*time.Minute)), dueWork, acct)) {
		t.Fatalf("entries %v: want the work entry at the time box's end", got)
	}
	clk.Add(10*time.Minute + time.Minute)
	r.ScanNow(ctx)
	if c := getCase(t, r, acct); c.State != model.StateTicketed {
		t.Fatalf("state %s after the time box: want ticketed again", c.State)
	}
}

// hangingChecker answers no check: each waits until its context ends.
type hangingChecker struct{ asked chan string }

func (h hangingChecker) Check(ctx context.Context, account, _ string) (model.Observation, error) {
	h.asked <- account
	<-ctx.Done()
	return model.Observation{}, ctx.Err()
}

// The process stops while the check a click asked for is in flight (outside the
// work, on its own goroutine): the restarted remediator finds the case verifying,
// checks once more, resolves it once and closes its ticket once.
func TestStoppedDuringAClicksCheckResolvesOnceAfterTheRestart(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	hang := hangingChecker{asked: make(chan string, 4)}
	r1, err := New(Config{Now: clk.Now, Instance: "r1", TicketPollInterval: time.Hour, ExpiryScanInterval: time.Hour,
		CheckTimeout: time.Minute}, nil, b, hang, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := approvedCase(t, r1)
	stop := runUntilStopped(t, r1)
	publishAction(t, b, action(model.ActionConfirmDeleted, acct, rec.ID))
	select {
	case <-hang.asked:
	case <-ctx.Done():
		t.Fatal("the click's check was not asked for")
	}
	if c := getCase(t, r1, acct); c.State != model.StateVerifying {
		t.Fatalf("state %s while the check is in flight", c.State)
	}
	stop()

	resp := startResponder(t, b, clk)
	resp.set(acct, false)
	r2 := newRem(t, b, clk, nil, func(c *Config) { c.Instance = "r2" })
	runRem(t, r2)
	waitState(t, r2, acct, model.StateResolved)
	waitOneTicketDone(t, b)
	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	count := map[string]int{}
	for _, ev := range evs {
		count[string(ev.Type)]++
	}
	if count["verifying"] != 1 || count["resolved"] != 1 {
		t.Fatalf("events %v: want one verifying and one resolved", eventTypes(evs))
	}
	if n := resp.calls.Load(); n != 1 {
		t.Fatalf("the restarted remediator checked %d times, want 1", n)
	}
}

// "I deleted the keys" clicked while the case's ticket is still being created: the
// check waits for the ticket (the work runs the steps in order), so that the case is
// never resolved with a ticket in the tracker it does not know of. Here the process
// dies right after the tracker created the ticket; the restart finds the ticket by
// its label, links it, verifies, resolves the case and closes that one ticket.
func TestClickWhileTheTicketIsBeingOpenedWaitsForIt(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	resp := startResponder(t, b, clk)
	resp.set(acct, false)
	created, crash := make(chan struct{}), make(chan struct{})
	r1 := newRem(t, b, clk, nil, func(c *Config) {
		c.Instance = "r1"
		c.afterTicketCreate = func(string) error {
			close(created)
			<-crash
			return errors.New("simulated crash after the ticket was created")
		}
	})
	if err := r1.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	stop := runUntilStopped(t, r1)
	publishAction(t, b, action(model.ActionApprove, acct, caseID(acct, 1)))
	<-created
	publishAction(t, b, action(model.ActionConfirmDeleted, acct, caseID(acct, 1)))
	waitState(t, r1, acct, model.StateVerifying)
	time.Sleep(200 * time.Millisecond) // a check started now would have answered
	if n := resp.calls.Load(); n != 0 {
		t.Fatalf("the account was checked %d times while its ticket was being created", n)
	}
	close(crash)
	stop()

	r2 := newRem(t, b, clk, nil, func(c *Config) { c.Instance = "r2" })
	runRem(t, r2)
	waitState(t, r2, acct, model.StateResolved)
	waitOneTicketDone(t, b)
	if c := getCase(t, r2, acct); c.Ticket == nil {
		t.Fatal("the resolved case does not know its ticket")
	}
}

// waitOneTicketDone waits until the built-in tracker holds exactly one ticket, done.
func waitOneTicketDone(t *testing.T, b *bus.Bus) {
	t.Helper()
	testutil.Eventually(t, "the one ticket done", func() bool {
		ts := builtinTickets(t, b)
		return len(ts) == 1 && ts[0].State == "done"
	})
}
