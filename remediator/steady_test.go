package remediator

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// findingsSettled waits until the remediator has acked every published finding: its
// ack floor has reached the stream's last message (NumPending alone can read 0 for a
// moment before the consumer counts a message just stored: a flake under load).
func findingsSettled(t *testing.T, b *bus.Bus) {
	t.Helper()
	testutil.Eventually(t, "findings consumed", func() bool {
		return bustest.Settled(b, bus.StreamFindings, bus.ConsumerRemediatorFind)
	})
}

// A sweep that sees an open case exactly as it is writes nothing and says nothing:
// 20 unchanged sweeps after the first leave the record and the audit log as they were.
func TestUnchangedSweepsWriteNothing(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	startResponder(t, b, clk)
	// The first sweep opens the case. The work an opening hands to the pool reads
	// the case after the finding is acked; stopping this instance (Run returns once
	// that work is done) keeps those reads out of the count.
	first := newRem(t, b, clk, nil)
	stop := runUntilStopped(t, first)
	publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	waitState(t, first, acct, model.StateOpen)
	findingsSettled(t, b)
	stop()
	r := newRem(t, b, clk, nil)
	runRem(t, r)
	<-r.scannedAtStart // its start-up reads are not the sweeps'
	kvBefore := kvLastSeq(t, b)
	evBefore := len(allEvents(t, b, acct))
	recBefore := getCase(t, r, acct)
	kv := bustest.CountKV(t, b, bus.BucketCases)

	for i := 0; i < 20; i++ {
		clk.Add(15 * time.Minute)
		o := observation(acct, true, model.SourceSweep, clk.Now())
		o.SweepID = "sweep-" + string(rune('a'+i))
		publishFinding(t, b, o)
	}
	findingsSettled(t, b)
	if got := kvLastSeq(t, b) - kvBefore; got != 0 {
		t.Errorf("20 unchanged sweeps wrote the case bucket %d times, want 0", got)
	}
	if got := len(allEvents(t, b, acct)) - evBefore; got != 0 {
		t.Errorf("20 unchanged sweeps published %d case events, want 0", got)
	}
	if got := kv.Reads(); got != 20 {
		t.Errorf("20 unchanged sweeps read the case %d times, want 20 (one to decide each)", got)
	}
	if rec := getCase(t, r, acct); rec.Seq != recBefore.Seq || !rec.UpdatedAt.Equal(recBefore.UpdatedAt) {
		t.Errorf("case changed: seq %d→%d, updated %v→%v", recBefore.Seq, rec.Seq, recBefore.UpdatedAt, rec.UpdatedAt)
	}

	// A change a reader sees (a second key) is still written, with an event, and it
	// brings the check time up to date.
	clk.Add(15 * time.Minute)
	o := observation(acct, true, model.SourceSweep, clk.Now())
	o.Keys = append(o.Keys, model.KeyDetail{Slot: 2, Active: true})
	publishFinding(t, b, o)
	findingsSettled(t, b)
	testutil.Eventually(t, "details refreshed", func() bool { return len(allEvents(t, b, acct)) == evBefore+1 })
	if rec := getCase(t, r, acct); !rec.LastCheckedAt.Equal(clk.Now()) || len(rec.Keys) != 2 {
		t.Errorf("after a visible change: last checked %v (want %v), keys %d", rec.LastCheckedAt, clk.Now(), len(rec.Keys))
	}
}

// kvLastSeq is the last sequence of the case bucket's stream: every write moves it.
func kvLastSeq(t *testing.T, b *bus.Bus) uint64 {
	t.Helper()
	s, err := b.JS.Stream(context.Background(), "KV_"+bus.BucketCases)
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return si.State.LastSeq
}

// An unchanged observation writes LastCheckedAt only once it lags by checkedEvery,
// and even then publishes no event.
func TestLastCheckedIsWrittenRarelyAndSilently(t *testing.T) {
	c := caseIn(model.StateOpen)
	lag := checkedEvery(time.Hour, acct)
	if lag < time.Hour || lag >= 2*time.Hour {
		t.Fatalf("checkedEvery(1h) = %v, want within [1h, 2h)", lag)
	}
	soon := observation(acct, true, model.SourceSweep, c.LastCheckedAt.Add(lag-time.Second))
	if d, err := Apply(c, Input{At: t0, Finding: &soon, CheckedEvery: time.Hour}); err != nil || d.Changed() {
		t.Fatalf("before the lag: changed=%v err=%v, want nothing stored", d.Changed(), err)
	}
	late := observation(acct, true, model.SourceSweep, c.LastCheckedAt.Add(lag))
	d, err := Apply(c, Input{At: t0, Finding: &late, CheckedEvery: time.Hour})
	if err != nil || !d.Changed() || len(d.Events) != 0 || !d.Case.LastCheckedAt.Equal(late.ObservedAt) || d.Case.Seq != c.Seq {
		t.Fatalf("after the lag: changed=%v events=%v last checked %v seq %d err=%v; want a silent write of the check time",
			d.Changed(), eventTypes(d.Events), d.Case.LastCheckedAt, d.Case.Seq, err)
	}
}

