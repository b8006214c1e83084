package detector_test

import (
	"context"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// sweepAndSettle starts the next sweep (the clock moved past the interval) and waits
// until every one of its jobs is done: a job is acknowledged after its finding is
// published, so what the sweep published is on the stream then.
func sweepAndSettle(t *testing.T, d *detector.Detector, b *bus.Bus) string {
	t.Helper()
	before := readSweep(t, b).ID
	testutil.Eventually(t, "the next sweep started", func() bool {
		_, _, _ = d.MaybeSweep(context.Background())
		return readSweep(t, b).ID != before
	})
	id := readSweep(t, b).ID
	testutil.Eventually(t, "the sweep's jobs done", func() bool {
		return readSweep(t, b).Done && bustest.Settled(b, bus.StreamScan, bus.ConsumerDetectorScan)
	})
	return id
}

func sweepFindings(t *testing.T, b *bus.Bus, sweep string) map[string]model.Observation {
	t.Helper()
	out := map[string]model.Observation{}
	for _, o := range findings(t, b) {
		if o.SweepID == sweep {
			out[o.AccountID] = o
		}
	}
	return out
}

// A sweep that finds every account as its newest observation says publishes nothing;
// what changed, and every failed check, is published; after RepublishEvery an
// unchanged account is published again.
func TestAnUnchangedSweepPublishesNothing(t *testing.T) {
	w := newWorld(t, 5, true, awssim.Options{})
	w.sim.CreateRootKey(member(1), w.clock.Now().Add(-48*time.Hour))
	w.sim.CreateRootKey(member(2), w.clock.Now().Add(-48*time.Hour))
	b := bustest.New(t)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.ScanInterval = 15 * time.Minute
	cfg.RepublishEvery = 0 // the default: 6h, spread per account over [6h, 12h)
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)
	waitFindings(t, b, 6, bySource(model.SourceSweep))
	testutil.Eventually(t, "the first sweep done", func() bool {
		return readSweep(t, b).Done && bustest.Settled(b, bus.StreamScan, bus.ConsumerDetectorScan)
	})
	published := len(findings(t, b))

	w.clock.Add(16 * time.Minute)
	before := w.sim.Calls()["IAM.GetAccountSummary"]
	s2 := sweepAndSettle(t, d, b)
	if got := sweepFindings(t, b, s2); len(got) != 0 {
		t.Errorf("an unchanged sweep published %d findings: %v", len(got), got)
	}
	if n := w.sim.Calls()["IAM.GetAccountSummary"] - before; n < 6 {
		t.Errorf("the unchanged sweep checked %d accounts, want all 6", n)
	}

	// A new key, a key deleted, a check that fails: exactly those are published, and
	// the failure again in the next sweep (the remediator counts failures in a row).
	w.sim.CreateRootKey(member(3), w.clock.Now().Add(-time.Hour))
	for _, k := range w.sim.RootKeys(member(2)) {
		w.sim.DeleteRootKey(member(2), k.ID)
	}
	w.sim.SetAccessDenied(member(4), true)
	w.clock.Add(16 * time.Minute)
	s3 := sweepAndSettle(t, d, b)
	got := sweepFindings(t, b, s3)
	if len(got) != 3 || !got[member(3)].RootKeysPresent || got[member(2)].RootKeysPresent || !got[member(4)].Failed() {
		t.Errorf("sweep after three changes published %v, want member-3 (new key), member-2 (no keys), member-4 (failed)", got)
	}
	w.clock.Add(16 * time.Minute)
	s4 := sweepAndSettle(t, d, b)
	if got := sweepFindings(t, b, s4); len(got) != 1 || !got[member(4)].Failed() {
		t.Errorf("sweep with a check still failing published %v, want member-4's failure only", got)
	}

	// Twelve hours on, every account's newest observation is due to be repeated.
	w.sim.SetAccessDenied(member(4), false)
	w.clock.Add(12 * time.Hour)
	s5 := sweepAndSettle(t, d, b)
	if got := sweepFindings(t, b, s5); len(got) != 6 {
		t.Errorf("a sweep 12h after the last publications published %d findings, want all 6", len(got))
	}
	if total := len(findings(t, b)); total != published+3+1+6 {
		t.Errorf("findings on the stream = %d, want %d", total, published+3+1+6)
	}
}

// The newest observation is the stream's, not this process's: a detector started on
// an existing stream publishes nothing for unchanged accounts, and an observation
// another publisher put on the stream (here a failed on-demand check) makes the next
// sweep publish the account's state again.
func TestTheNewestObservationComesFromTheStream(t *testing.T) {
	w := newWorld(t, 3, true, awssim.Options{})
	w.sim.CreateRootKey(member(1), w.clock.Now().Add(-48*time.Hour))
	b := bustest.New(t)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.ScanInterval = 15 * time.Minute
	cfg.RepublishEvery = 0
	first := newDetector(t, w, cfg, b)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	waitFindings(t, b, 4, bySource(model.SourceSweep))
	testutil.Eventually(t, "the first sweep done", func() bool {
		return readSweep(t, b).Done && bustest.Settled(b, bus.StreamScan, bus.ConsumerDetectorScan)
	})
	// A first sweep's findings may lack OU paths (ListAccounts named the accounts
	// before the tree did, org.go); the next sweep's have them.
	w.clock.Add(16 * time.Minute)
	sweepAndSettle(t, first, b)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	d := newDetector(t, w, cfg, bustest.Connect(t, b)) // a restart
	runDetector(t, d)
	w.clock.Add(16 * time.Minute)
	if got := sweepFindings(t, b, sweepAndSettle(t, d, b)); len(got) != 0 {
		t.Errorf("the first sweep after a restart published %d unchanged findings: %v", len(got), got)
	}

	w.sim.SetAccessDenied(member(1), true)
	if o, err := d.Check(context.Background(), member(1), "test"); err != nil || !o.Failed() {
		t.Fatalf("on-demand check = %+v %v, want a failure", o, err)
	}
	w.sim.SetAccessDenied(member(1), false)
	w.clock.Add(16 * time.Minute)
	got := sweepFindings(t, b, sweepAndSettle(t, d, b))
	if len(got) != 1 || !got[member(1)].RootKeysPresent || got[member(1)].Failed() {
		t.Errorf("sweep after a failed check published %v, want member-1's keys again", got)
	}
}
