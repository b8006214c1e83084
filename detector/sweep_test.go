package detector_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

func readSweep(t *testing.T, b *bus.Bus) detector.SweepState {
	t.Helper()
	e, err := b.Sched.Get(context.Background(), "sweep")
	if err != nil {
		t.Fatalf("read the sweep schedule: %v", err)
	}
	var st detector.SweepState
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		t.Fatalf("sweep schedule %s: %v", e.Value(), err)
	}
	return st
}

func writeSweep(t *testing.T, b *bus.Bus, st detector.SweepState) {
	t.Helper()
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Sched.Put(context.Background(), "sweep", data); err != nil {
		t.Fatal(err)
	}
}

// queuedJobs counts the sweep jobs waiting in RW_SCAN.
func queuedJobs(t *testing.T, b *bus.Bus) uint64 {
	t.Helper()
	s, err := b.JS.Stream(context.Background(), bus.StreamScan)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// A detector that won a sweep and died before listing the accounts leaves the sweep
// claimed but not done. Another detector takes it over once the enumeration lease
// (5 minutes) has passed on the clock, not before, and every account is checked once.
func TestSweepOfADeadWinnerIsTakenOver(t *testing.T) {
	const members = 5
	w := newWorld(t, members, true, awssim.Options{})
	w.sim.CreateRootKey(member(2), w.clock.Now())
	b := bustest.New(t)
	// What detector-a wrote when it won the election; then it died: no jobs, no "done".
	dead := detector.SweepState{SchemaVersion: 1, ID: "20240601T120000Z-deaddead", StartedAt: w.clock.Now(), Owner: "detector-a"}
	writeSweep(t, b, dead)

	cfg := w.config("OrganizationAccountAccessRole")
	cfg.Instance = "detector-b"
	d := newDetector(t, w, cfg, b)
	runDetector(t, d) // its scheduler asks at once: the dead sweep is still leased
	ctx := context.Background()

	w.clock.Add(5*time.Minute - time.Second)
	if id, started, err := d.MaybeSweep(ctx); err != nil || started {
		t.Fatalf("MaybeSweep within the lease = %q %v %v, want no sweep", id, started, err)
	}
	if st := readSweep(t, b); st.ID != dead.ID || st.Done {
		t.Fatalf("sweep schedule within the lease = %+v, want the dead sweep untouched", st)
	}
	if n := queuedJobs(t, b); n != 0 {
		t.Fatalf("%d sweep jobs queued within the lease", n)
	}

	w.clock.Add(2 * time.Second)
	if _, _, err := d.MaybeSweep(ctx); err != nil { // the running scheduler may win it instead
		t.Fatalf("MaybeSweep after the lease: %v", err)
	}
	got := perAccount(t, waitFindings(t, b, members+1, bySource(model.SourceSweep)))
	if len(got) != members+1 {
		t.Fatalf("%d accounts checked, want %d", len(got), members+1)
	}
	st := readSweep(t, b)
	if st.ID == dead.ID || st.Owner != "detector-b" || !st.Done || st.Accounts != members+1 || st.Error != "" {
		t.Errorf("sweep schedule after the takeover = %+v", st)
	}
	for acct, o := range got {
		if o.SweepID != st.ID {
			t.Errorf("account %s checked by sweep %q, want the new sweep %q", acct, o.SweepID, st.ID)
		}
	}
	if !got[member(2)].RootKeysPresent {
		t.Errorf("member-2 finding = %+v, want its root key", got[member(2)])
	}
}

// A new sweep waits while jobs of the previous one are still queued, so a slow sweep
// does not pile up behind itself, but not past two intervals after the previous start.
func TestSweepIsPostponedWhileJobsAreQueued(t *testing.T) {
	const members = 3
	w := newWorld(t, members, true, awssim.Options{})
	b := bustest.New(t)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.ScanInterval = time.Hour
	d := newDetector(t, w, cfg, b) // not running: nobody takes the jobs
	ctx := context.Background()

	first, started, err := d.MaybeSweep(ctx)
	if err != nil || !started {
		t.Fatalf("first MaybeSweep = %q %v %v", first, started, err)
	}
	if n := queuedJobs(t, b); n != members+1 {
		t.Fatalf("%d jobs queued, want %d", n, members+1)
	}

	for _, at := range []time.Duration{time.Hour + time.Minute, 2*time.Hour - time.Second} {
		w.clock.Set(readSweep(t, b).StartedAt.Add(at))
		if id, started, err := d.MaybeSweep(ctx); err != nil || started {
			t.Fatalf("MaybeSweep %s after the first sweep with its jobs queued = %q %v %v, want it postponed", at, id, started, err)
		}
		if st := readSweep(t, b); st.ID != first {
			t.Fatalf("sweep schedule %s after the first sweep = %+v, want the first sweep", at, st)
		}
	}
	if logs := w.logs.String(); !strings.Contains(logs, "postponing the next") {
		t.Errorf("the postponement is not logged:\n%s", logs)
	}

	// Two intervals after the first start, the next sweep starts even so.
	w.clock.Set(readSweep(t, b).StartedAt.Add(2*time.Hour + time.Second))
	second, started, err := d.MaybeSweep(ctx)
	if err != nil || !started || second == first {
		t.Fatalf("MaybeSweep two intervals after the first sweep = %q %v %v, want a new sweep", second, started, err)
	}
	if n := queuedJobs(t, b); n != 2*(members+1) {
		t.Errorf("%d jobs queued, want both sweeps' %d", n, 2*(members+1))
	}

	// Once the queue is drained, the next sweep is due one interval later, as usual.
	runDetector(t, d)
	waitFindings(t, b, 2*(members+1), bySource(model.SourceSweep))
	testutil.Eventually(t, "the sweep queue drained", func() bool { return queuedJobs(t, b) == 0 })
	w.clock.Set(readSweep(t, b).StartedAt.Add(time.Hour + time.Second))
	if _, _, err := d.MaybeSweep(ctx); err != nil { // the running scheduler may win it instead
		t.Fatal(err)
	}
	if st := readSweep(t, b); st.ID == second || st.ID == first {
		t.Errorf("no sweep one interval after the second with an empty queue: %+v", st)
	}
}