// An observation older than one applied but not written is still ignored: a late
// "no keys" from an earlier sweep must not resolve a case a newer sweep saw open.
func TestOlderObservationThanAnUnwrittenOneIsIgnored(t *testing.T) {
	c := caseIn(model.StateOpen)
	newer := c.LastCheckedAt.Add(30 * time.Minute) // applied, nothing written
	old := observation(acct, false, model.SourceSweep, c.LastCheckedAt.Add(15*time.Minute))
	d, err := Apply(c, Input{At: t0, Finding: &old, Seen: newer})
	if err != nil || d.Changed() {
		t.Fatalf("stale absent observation: changed=%v err=%v, want ignored", d.Changed(), err)
	}
	d, err = Apply(c, Input{At: t0, Finding: &old})
	if err != nil || !d.Changed() || d.Case.State != model.StateResolved {
		t.Fatalf("without Seen the same observation should resolve (control): %+v %v", d.Case, err)
	}
}

// The API answers one account from its key, without reading every case, and says
// when this instance last saw the account even though nothing was written.
func TestAPIOneAccountReadsOneKey(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	r := newRem(t, b, clk, nil)
	for i := 0; i < 30; i++ {
		if err := r.HandleFinding(ctx, observation(fmt.Sprintf("3000000000%02d", i), true, model.SourceSweep, clk.Now())); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(15 * time.Minute)
	if err := r.HandleFinding(ctx, observation("300000000007", true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	kv := bustest.CountKV(t, b, bus.BucketCases)
	h := r.APIHandler()
	code, body := apiGetT(t, h, "/api/v1/cases?account=300000000007", testTk)
	if code != http.StatusOK {
		t.Fatalf("list one account: %d %s", code, body)
	}
	var l CaseList
	if err := json.Unmarshal(body, &l); err != nil || len(l.Cases) != 1 {
		t.Fatalf("list one account: %s %v", body, err)
	}
	if got := l.Cases[0].LastSeenAt; got == nil || !got.Equal(clk.Now()) {
		t.Errorf("last_seen_at = %v, want %v (the unwritten sweep)", got, clk.Now())
	}
	if kv.Reads() != 1 || kv.Listings() != 0 {
		t.Errorf("one account cost %d reads and %d listings, want 1 and 0", kv.Reads(), kv.Listings())
	}
}

// After a restart (the in-memory last_seen_at is gone), one account's view still says
// when the account was last checked: the newest observation on RW_FINDINGS.
func TestLastSeenSurvivesARestart(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	startResponder(t, b, clk)
	first := newRem(t, b, clk, nil)
	stop := runUntilStopped(t, first)
	publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	waitState(t, first, acct, model.StateOpen)
	for i := 0; i < 4; i++ {
		clk.Add(15 * time.Minute)
		publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	}
	findingsSettled(t, b)
	stop()

	again := newRem(t, b, clk, nil) // a new process: nothing applied yet
	for _, q := range []struct {
		path string
		list bool
	}{{"/api/v1/cases?account=" + acct, true}, {"/api/v1/cases/" + acct + "-1", false}} {
		path := q.path
		code, body := apiGetT(t, again.APIHandler(), path, testTk)
		var v CaseView
		var l CaseList
		switch {
		case code != http.StatusOK:
			t.Fatalf("%s: %d %s", path, code, body)
		case q.list && (json.Unmarshal(body, &l) != nil || len(l.Cases) != 1):
			t.Fatalf("%s: %s", path, body)
		case q.list:
			v = l.Cases[0]
		case json.Unmarshal(body, &v) != nil:
			t.Fatalf("%s: %s", path, body)
		}
		if v.LastSeenAt == nil || !v.LastSeenAt.Equal(clk.Now()) || !v.LastCheckedAt.Before(clk.Now()) {
			t.Errorf("%s after a restart: last_checked_at %v, last_seen_at %v; want last_seen_at %v (the last sweep)",
				path, v.LastCheckedAt, v.LastSeenAt, clk.Now())
		}
		if v.CheckedInSweep != nil {
			t.Errorf("%s: checked_in_sweep %+v before any sweep that found nothing new", path, v.CheckedInSweep)
		}
	}

	// A later sweep finds the account unchanged and publishes nothing
	// (detector/unchanged.go): the view of the account names that sweep.
	seen := clk.Now()
	clk.Add(15 * time.Minute)
	sweep, _ := json.Marshal(map[string]any{"id": "s6", "started_at": clk.Now(), "done": true, "accounts": 1,
		"prev": map[string]any{"id": "s5", "started_at": seen, "complete": true}})
	if _, err := b.Sched.Put(context.Background(), bus.SchedSweepKey, sweep); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Accounts.Put(context.Background(), acct, []byte(`{"id":"`+acct+`"}`)); err != nil {
		t.Fatal(err)
	}
	code, body := apiGetT(t, again.APIHandler(), "/api/v1/cases/"+acct+"-1", testTk)
	var v CaseView
	if code != http.StatusOK || json.Unmarshal(body, &v) != nil {
		t.Fatalf("case view: %d %s", code, body)
	}
	if v.CheckedInSweep == nil || v.CheckedInSweep.ID != "s6" || !v.CheckedInSweep.StartedAt.Equal(clk.Now()) ||
		v.LastSeenAt == nil || !v.LastSeenAt.Equal(seen) {
		t.Errorf("after an unchanged sweep: checked_in_sweep %+v, last_seen_at %v; want s6 at %v, last seen %v",
			v.CheckedInSweep, v.LastSeenAt, clk.Now(), seen)
	}
}

// runUntilStopped runs r until stop is called; stop waits for Run to return (the
// work it handed to its pool done) and fails the test on its error.
func runUntilStopped(t *testing.T, r *Remediator) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
