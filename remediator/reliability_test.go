package remediator

// Faults a real organization produces: trackers that refuse, hang or race, several
// replicas, restarts. Each test here failed on the code before the fix.

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
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
	"github.com/rootwarden/rootwarden/internal/trackerfake"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// stuckTracker is the built-in tracker with faults: Reopen refused (a Jira workflow
// without a way out of Done), and calls for chosen accounts that hang until the
// caller gives up (a ticket system that accepted the connection and never answers).
type stuckTracker struct {
	*tracker.Builtin
	refuseReopen bool
	hangAccount  string // Open and Status for this account's cases hang
	hangs        atomic.Int32
	reopens      atomic.Int32
}

func (s *stuckTracker) hang(ctx context.Context, caseID string) error {
	if s.hangAccount == "" || !strings.HasPrefix(caseID, s.hangAccount) {
		return nil
	}
	s.hangs.Add(1)
	<-ctx.Done()
	return model.Wrap(model.CodeTransient, ctx.Err(), "ticket system did not answer")
}

func (s *stuckTracker) Open(ctx context.Context, c model.Case, link string) (model.TicketRef, error) {
	if err := s.hang(ctx, c.ID); err != nil {
		return model.TicketRef{}, err
	}
	return s.Builtin.Open(ctx, c, link)
}

func (s *stuckTracker) Status(ctx context.Context, ref model.TicketRef) (model.TicketStatus, error) {
	tk, _, err := s.Get(ctx, ref.ID)
	if err == nil {
		if err := s.hang(ctx, tk.CaseID); err != nil {
			return model.TicketStatus{}, err
		}
	}
	return s.Builtin.Status(ctx, ref)
}

func (s *stuckTracker) Reopen(ctx context.Context, ref model.TicketRef, text string) error {
	s.reopens.Add(1)
	if s.refuseReopen {
		_ = s.Comment(ctx, ref, text) // Jira posts the comment, then finds no transition
		return model.Errorf(model.CodeInvalid, "jira issue %s: no suitable transition among 0", ref.ID)
	}
	return s.Builtin.Reopen(ctx, ref, text)
}

