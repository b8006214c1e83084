package detector_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// A job that used up its deliveries (its detector was stopped or killed while
// checking it, MaxDeliver times) stays in the RW_SCAN stream until MaxAge, but no
// consumer will ever hand it out again. It must not count as "still queued": the next
// sweep starts one interval after the last, not two.
func TestSweepIsNotPostponedByJobsOutOfDeliveries(t *testing.T) {
	const members = 2
	w := newWorld(t, members, true, awssim.Options{})
	b := bustest.New(t)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.ScanInterval = time.Hour
	d := newDetector(t, w, cfg, b)
	ctx := context.Background()

	// The detectors' shared consumer as Run creates it (MaxDeliver 5), with a short
	// AckWait so the server forgets the last deliveries quickly.
	cons, err := b.JS.CreateOrUpdateConsumer(ctx, bus.StreamScan, jetstream.ConsumerConfig{
		Durable: bus.ConsumerDetectorScan, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Second, MaxDeliver: 5, MaxAckPending: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	first, started, err := d.MaybeSweep(ctx)
	if err != nil || !started {
		t.Fatalf("first MaybeSweep = %q %v %v", first, started, err)
	}
	// Every job is taken and given back five times: a detector shut down mid-check.
	naks := 0
	for naks < 5*(members+1) {
		batch, err := cons.Fetch(members+1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			naks++
			if err := m.Nak(); err != nil {
				t.Fatal(err)
			}
		}
		if got == 0 {
			break
		}
	}
	if naks != 5*(members+1) {
		t.Fatalf("%d deliveries, want %d", naks, 5*(members+1))
	}
	// The server hands them out no more, yet keeps them: in the stream and, until
	// MaxAge, among the consumer's unacknowledged messages.
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending != 0 || queuedJobs(t, b) != members+1 {
		t.Fatalf("after the last deliveries: %d pending on the consumer, %d jobs in the stream", info.NumPending, queuedJobs(t, b))
	}
	if batch, err := cons.Fetch(1, jetstream.FetchMaxWait(300*time.Millisecond)); err == nil {
		for m := range batch.Messages() {
			t.Fatalf("job %s delivered a sixth time", m.Subject())
		}
	}

	w.clock.Set(readSweep(t, b).StartedAt.Add(time.Hour + time.Second))
	second, started, err := d.MaybeSweep(ctx)
	if err != nil || !started || second == first {
		t.Fatalf("MaybeSweep one interval after a sweep whose jobs are out of deliveries = %q %v %v, want a new sweep", second, started, err)
	}
}

// A detector stopped while it checks a job gives the job back for another detector
// (not to its own pull request, which would drop it and spend a delivery). On the
// job's last delivery (MaxDeliver 5) a Nak would strand it: the server never hands
// it out again. So the last delivery first queues the job's next generation, and
// the account is checked once a detector can finish the check.
//
// Deterministic: each run is stopped only once the simulator has received that
// delivery's GetAccountSummary, i.e. the check is in flight (not still buffered).
func TestStoppingOnAJobsLastDeliveryDoesNotStrandIt(t *testing.T) {
	w := newWorld(t, 0, false, awssim.Options{})
	b := bustest.New(t)
	d := newDetector(t, w, w.config(""), b)
	ctx := context.Background()
	if _, started, err := d.MaybeSweep(ctx); err != nil || !started {
		t.Fatalf("MaybeSweep = %v %v", started, err)
	}
	w.sim.SetLatency(time.Minute) // every check hangs until its detector stops

	for delivery := 1; delivery <= 5; delivery++ {
		stopMidCheck(t, w, d)
		if delivery < 5 {
			cons, err := b.JS.Consumer(ctx, bus.StreamScan, bus.ConsumerDetectorScan)
			if err != nil {
				t.Fatal(err)
			}
			if info, err := cons.Info(ctx); err != nil || info.Delivered.Consumer != uint64(delivery) {
				t.Fatalf("consumer after %d runs: %+v %v, want %d deliveries (none lost in a buffer)", delivery, info, err, delivery)
			}
		}
	}
	s, err := b.JS.Stream(ctx, bus.StreamScan)
	if err != nil {
		t.Fatal(err)
	}
	// The Term of the last delivery reaches the server without an answer: wait for it.
	testutil.Eventually(t, "only the next generation in RW_SCAN", func() bool {
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	m, err := s.GetLastMsgForSubject(ctx, bus.ScanSubject(mgmtID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.Data), `"generation":1`) {
		t.Errorf("queued job = %s, want generation 1", m.Data)
	}
	if logs := w.logs.String(); !strings.Contains(logs, "last delivery") {
		t.Errorf("the re-queued job is not logged:\n%s", logs)
	}

	// Once AWS answers again, the account is checked in this sweep.
	w.sim.SetLatency(0)
	runDetector(t, d)
	got := waitFindings(t, b, 1, bySource(model.SourceSweep))
	if got[0].AccountID != mgmtID || got[0].Failed() {
		t.Errorf("finding = %+v", got[0])
	}
	testutil.Eventually(t, "the job gone from RW_SCAN", func() bool { return queuedJobs(t, b) == 0 })
}

// A job whose detectors die under it on every delivery of every generation is not
// dropped silently: its last attempt publishes an error finding for the account.
func TestAJobOutOfGenerationsIsReported(t *testing.T) {
	w := newWorld(t, 0, false, awssim.Options{})
	b := bustest.New(t)
	d := newDetector(t, w, w.config(""), b)
	ctx := context.Background()
	if _, started, err := d.MaybeSweep(ctx); err != nil || !started {
		t.Fatalf("MaybeSweep = %v %v", started, err)
	}
	w.sim.SetLatency(time.Minute)
	scan, err := b.JS.Stream(ctx, bus.StreamScan)
	if err != nil {
		t.Fatal(err)
	}
	for runs := 0; ; runs++ {
		if runs > 20 {
			t.Fatal("the job still queued after 20 interrupted runs (3 generations of 5 deliveries)")
		}
		stopMidCheck(t, w, d)
		if len(findings(t, b)) > 0 {
			break // the last attempt announced itself
		}
	}
	testutil.Eventually(t, "the job gone from RW_SCAN", func() bool {
		info, err := scan.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})
	got := findings(t, b)
	if len(got) != 1 || got[0].ErrorCode != "CheckInterrupted" || got[0].AccountID != mgmtID || !strings.Contains(got[0].Error, "interrupted 14 times") {
		t.Fatalf("findings = %+v, want one CheckInterrupted for the account", got)
	}
}

// stopMidCheck runs d until the simulator has received a GetAccountSummary of this
// run (a check is in flight, past any buffer), then stops it.
func stopMidCheck(t *testing.T, w *world, d *detector.Detector) {
	t.Helper()
	before := w.sim.Calls()["IAM.GetAccountSummary"]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	testutil.EventuallyWithin(t, 30*time.Second, "a check in flight", func() bool {
		return w.sim.Calls()["IAM.GetAccountSummary"] > before
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop within 30s")
	}
}

// Listing a large organization can take longer than the enumeration lease
// (Organizations answers 20 accounts a page and throttles). The detector listing it
// renews the lease as it goes, so no other detector takes the sweep over and checks
// every account a second time.
func TestLongEnumerationKeepsItsLease(t *testing.T) {
	const members = 16
	w := newWorld(t, members, true, awssim.Options{})
	w.sim.SetPageSize(1)
	b := bustest.New(t)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.Instance = "detector-a"
	a := newDetector(t, w, cfg, b)
	cfg.Instance = "detector-b"
	other := newDetector(t, w, cfg, b)
	ctx := context.Background()

	w.sim.SetLatency(100 * time.Millisecond)
	type result struct {
		id      string
		started bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		id, started, err := a.MaybeSweep(ctx)
		done <- result{id, started, err}
	}()
	// Detector-a lists one account a page while the clock runs on, six minutes in all.
	testutil.Eventually(t, "detector-a to claim the sweep", func() bool {
		e, err := b.Sched.Get(ctx, "sweep")
		return err == nil && strings.Contains(string(e.Value()), "detector-a")
	})
	for range 3 {
		// Let detector-a list a few pages (and so renew its lease) before the clock moves.
		pages := w.sim.Calls()["Organizations.ListAccountsForParent"]
		testutil.EventuallyWithin(t, 30*time.Second, "detector-a to list more pages", func() bool {
			return w.sim.Calls()["Organizations.ListAccountsForParent"] >= pages+2
		})
		w.clock.Add(2 * time.Minute)
	}
	if id, started, err := other.MaybeSweep(ctx); err != nil || started {
		t.Fatalf("detector-b's MaybeSweep while detector-a is still listing = %q %v %v, want no sweep", id, started, err)
	}
	r := <-done
	if r.err != nil || !r.started {
		t.Fatalf("detector-a's sweep = %+v", r)
	}
	if st := readSweep(t, b); st.ID != r.id || !st.Done || st.Accounts != members+1 {
		t.Errorf("sweep schedule = %+v, want detector-a's sweep done with %d accounts", st, members+1)
	}
	if n := queuedJobs(t, b); n != members+1 {
		t.Errorf("%d jobs queued, want one per account: %d", n, members+1)
	}
}

// When listing the organization fails part way, the jobs already queued stay queued,
// and the retry a minute later must not queue those accounts a second time: the
// retry continues the same sweep, so each account is checked once.
func TestRetriedEnumerationChecksEachAccountOnce(t *testing.T) {
	const members = 4
	w := newWorld(t, members, true, awssim.Options{})
	w.sim.SetPageSize(1)
	// Organizations fails once on the third page of both listings (the tree's and
	// ListAccounts, which list at once), with an error the SDK does not retry.
	var failedTree, failedFlat atomic.Bool
	b := bustest.New(t)
	d := interceptedDetector(t, w, b, func(target, body string) string {
		failed := map[string]*atomic.Bool{"AWSOrganizationsV20161128.ListAccountsForParent": &failedTree,
			"AWSOrganizationsV20161128.ListAccounts": &failedFlat}[target]
		if failed != nil && strings.Contains(body, `"NextToken":"2"`) && failed.CompareAndSwap(false, true) {
			return "ServiceException"
		}
		return ""
	})
	ctx := context.Background()
	if _, started, err := d.MaybeSweep(ctx); !started || err == nil {
		t.Fatalf("first MaybeSweep: started %v, err %v; want a sweep whose listing fails", started, err)
	}
	if n := queuedJobs(t, b); n != 2 {
		t.Fatalf("%d jobs queued by the failed listing, want 2", n)
	}
	w.clock.Add(2 * time.Minute)
	if _, started, err := d.MaybeSweep(ctx); !started || err != nil {
		t.Fatalf("retried MaybeSweep: started %v, err %v", started, err)
	}
	if n := queuedJobs(t, b); n != members+1 {
		t.Errorf("%d jobs queued after the retry, want one per account: %d", n, members+1)
	}
	runDetector(t, d)
	got := perAccount(t, waitFindings(t, b, members+1, bySource(model.SourceSweep)))
	scanIdle(t, b) // every job done: a second finding for an account would be on the stream now
	perAccount(t, findings(t, b))
	if len(got) != members+1 {
		t.Errorf("%d accounts checked, want %d", len(got), members+1)
	}
}
