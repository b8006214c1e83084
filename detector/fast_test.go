package detector_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rootwarden/rootwarden/detector"
	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// A root key created in an account with no fresh credential report: the finding is
// published as soon as GetAccountSummary answers, while AWS still builds the report,
// stamped with the time presence was decided; the key details follow as a second
// finding with the same time once the report is there.
func TestEventFindingDoesNotWaitForTheCredentialReport(t *testing.T) {
	w := newWorld(t, 1, true, awssim.Options{ReportDelay: 10 * time.Minute})
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	cfg.AccountTimeout = 15 * time.Minute // the message stays invisible while the clock moves 10 minutes
	runDetector(t, newDetector(t, w, cfg, b))
	waitFindings(t, b, 2, bySource(model.SourceSweep))

	decided := w.clock.Now()
	key := w.sim.CreateRootKey(member(1), decided)
	w.sim.SendMessage(queue, awssim.RootKeyCreatedEvent(member(1), key, decided))
	first := waitFindings(t, b, 1, bySource(model.SourceEvent))
	if o := first[0]; !o.RootKeysPresent || !o.KeyDetailsPending || len(o.Keys) != 0 || !o.ObservedAt.Equal(decided) {
		t.Fatalf("first event finding = %+v, want presence with details pending, observed %s", o, decided)
	}
	testutil.Eventually(t, "the detector to wait for the report", func() bool { return w.sim.Calls()["IAM.GenerateCredentialReport"] >= 2 })
	if got := findings(t, b); len(got) != 3 {
		t.Fatalf("%d findings while the report is being built, want the 2 sweep findings and the presence", len(got))
	}

	w.clock.Add(10 * time.Minute) // AWS finishes the report
	got := waitFindings(t, b, 2, bySource(model.SourceEvent))
	if o := got[1]; o.ID != got[0].ID+"-details" || o.KeyDetailsPending || len(o.Keys) != 1 || !o.RootKeysPresent ||
		!o.ObservedAt.Equal(decided) || o.ReportAt == nil || o.Event == nil {
		t.Fatalf("details finding = %+v, want the key, observed when presence was decided", o)
	}
	testutil.Eventually(t, "the message deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 1 })
}

// After a sweep, an event costs one AWS call: the account comes from the inventory
// (no DescribeAccount), the role session is reused (no AssumeRole) and the report of
// the sweep is reused within AWS's 4 hours (no GetCredentialReport).
func TestEventAfterASweepIsOneAWSCall(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	w.sim.CreateRootKey(member(1), w.clock.Now().Add(-time.Hour))
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	cfg.EventWindow = -1 // every event checked at once (no coalescing of calls of one key)
	runDetector(t, newDetector(t, w, cfg, b))
	waitFindings(t, b, 3, bySource(model.SourceSweep))
	testutil.Eventually(t, "the receive loop to wait", func() bool { return w.sim.Calls()["SQS.ReceiveMessage"] > 0 })

	w.clock.Add(30 * time.Minute)
	w.sim.ResetCalls()
	key := w.sim.RootKeys(member(1))[0].ID
	w.sim.SendMessage(queue, awssim.RootKeyUsedEvent(member(1), key, "ListBuckets", w.clock.Now()))
	o := waitFindings(t, b, 1, bySource(model.SourceEvent))[0]
	if !o.RootKeysPresent || o.KeyDetailsPending || len(o.Keys) != 1 || o.AccountName != "member-1" || o.OUPath != "Root" {
		t.Errorf("event finding = %+v", o)
	}
	testutil.Eventually(t, "the message deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 1 })
	aws := 0
	for k, n := range w.sim.Calls() {
		if !strings.HasPrefix(k, "SQS.") {
			aws += n
		}
	}
	if calls := w.sim.Calls(); aws != 1 || calls["IAM.GetAccountSummary"] != 1 {
		t.Errorf("AWS calls for the event = %v, want GetAccountSummary only", calls)
	}

	// Credentials refused: the cached session is dropped and a fresh one asked.
	w.sim.SetAccessDenied(member(1), true)
	w.sim.ResetCalls()
	w.sim.SendMessage(queue, awssim.RootKeyUsedEvent(member(1), key, "ListBuckets", w.clock.Now()))
	testutil.Eventually(t, "the second message deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 1 })
	if n := w.sim.Calls()["STS.AssumeRole"]; n != 1 {
		t.Errorf("AssumeRole after AccessDenied with a cached session: %d calls, want 1", n)
	}

	// Sessions are renewed before they expire.
	w.sim.SetAccessDenied(member(1), false)
	w.clock.Add(time.Hour)
	w.sim.ResetCalls()
	w.sim.SendMessage(queue, awssim.RootKeyUsedEvent(member(1), key, "ListBuckets", w.clock.Now()))
	testutil.Eventually(t, "the third message deleted", func() bool { return w.sim.Calls()["SQS.DeleteMessage"] == 1 })
	if n := w.sim.Calls()["STS.AssumeRole"]; n != 1 {
		t.Errorf("AssumeRole an hour later: %d calls, want 1 (the session expired)", n)
	}
}

// Every observation carries the account's OU path and Organizations tags, read with
// the sweep and kept in the inventory; an event takes them from there.
func TestObservationsCarryOUPathAndTags(t *testing.T) {
	w := newWorld(t, 3, true, awssim.Options{})
	prod := w.sim.AddOU("", "Prod")
	pay := w.sim.AddOU(prod, "Payments")
	w.sim.MoveAccount(member(1), pay)
	w.sim.MoveAccount(member(2), prod)
	w.sim.SetAccountTags(member(1), map[string]string{"team": "payments", "owner": "pay@example.com"})
	w.sim.CreateRootKey(member(1), w.clock.Now())
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	runDetector(t, newDetector(t, w, cfg, b))
	got := perAccount(t, waitFindings(t, b, 4, bySource(model.SourceSweep)))
	// The account with a key has its OU path on its finding (routing facts first); a
	// clean account's finding may come from ListAccounts before the tree walk names its
	// OU, so every OU path is checked where routing reads it: the inventory.
	if got[member(1)].OUPath != "Root/Prod/Payments" {
		t.Errorf("%s: OU path %q, want Root/Prod/Payments", member(1), got[member(1)].OUPath)
	}
	want := map[string]string{mgmtID: "Root", member(1): "Root/Prod/Payments", member(2): "Root/Prod", member(3): "Root"}
	for id, path := range want {
		testutil.Eventually(t, id+"'s OU path in the inventory", func() bool {
			e, err := b.Accounts.Get(context.Background(), id)
			return err == nil && strings.Contains(string(e.Value()), `"ou_path":"`+path+`"`)
		})
	}
	if tags := got[member(1)].Tags; tags["team"] != "payments" || tags["owner"] != "pay@example.com" || len(tags) != 2 {
		t.Errorf("member-1 tags = %v", tags)
	}
	e, err := b.Accounts.Get(context.Background(), member(1))
	if err != nil || !strings.Contains(string(e.Value()), `"ou_path":"Root/Prod/Payments"`) || !strings.Contains(string(e.Value()), `"team":"payments"`) {
		t.Fatalf("inventory entry of member-1 = %v %v", e, err)
	}

	w.sim.ResetCalls()
	key := w.sim.RootKeys(member(1))[0].ID
	w.sim.SendMessage(queue, awssim.RootKeyUsedEvent(member(1), key, "ListBuckets", w.clock.Now()))
	o := waitFindings(t, b, 1, bySource(model.SourceEvent))[0]
	if o.OUPath != "Root/Prod/Payments" || o.Tags["team"] != "payments" {
		t.Errorf("event finding OU %q tags %v", o.OUPath, o.Tags)
	}
	for k := range w.sim.Calls() {
		if strings.HasPrefix(k, "Organizations.") {
			t.Errorf("the event called %s", k)
		}
	}
}

// A later sweep does not wait for the listing: the previous inventory's accounts are
// checked while Organizations is still listing; the listing then adds the account
// that joined and drops the one that left.
func TestLaterSweepChecksTheInventoryWhileListing(t *testing.T) {
	w := newWorld(t, 3, true, awssim.Options{})
	target, _ := url.Parse(w.url)
	proxy := httputil.NewSingleHostReverseProxy(target)
	hold := make(chan struct{})
	var holding = make(chan struct{}, 1)
	block := false
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if block && r.Header.Get("X-Amz-Target") == "AWSOrganizationsV20161128.ListRoots" {
			select {
			case holding <- struct{}{}:
			default:
			}
			<-hold
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	ak, sk := w.sim.AdminCredentials(mgmtID)
	awsCfg, err := awssim.SDKConfig(context.Background(), srv.URL, credentials.NewStaticCredentialsProvider(ak, sk, ""))
	if err != nil {
		t.Fatal(err)
	}
	b := bustest.New(t)
	d, err := detector.New(w.config("OrganizationAccountAccessRole"), w.logger(), b, awsCfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, _, err := d.MaybeSweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runDetector(t, d)
	waitFindings(t, b, 4, bySource(model.SourceSweep))

	w.sim.AddAccount(awssim.Account{ID: member(4), Name: "member-4"})
	w.sim.RemoveAccount(member(3))
	block = true // set before the clock moves: read only by the proxy after
	w.clock.Add(25 * time.Hour)
	done := make(chan error, 1)
	go func() { _, _, err := d.MaybeSweep(ctx); done <- err }()
	<-holding
	// Listing is held; the inventory's accounts are checked meanwhile.
	second := waitFindings(t, b, 3, func(o model.Observation) bool { return o.Source == model.SourceSweep && o.SweepID != first })
	for _, o := range second {
		if o.AccountID == member(4) || o.AccountID == member(3) || o.Failed() {
			t.Errorf("while listing: %+v", o)
		}
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := perAccount(t, waitFindings(t, b, 4, func(o model.Observation) bool { return o.Source == model.SourceSweep && o.SweepID != first }))
	if _, ok := got[member(4)]; !ok {
		t.Error("the account that joined was not checked")
	}
	if _, ok := got[member(3)]; ok {
		t.Error("the account that left was reported")
	}
	testutil.Eventually(t, "the inventory reconciled", func() bool {
		_, gone := b.Accounts.Get(ctx, member(3))
		_, added := b.Accounts.Get(ctx, member(4))
		return gone != nil && added == nil
	})
	_ = bus.StreamScan
}

// One slow account does not hold up the events after it: the next receive does not
// wait for the batch's slowest message.
func TestSlowEventDoesNotHoldUpTheNext(t *testing.T) {
	w := newWorld(t, 2, true, awssim.Options{})
	b := bustest.New(t)
	cfg, queue := w.eventsConfig()
	cfg.AccountTimeout = time.Minute
	runDetector(t, newDetector(t, w, cfg, b))
	waitFindings(t, b, 3, bySource(model.SourceSweep))

	w.sim.SetAccountLatency(member(1), time.Minute) // member-1's checks hang
	k1 := w.sim.CreateRootKey(member(1), w.clock.Now())
	w.sim.SendMessage(queue, awssim.RootKeyCreatedEvent(member(1), k1, w.clock.Now()))
	testutil.Eventually(t, "member-1's check in flight", func() bool { return w.sim.Calls()["IAM.GetAccountSummary"] >= 4 })
	k2 := w.sim.CreateRootKey(member(2), w.clock.Now())
	w.sim.SendMessage(queue, awssim.RootKeyCreatedEvent(member(2), k2, w.clock.Now()))
	o := waitFindings(t, b, 1, bySource(model.SourceEvent))[0]
	if o.AccountID != member(2) || !o.RootKeysPresent {
		t.Fatalf("event finding = %+v, want member-2's while member-1's check hangs", o)
	}
}

// Under throttling of a share of all calls the sweep still checks every account:
// the SDK retries, and the detector lowers its concurrency.
func TestScanUnderThrottling(t *testing.T) {
	w := newWorld(t, 40, true, awssim.Options{})
	w.sim.SetThrottleShare(0.2, 7)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.Concurrency = 16
	cfg.MaxAttempts = 8
	sc, err := detector.NewScanner(cfg, w.logger(), w.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	obs, err := sc.Scan(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		if o.Failed() {
			t.Errorf("%s: %s", o.AccountID, o.Error)
		}
	}
	if len(obs) != 41 || w.sim.ThrottledCalls() == 0 {
		t.Fatalf("%d observations, %d throttled calls", len(obs), w.sim.ThrottledCalls())
	}
	if limit, cuts := detector.ScannerLimit(sc); cuts == 0 || limit >= 16 {
		t.Errorf("concurrency after throttling = %.1f (%d cuts), want lowered", limit, cuts)
	}
}

// A sweep's observation is stamped when GetAccountSummary decided presence, not when
// the credential report came back: the remediator orders observations by it, and a
// check that overlapped a deletion must not look newer than it is.
func TestSweepObservationIsStampedWhenPresenceWasDecided(t *testing.T) {
	w := newWorld(t, 1, true, awssim.Options{ReportDelay: 10 * time.Minute})
	decided := w.clock.Now()
	w.sim.CreateRootKey(member(1), decided)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.AccountTimeout = time.Minute
	sc, err := detector.NewScanner(cfg, w.logger(), w.awsConfig())
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		obs []model.Observation
		err error
	}
	done := make(chan result, 1)
	go func() { o, err := sc.Scan(context.Background(), nil); done <- result{o, err} }()
	testutil.Eventually(t, "the scan to wait for the report", func() bool { return w.sim.Calls()["IAM.GenerateCredentialReport"] >= 2 })
	w.clock.Add(10 * time.Minute)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, o := range r.obs {
		if o.AccountID == member(1) && (!o.ObservedAt.Equal(decided) || len(o.Keys) != 1 || o.KeyDetailsPending) {
			t.Errorf("observation = %+v, want keys, observed at %s", o, decided)
		}
	}
}

// Tags read by the sweep's jobs survive the sweep's reconciliation, so the next
// sweep does not read them again.
func TestTagsReadInASweepAreKept(t *testing.T) {
	w := newWorld(t, 6, true, awssim.Options{})
	w.sim.SetAccountTags(member(1), map[string]string{"team": "payments"})
	w.sim.SetPageSize(1)                    // the listing outlasts member-1's job,
	w.sim.SetLatency(20 * time.Millisecond) // so its tags are read while it lists
	b := bustest.New(t)
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.ScanInterval = 15 * time.Minute
	d := newDetector(t, w, cfg, b)
	ctx := context.Background()
	runDetector(t, d) // the start-up sweep
	waitFindings(t, b, 7, bySource(model.SourceSweep))
	first := readSweep(t, b)
	testutil.Eventually(t, "the first sweep done", func() bool { return readSweep(t, b).Done })
	e, err := b.Accounts.Get(ctx, member(1))
	if err != nil || !strings.Contains(string(e.Value()), `"team":"payments"`) {
		t.Fatalf("member-1's inventory entry after the sweep = %v %v, want its tags", e, err)
	}
	w.clock.Add(16 * time.Minute)
	w.sim.ResetCalls()
	if _, _, err := d.MaybeSweep(ctx); err != nil {
		t.Fatal(err)
	}
	got := waitFindings(t, b, 7, func(o model.Observation) bool { return o.Source == model.SourceSweep && o.SweepID != first.ID })
	for _, o := range got {
		if o.AccountID == member(1) && o.Tags["team"] != "payments" {
			t.Errorf("second sweep's member-1 tags = %v", o.Tags)
		}
	}
	if n := w.sim.Calls()["Organizations.ListTagsForResource"]; n != 0 {
		t.Errorf("the second sweep read tags %d times, want 0 (read 16 minutes ago)", n)
	}
}

// Sweep jobs use a short AckWait: a check that takes longer keeps its job by telling
// the server it is in progress, and the job of a detector that died (its connection
// gone, no Nak) goes to another detector within seconds.
func TestSweepJobsResumeWithinSecondsOfACrash(t *testing.T) {
	w := newWorld(t, 1, true, awssim.Options{})
	b := bustest.New(t)
	const ackWait = 2 * time.Second
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.ScanInterval = time.Hour
	connA := bustest.Connect(t, b)
	a := newDetector(t, w, cfg, connA)
	detector.SetAckWait(a, ackWait)
	ctx := context.Background()
	if _, started, err := a.MaybeSweep(ctx); err != nil || !started {
		t.Fatalf("MaybeSweep = %v %v", started, err)
	}
	slow := 2*ackWait + time.Second
	w.sim.SetAccountLatency(member(1), slow) // member-1's check takes longer than AckWait
	actx, cancelA := context.WithCancel(ctx)
	t.Cleanup(cancelA)
	go func() { _ = a.Run(actx) }()
	isMember := func(sweep string) func(model.Observation) bool {
		return func(o model.Observation) bool {
			return o.Source == model.SourceSweep && o.AccountID == member(1) && (sweep == "" || o.SweepID != sweep)
		}
	}
	first := waitFindings(t, b, 1, isMember(""))[0]
	cons, err := b.JS.Consumer(ctx, bus.StreamScan, bus.ConsumerDetectorScan)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(ctx); err != nil || info.Delivered.Consumer != 2 || info.Config.AckWait != ackWait {
		t.Fatalf("after a check of %s: %+v %v, want one delivery per account (kept by InProgress)", slow, info, err)
	}

	// The next sweep's job of member-1 is taken by detector-a, which then dies mid-check.
	w.clock.Add(time.Hour + time.Second)
	before := w.sim.Calls()["IAM.GetAccountSummary"]
	if _, _, err := a.MaybeSweep(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "detector-a checking", func() bool { return w.sim.Calls()["IAM.GetAccountSummary"] >= before+2 })
	connA.NC.Close()
	w.sim.SetAccountLatency(member(1), 0)
	bdet := newDetector(t, w, cfg, bustest.Connect(t, b))
	detector.SetAckWait(bdet, ackWait)
	runDetector(t, bdet)
	got := waitFindings(t, b, 1, isMember(first.SweepID))
	if got[0].Failed() {
		t.Errorf("finding = %+v", got[0])
	}
}

// Without permission for the organization's tree the listing falls back to
// ListAccounts; the sweep's jobs then read each account's OU path (ListParents).
func TestListingFallsBackToListAccounts(t *testing.T) {
	w := newWorld(t, 3, true, awssim.Options{})
	ou := w.sim.AddOU("", "Prod")
	w.sim.MoveAccount(member(2), ou)
	b := bustest.New(t)
	d := interceptedDetector(t, w, b, func(target, _ string) string {
		if target == "AWSOrganizationsV20161128.ListRoots" {
			return "AccessDeniedException"
		}
		return ""
	})
	runDetector(t, d)
	got := perAccount(t, waitFindings(t, b, 4, bySource(model.SourceSweep)))
	if got[member(2)].OUPath != "Root/Prod" || got[member(1)].OUPath != "Root" || got[member(2)].Failed() {
		t.Errorf("OU paths without the tree: member-1 %q, member-2 %q", got[member(1)].OUPath, got[member(2)].OUPath)
	}
	if n := w.sim.Calls()["Organizations.ListAccounts"]; n == 0 {
		t.Error("ListAccounts not called")
	}
	if !strings.Contains(w.logs.String(), "cannot list the organization's tree") {
		t.Error("the fallback is not logged")
	}
}