func TestDoneTicketThatCannotBeReopenedDoesNotLoop(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	resp := startResponder(t, b, clk)
	resp.set(acct, true) // the assignee closed the ticket without deleting the key
	tr := &stuckTracker{Builtin: tracker.NewBuiltin(b), refuseReopen: true}
	r := newRem(t, b, clk, tr)
	rec := approvedCase(t, r)
	if err := tr.MarkDone(ctx, rec.Ticket.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		r.PollTicketsNow(ctx)
		clk.Add(2 * time.Minute)
	}
	evs := allEvents(t, b, acct)
	verifying := 0
	var reopenFailed *model.CaseEvent
	for i, e := range evs {
		if e.Type == model.EventVerifying {
			verifying++
		}
		if strings.Contains(e.Reason, "could not reopen ticket") {
			reopenFailed = &evs[i]
		}
	}
	if verifying != 1 {
		t.Fatalf("one closure of the ticket was verified %d times in 5 polls: %v", verifying, eventTypes(evs))
	}
	if reopenFailed == nil {
		t.Fatalf("no case event says the ticket could not be reopened: %v", eventTypes(evs))
	}
	c := getCase(t, r, acct)
	if c.State != model.StateTicketed || !strings.Contains(c.TicketError, "could not reopen") {
		t.Fatalf("case %s, ticket error %q", c.State, c.TicketError)
	}
	// A new closure (the assignee reopened and closed it again) is verified again.
	if err := tr.Builtin.Reopen(ctx, *rec.Ticket, ""); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	if err := tr.MarkDone(ctx, rec.Ticket.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	r.PollTicketsNow(ctx)
	n := 0
	for _, e := range allEvents(t, b, acct) {
		if e.Type == model.EventVerifying {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("a second closure made %d verifications in all, want 2", n)
	}
}

func TestHungTicketCallDoesNotStopRiskExpiryOfOtherAccounts(t *testing.T) {
	const other = "333333333333"
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	resp := startResponder(t, b, clk)
	resp.set(acct, true)
	tr := &stuckTracker{Builtin: tracker.NewBuiltin(b)}
	r := newRem(t, b, clk, tr, func(c *Config) {
		c.TicketPollInterval = 20 * time.Millisecond
		c.ExpiryScanInterval = 20 * time.Millisecond
	})
	rec := approvedCase(t, r)
	if err := tr.MarkDone(ctx, rec.Ticket.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	tr.hangAccount = acct // from now on the ticket system hangs for acct's ticket
	if err := r.HandleFinding(ctx, observation(other, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	exp := clk.Now().Add(time.Hour)
	a := action(model.ActionAcceptRisk, other, getCase(t, r, other).ID)
	a.Reason, a.Expires = "legacy", &exp
	if err := r.HandleAction(ctx, a); err != nil {
		t.Fatal(err)
	}
	runRem(t, r)
	testutil.Eventually(t, "a ticket call hangs", func() bool { return tr.hangs.Load() > 0 })
	clk.Add(2 * time.Hour)
	waitState(t, r, other, model.StateOpen) // the acceptance expired although acct's ticket call hangs
}

func TestStartupScanDoesNotHoldUpFindings(t *testing.T) {
	const other = "333333333333"
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	startResponder(t, b, clk)
	tr := &stuckTracker{Builtin: tracker.NewBuiltin(b), hangAccount: acct}
	r := newRem(t, b, clk, tr)
	// A previous instance left acct's ticket to open; the ticket system now hangs.
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, getCase(t, r, acct).ID)); err != nil {
		t.Fatal(err)
	}
	runRem(t, r)
	testutil.Eventually(t, "the start-up scan is stuck on acct's ticket", func() bool { return tr.hangs.Load() > 0 })
	publishFinding(t, b, observation(other, true, model.SourceSweep, clk.Now()))
	waitState(t, r, other, model.StateOpen)
}

// racyTracker opens tickets as GitHub and Jira do: find by label, then create, which
// is not atomic across processes. Its creation is slow, so two replicas overlap.
type racyTracker struct {
	mu      sync.Mutex
	tickets map[string][]model.TicketRef // by case id
	creates atomic.Int32
	closed  []string
	delay   time.Duration
}

func (r *racyTracker) Open(ctx context.Context, c model.Case, _ string) (model.TicketRef, error) {
	r.mu.Lock()
	found := r.tickets[c.ID]
	r.mu.Unlock()
	if len(found) > 0 {
		return found[0], nil
	}
	time.Sleep(r.delay)
	n := r.creates.Add(1)
	ref := model.TicketRef{System: "github", ID: strconv.Itoa(int(n)), URL: "https://github.example/i/" + strconv.Itoa(int(n))}
	r.mu.Lock()
	r.tickets[c.ID] = append(r.tickets[c.ID], ref)
	r.mu.Unlock()
	return ref, nil
}
func (r *racyTracker) Comment(context.Context, model.TicketRef, string) error { return nil }
func (r *racyTracker) Close(_ context.Context, ref model.TicketRef, _ string) error {
	r.mu.Lock()
	r.closed = append(r.closed, ref.ID)
	r.mu.Unlock()
	return nil
}
func (r *racyTracker) Reopen(context.Context, model.TicketRef, string) error { return nil }
func (r *racyTracker) Status(context.Context, model.TicketRef) (model.TicketStatus, error) {
	return model.TicketStatus{}, nil
}

func TestTwoReplicasOpenOneTicket(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	startResponder(t, b, clk)
	tr := &racyTracker{tickets: map[string][]model.TicketRef{}, delay: 300 * time.Millisecond}
	r1 := newRem(t, b, clk, tr)
	r2 := newRem(t, b, clk, tr)
	if err := r1.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r1.HandleAction(ctx, action(model.ActionApprove, acct, getCase(t, r1, acct).ID)); err != nil {
		t.Fatal(err)
	}
	// Both replicas restart at once (a rolling deploy) and find the same owed work.
	var wg sync.WaitGroup
	for _, r := range []*Remediator{r1, r2} {
		wg.Add(1)
		go func() { defer wg.Done(); r.scan(ctx, true, true) }()
	}
	wg.Wait()
	testutil.Eventually(t, "ticket linked", func() bool { c := getCase(t, r1, acct); return c.Ticket != nil })
	if n := tr.creates.Load(); n != 1 {
		t.Fatalf("two replicas created %d tickets for one case", n)
	}
}

func TestASecondLinkedTicketIsClosedAndTheFirstKept(t *testing.T) {
	c := caseIn(model.StateTicketed) // linked to RW-1
	second := model.TicketRef{System: "builtin", ID: "RW-2"}
	d, err := Apply(c, Input{At: t0, TicketOpened: &second})
	if err != nil {
		t.Fatal(err)
	}
	if d.Changed() && d.Case.Ticket.ID != "RW-1" {
		t.Fatalf("the case now links %s; the first ticket is orphaned", d.Case.Ticket.ID)
	}
	if len(d.TicketOps) != 1 || d.TicketOps[0].Op != TicketClose || d.TicketOps[0].Ticket.ID != "RW-2" ||
		!strings.Contains(d.TicketOps[0].Text, "RW-1") {
		t.Fatalf("ops %+v, want the duplicate closed with a pointer to the first", d.TicketOps)
	}
}

func TestConsumersRedeliverWithinSeconds(t *testing.T) {
	b := bustest.New(t)
	r := newRem(t, b, newClock(), nil)
	runRem(t, r)
	for _, name := range []string{bus.ConsumerRemediatorFind, bus.ConsumerRemediatorAction} {
		stream := bus.StreamFindings
		if name == bus.ConsumerRemediatorAction {
			stream = bus.StreamActions
		}
		var info *jetstream.ConsumerInfo
		testutil.Eventually(t, "consumer "+name, func() bool {
			c, err := b.JS.Consumer(context.Background(), stream, name)
			if err != nil {
				return false
			}
			info = c.CachedInfo()
			return true
		})
		if info.Config.AckWait > 10*time.Second {
			t.Errorf("%s: AckWait %v: work in flight when the process died waits that long after a restart", name, info.Config.AckWait)
		}
	}
	// Run is past its set-up (ending it earlier is a start-up interrupted, an error).
	<-r.scannedAtStart
}

func TestMessageThatUsedUpItsDeliveriesIsNotDroppedSilently(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	var died atomic.Int32
	r := newRem(t, b, clk, nil, func(c *Config) {
		c.AckWait, c.MaxDeliver = 300*time.Millisecond, 2
		// The process dies during every delivery JetStream makes.
		c.dieOnDelivery = func(string) bool { died.Add(1); return true }
	})
	runRem(t, r)
	publishFinding(t, b, observation(acct, true, model.SourceSweep, clk.Now()))
	testutil.Eventually(t, "two deliveries", func() bool { return died.Load() >= 2 })
	// JetStream has given up on the finding; the remediator heard of it and applied it.
	waitState(t, r, acct, model.StateOpen)
}

func TestAccountThatCannotBeCheckedSurfaces(t *testing.T) {
	const broken = "555555555555"
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	logs := &testutil.LogBuffer{}
	r, err := New(Config{Now: clk.Now, APIToken: testTk}, logs.Logger(), b, bus0{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		o := observation(broken, false, model.SourceSweep, clk.Now())
		o.ErrorCode = "AccessDenied"
		o.Error = "assume role: AccessDenied: not authorized (request id " + strconv.Itoa(i) + "abcdef0123456789abcdef)"
		if err := r.HandleFinding(ctx, o); err != nil {
			t.Fatal(err)
		}
		clk.Add(15 * time.Minute)
	}
	u, err := r.Unchecked(ctx)
	if err != nil || !strings.Contains(u[broken], "AccessDenied") {
		t.Fatalf("unchecked accounts %v %v: want %s with its failure", u, err, broken)
	}
	code, body := apiGetT(t, r.APIHandler(), "/api/v1/unchecked", testTk)
	if code != 200 || !strings.Contains(string(body), broken) {
		t.Fatalf("API: %d %s", code, body)
	}
	if n := strings.Count(logs.String(), "account cannot be checked"); n != 1 {
		t.Fatalf("reported %d times, want once:\n%s", n, logs.String())
	}
	if err := r.HandleFinding(ctx, observation(broken, false, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if u, _ := r.Unchecked(ctx); len(u) != 0 {
		t.Fatalf("a check that works did not clear it: %v", u)
	}
}

func TestHungTicketCallEndsAtItsDeadlineAndIsRecorded(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	startResponder(t, b, clk)
	tr := &stuckTracker{Builtin: tracker.NewBuiltin(b), hangAccount: acct}
	r := newRem(t, b, clk, tr, func(c *Config) { c.TicketTimeout = 200 * time.Millisecond })
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { r.work(ctx, acct); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the work still waits on a ticket system that never answers")
	}
	c := getCase(t, r, acct)
	if !strings.Contains(c.TicketError, "could not open ticket") || !slices.Contains(c.Pending, PendingOpenTicket) {
		t.Fatalf("ticket error %q, pending %v: want the failure recorded and the intent kept", c.TicketError, c.Pending)
	}
}

type failingChecker struct{ calls atomic.Int32 }

func (f *failingChecker) Check(context.Context, string, string) (model.Observation, error) {
	f.calls.Add(1)
	return model.Observation{}, model.Errorf(model.CodeInvalid, "AccountNotActive: account 222222222222 is SUSPENDED")
}

func TestVerifyingWithAFailingCheckGoesBackToTicketedOnTheScan(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	chk := &failingChecker{}
	r, err := New(Config{Now: clk.Now}, nil, b, chk, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := approvedCase(t, r)
	if err := r.HandleAction(ctx, action(model.ActionConfirmDeleted, acct, rec.ID)); err != nil {
		t.Fatal(err)
	}
	r.work(ctx, acct)
	for range 3 { // the periodic scan retries the verification; each fails the same way
		clk.Add(5 * time.Minute)
		r.ScanNow(ctx)
	}
	if c := getCase(t, r, acct); c.State != model.StateVerifying || chk.calls.Load() < 2 {
		t.Fatalf("state %s after %d checks", c.State, chk.calls.Load())
	}
	clk.Add(DefaultVerifyTimeout)
	r.ScanNow(ctx)
	c := waitState(t, r, acct, model.StateTicketed)
	evs := allEvents(t, b, acct)
	last := evs[len(evs)-1]
	if !strings.Contains(last.Reason, "could not verify") || !strings.Contains(last.Reason, "SUSPENDED") {
		t.Fatalf("last event %s %q", last.Type, last.Reason)
	}
	failed := 0
	for _, e := range evs {
		if e.Type == model.EventCheckFailed {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d check_failed events for one failure: %v", failed, eventTypes(evs))
	}
	// Back in ticketed a human can act again.
	if err := r.HandleAction(ctx, action(model.ActionConfirmDeleted, acct, c.ID)); err != nil {
		t.Fatal(err)
	}
	if c := getCase(t, r, acct); c.State != model.StateVerifying {
		t.Fatalf("I deleted after the time box: %s", c.State)
	}
}

func TestWorkClaimedByADeadReplicaIsTakenOver(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	startResponder(t, b, clk)
	r := newRem(t, b, clk, nil, func(c *Config) { c.LeaseTTL = 600 * time.Millisecond })
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := r.HandleAction(ctx, action(model.ActionApprove, acct, caseID(acct, 1))); err != nil {
		t.Fatal(err)
	}
	// A replica claimed the work and was killed (SIGKILL: it never gave the claim up).
	data, _ := json.Marshal(lease{Owner: "dead-replica", Until: time.Now().Add(600 * time.Millisecond)})
	if _, err := b.Sched.Put(ctx, leaseKey(acct), data); err != nil {
		t.Fatal(err)
	}
	runRem(t, r)
	c := waitState(t, r, acct, model.StateTicketed)
	testutil.Eventually(t, "ticket opened once the dead replica's claim lapsed", func() bool { return getCase(t, r, acct).Ticket != nil })
	if n := len(builtinTickets(t, b)); n != 1 {
		t.Fatalf("%d tickets, case %s", n, c.ID)
	}
}

// The real Jira tracker over HTTP against the Jira fake: the creation answer is
// lost, and the workflow has no way out of Done.
func TestJiraLostCreateAndFinalDoneOverTheWire(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	ctx := ctxT(t)
	resp := startResponder(t, b, clk)
	resp.set(acct, true)
	jira := trackerfake.NewJira(trackerfake.WithoutReopen())
	jira.Start()
	t.Cleanup(jira.Close)
	tr, err := tracker.NewJira(tracker.JiraConfig{BaseURL: jira.URL(), Email: "bot@example.com", APIToken: "t", Project: "SEC",
		SearchLag: 50 * time.Millisecond, Retry: tracker.Retry{Base: time.Millisecond, MaxDelay: 10 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRem(t, b, clk, tr)
	jira.FailNext(trackerfake.OpJiraCreate, 1, trackerfake.Lost())
	rec := approvedCase(t, r)
	if n := len(jira.Issues()); n != 1 {
		t.Fatalf("%d Jira issues for one case after a lost creation answer", n)
	}
	jira.SetStatus(rec.Ticket.ID, "Done", "bob")
	for range 4 {
		r.PollTicketsNow(ctx)
		clk.Add(2 * time.Minute)
	}
	verifying := 0
	for _, e := range allEvents(t, b, acct) {
		if e.Type == model.EventVerifying {
			verifying++
		}
	}
	is, _ := jira.Issue(rec.Ticket.ID)
	if verifying != 1 || len(is.Comments) != 1 {
		t.Fatalf("one closure: %d verifications, %d Jira comments %q", verifying, len(is.Comments), is.Comments)
	}
	if c := getCase(t, r, acct); !strings.Contains(c.TicketError, "could not reopen ticket "+rec.Ticket.ID) {
		t.Fatalf("ticket error %q", c.TicketError)
	}
}

// Two replicas, a GitHub that loses a share of answers, answers 5xx after acting, or
// rate-limits: every case ends with exactly one issue.
func TestOneIssuePerCaseWithTwoReplicasAndAFlakyGitHub(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	startResponder(t, b, clk)
	gh := trackerfake.NewGitHub("acme", "security")
	gh.Start()
	t.Cleanup(gh.Close)
	var n atomic.Int64
	faults := []trackerfake.Fault{
		trackerfake.Lost(), trackerfake.StatusAfter(http.StatusBadGateway), trackerfake.Status(http.StatusServiceUnavailable),
		trackerfake.SecondaryRateLimit(0),
	}
	gh.FailFunc(func(trackerfake.Op) *trackerfake.Fault {
		i := n.Add(1)
		if i%3 != 0 { // every third call misbehaves
			return nil
		}
		f := faults[int(i/3)%len(faults)]
		return &f
	})
	newTracker := func() model.Tracker {
		tr, err := tracker.NewGitHub(tracker.GitHubConfig{BaseURL: gh.URL(), Token: "t", Owner: "acme", Repo: "security",
			Retry: tracker.Retry{Base: time.Millisecond, MaxDelay: 5 * time.Millisecond}, Timeout: time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	fast := func(c *Config) { c.ExpiryScanInterval, c.StaleWork = 30*time.Millisecond, time.Nanosecond }
	r1 := newRem(t, b, clk, newTracker(), fast)
	r2 := newRem(t, b, clk, newTracker(), fast)
	runRem(t, r1)
	runRem(t, r2)
	// Time passes (retries of failed work come due in the due index's next minute).
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				clk.Add(time.Minute)
			}
		}
	}()
	var accounts []string
	t.Cleanup(func() { // what a failure needs to be understood
		if !t.Failed() {
			return
		}
		for _, a := range accounts {
			c := getCase(t, r1, a)
			l, _ := b.Sched.Get(context.Background(), leaseKey(a))
			var lv []byte
			if l != nil {
				lv = l.Value()
			}
			t.Logf("%s: %s ticket %+v pending %v ops %d updated %s ticket error %q lease %s", c.ID, c.State, c.Ticket, c.Pending,
				len(c.TicketOps), c.UpdatedAt.Format(time.TimeOnly), c.TicketError, lv)
		}
		t.Logf("due: %v; now %s", dueEntries(t, r1), clk.Now().Format(time.TimeOnly))
	})
	for i := range 8 {
		a := "3000000000" + strconv.Itoa(10+i)
		accounts = append(accounts, a)
		publishFinding(t, b, observation(a, true, model.SourceSweep, clk.Now()))
	}
	for _, a := range accounts {
		waitState(t, r1, a, model.StateOpen)
		publishAction(t, b, action(model.ActionApprove, a, getCase(t, r1, a).ID))
	}
	for _, a := range accounts {
		testutil.Eventually(t, "ticket of "+a, func() bool { c := getCase(t, r1, a); return c.Ticket != nil && len(c.Pending) == 0 })
	}
	perCase := map[string]int{}
	for _, is := range gh.Issues() {
		for _, l := range is.Labels {
			if strings.HasPrefix(l, "rootwarden-case-") && is.State == "open" {
				perCase[l]++
			}
		}
	}
	for _, a := range accounts {
		c := getCase(t, r1, a)
		if got := perCase[tracker.Label(c.ID)]; got != 1 {
			t.Errorf("case %s: %d open issues, want 1 (%d issues in all, %d calls)", c.ID, got, len(gh.Issues()), n.Load())
		}
		num, _ := strconv.Atoi(c.Ticket.ID)
		if is, _ := gh.Issue(num); is.State != "open" {
			t.Errorf("case %s links issue #%d, which is %s", c.ID, num, is.State)
		}
	}
	t.Logf("%d GitHub calls, %d faults injected, %d issues for %d cases", n.Load(), n.Load()/3, len(gh.Issues()), len(accounts))
}
