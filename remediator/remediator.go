// Package remediator owns the case lifecycle: it is the only writer of case state. It
// turns findings into cases, applies the actions humans send, opens and follows
// tickets, asks the detector to verify, deletes root keys through sts:AssumeRoot when
// that is enabled and approved, and publishes every transition as a case event (the
// audit log). It never talks to Slack: the notifier projects case events there.
//
// The state machine is in machine.go (a pure function); store.go keeps state in the
// rw_cases bucket with compare-and-set and publishes events through an outbox;
// work.go runs the side effects; api.go serves the read-only case API.
package remediator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/metrics"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/wait"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// Config of the remediator.
type Config struct {
	// APIToken is the bearer token of the case API (ROOTWARDEN_API_TOKEN); empty
	// turns the API off (404).
	APIToken string
	// Evidence configures the evidence API for auditors (evidence.go).
	Evidence EvidenceConfig
	// AssumeRoot enables deletion of a member account's root keys through
	// sts:AssumeRoot after an approval (ROOTWARDEN_ASSUME_ROOT). Needs Deleter.
	AssumeRoot bool
	// Deleter deletes root keys through AssumeRoot (NewAWSRootKeyDeleter). Required
	// when AssumeRoot is true; ignored otherwise.
	Deleter RootKeyDeleter
	// TicketPollInterval is how often ticketed cases' tickets are read (default 1m).
	TicketPollInterval time.Duration
	// ExpiryScanInterval is how often cases are scanned for expired risk acceptances
	// and unfinished work (default 1m).
	ExpiryScanInterval time.Duration
	// MaxActionIDs bounds the action ids remembered per case (default 64).
	MaxActionIDs int
	// CheckTimeout bounds one on-demand check (default DefaultCheckTimeout). It must
	// not be shorter than the detector's account timeout (ROOTWARDEN_ACCOUNT_TIMEOUT),
	// or the remediator gives up on checks the detector completes.
	CheckTimeout time.Duration
	// TicketTimeout bounds one tracker operation with its retries (default 2m).
	TicketTimeout time.Duration
	// VerifyTimeout time-boxes verifying (default DefaultVerifyTimeout).
	VerifyTimeout time.Duration
	// Workers bounds the accounts whose work (tickets, checks, deletions) runs at
	// once (default 16); each account's work runs on one goroutine at a time.
	Workers int
	// LeaseTTL is how long a claim on an account's owed work lasts unless renewed
	// (default 10s; renewed every third of it while the work runs). Another replica
	// runs the work only when the claim lapsed.
	LeaseTTL time.Duration
	// AckWait of the consumers (default 10s; handlers heartbeat with InProgress).
	AckWait time.Duration
	// MaxDeliver of the consumers (default 20).
	MaxDeliver int
	// Instance names this replica in work claims (default a random id).
	Instance string
	// UncheckedAfter is how many failed checks in a row of an account without a
	// case make it reported as unchecked (default DefaultUncheckedAfter).
	UncheckedAfter int
	// RetryDelay is the NakWithDelay after a transient failure (default 5s); it
	// doubles with each further delivery, up to maxRetryDelay.
	RetryDelay time.Duration
	// StaleWork is how old unfinished work must be before a periodic scan (rather than
	// the instance that recorded it) runs it (default 1m). The scan at start-up runs
	// all of it.
	StaleWork time.Duration
	// CheckedEvery is how far a case's LastCheckedAt may lag before an observation
	// that changes nothing else writes it (default DefaultCheckedEvery; steady.go).
	CheckedEvery time.Duration
	// ActivityAnswerWithin is how long the owner has to answer a root activity
	// question before it escalates (default DefaultActivityAnswerWithin; activity.go).
	ActivityAnswerWithin time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// SecurityHub, when set, makes the account's Security Hub findings follow the
	// case (securityhub.go; ROOTWARDEN_SECURITYHUB=out|both).
	SecurityHub FindingMarker
	// SecurityHubTimeout bounds one marking of a case's findings (default 2m).
	SecurityHubTimeout time.Duration
	// SecurityHubSyncInterval is how often the findings of running cases are read
	// again, so that a finding AWS reset to NEW is marked again (default 1h).
	SecurityHubSyncInterval time.Duration
	// Metrics registers rootwarden_remediator_* metrics when set.
	Metrics prometheus.Registerer

	// hooks for crash tests: a non-nil error stops the work at that point.
	afterTicketCreate func(caseID string) error
	afterSave         func(account string) error
	// dieOnDelivery, when it returns true, leaves the message unsettled as a process
	// that died while handling it would.
	dieOnDelivery func(subject string) bool
}

// Remediator drives cases.
type Remediator struct {
	cfg     Config
	log     *slog.Logger
	b       *bus.Bus
	checker model.Checker
	tracker model.Tracker

	transitions *prometheus.CounterVec
	openCases   prometheus.Collector // a gauge read at scrape time (metrics.ActiveCases)
	unchecked   prometheus.Collector // a gauge read at scrape time (coverage)
	// coverage is the live copy of the unchecked accounts (internal/bus coverage.go),
	// set by Run.
	coverage atomic.Pointer[bus.Coverage]

	mu sync.Mutex // guards running, polling, and orders workers.Add before Run's Wait
	// running marks accounts whose work this instance runs now.
	running map[string]bool
	// checking marks accounts whose check an action asked for runs now outside the
	// work (checkAtOnce).
	checking map[string]bool
	// polling marks accounts whose ticket this instance reads now.
	polling map[string]bool
	// sem bounds the work running at once (Workers).
	sem chan struct{}

	uncheckedMu sync.Mutex
	// uncheckedKnown are the accounts with a failure count in rw_sched (nil: not read yet).
	uncheckedKnown map[string]bool
	// workers are the work goroutines started by message handlers; Run waits for them.
	workers sync.WaitGroup
	// applying serialises apply per account (store.go).
	applying accountLocks
	// seen is the newest observation applied per account (steady.go).
	seen seenTimes
	// due is the state of the timers over the due-time index (due.go).
	due dueIndex
	// act counts root activity questions (activity.go).
	act activityMetrics
	// scannedAtStart is closed once Run's start-up scan has read every case (tests
	// wait for it before counting reads).
	scannedAtStart     chan struct{}
	scannedAtStartOnce sync.Once
}

// New builds a remediator. tracker nil → the built-in tracker on the bus.
func New(cfg Config, log *slog.Logger, b *bus.Bus, checker model.Checker, tr model.Tracker) (*Remediator, error) {
	if b == nil {
		return nil, errors.New("remediator: no bus")
	}
	if checker == nil {
		return nil, errors.New("remediator: no checker")
	}
	if cfg.AssumeRoot && cfg.Deleter == nil {
		return nil, errors.New("remediator: ROOTWARDEN_ASSUME_ROOT is set but no AssumeRoot deleter was configured")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if tr == nil {
		tr = tracker.NewBuiltin(b)
	}
	if cfg.TicketPollInterval <= 0 {
		cfg.TicketPollInterval = time.Minute
	}
	if cfg.ExpiryScanInterval <= 0 {
		cfg.ExpiryScanInterval = time.Minute
	}
	if cfg.MaxActionIDs <= 0 {
		cfg.MaxActionIDs = DefaultMaxActionIDs
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	if cfg.TicketTimeout <= 0 {
		cfg.TicketTimeout = 2 * time.Minute
	}
	if cfg.VerifyTimeout <= 0 {
		cfg.VerifyTimeout = DefaultVerifyTimeout
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 10 * time.Second
	}
	if cfg.MaxDeliver <= 0 {
		cfg.MaxDeliver = maxDeliver
	}
	if cfg.UncheckedAfter <= 0 {
		cfg.UncheckedAfter = DefaultUncheckedAfter
	}
	if cfg.Instance == "" {
		cfg.Instance = randomID()
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	if cfg.StaleWork <= 0 {
		cfg.StaleWork = time.Minute
	}
	if cfg.SecurityHubTimeout <= 0 {
		cfg.SecurityHubTimeout = 2 * time.Minute
	}
	if cfg.SecurityHubSyncInterval <= 0 {
		cfg.SecurityHubSyncInterval = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ActivityAnswerWithin <= 0 {
		cfg.ActivityAnswerWithin = DefaultActivityAnswerWithin
	}
	r := &Remediator{cfg: cfg, log: log.With("component", "remediator"), b: b, checker: checker, tracker: tr,
		scannedAtStart: make(chan struct{}),
		running:        map[string]bool{}, checking: map[string]bool{}, polling: map[string]bool{}, sem: make(chan struct{}, cfg.Workers)}
	r.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rootwarden_remediator_transitions_total", Help: "Case events by type and resulting state."},
		[]string{"type", "to"})
	// Both gauges move with the facts, not with the 6-hourly full pass (issue 19
	// item 12): active cases as every saved event updates the case view
	// (internal/metrics), unchecked accounts as the remediator's records do.
	r.openCases = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rootwarden_remediator_active_cases", Help: "Cases not resolved (this remediator's view: its last full pass and every event it saved since)."},
		func() float64 { return float64(metrics.ActiveCases()) })
	r.unchecked = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "rootwarden_remediator_unchecked_accounts", Help: "Accounts whose checks failed several times in a row, still failing (GET /api/v1/unchecked lists them)."},
		func() float64 { return float64(r.uncheckedNow()) })
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{r.transitions, r.openCases, r.unchecked} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("remediator: register metrics: %w", err)
			}
		}
	}
	var err error
	if r.act, err = newActivityMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	return r, nil
}

// DefaultCheckTimeout bounds an on-demand check: the detector's default account
// timeout (60s) plus a margin for the request and the answer.
const DefaultCheckTimeout = 75 * time.Second

// Run consumes findings and actions, polls tickets and scans for expiry and unfinished
// work until ctx ends. Consuming starts at once; the scan for work a previous instance
// left unfinished runs beside it, and no loop waits on a ticket system or AWS: that
// work runs on the bounded per-account pool.
func (r *Remediator) Run(ctx context.Context) error {
	findings, err := r.consumer(ctx, bus.StreamFindings, bus.ConsumerRemediatorFind)
	if err != nil {
		return err
	}
	actions, err := r.consumer(ctx, bus.StreamActions, bus.ConsumerRemediatorAction)
	if err != nil {
		return err
	}
	// Runs last (defers run last-in first-out), after the consumers have stopped: end
	// ctx, so workAsync starts no more work (it checks ctx under mu), then wait for
	// the work already started.
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		r.mu.Lock()
		r.mu.Unlock()
		r.workers.Wait()
	}()
	cov, err := r.b.WatchCoverage(ctx, nil)
	if err != nil {
		return err
	}
	r.coverage.Store(cov)
	adv, err := r.watchMaxDeliveries(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = adv.Unsubscribe() }()

	errh := jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if ctx.Err() == nil {
			r.log.Warn("consumer error", "err", err)
		}
	})
	fc, err := findings.Consume(func(m jetstream.Msg) { r.onFinding(ctx, m) }, errh)
	if err != nil {
		return fmt.Errorf("consume findings: %w", err)
	}
	defer fc.Stop()
	ac, err := actions.Consume(func(m jetstream.Msg) { r.onAction(ctx, m) }, errh)
	if err != nil {
		return fmt.Errorf("consume actions: %w", err)
	}
	defer ac.Stop()

	// Resume whatever a previous instance left unfinished, beside the consumers.
	r.goTracked(ctx, func() {
		r.scan(ctx, true, false)
		r.scannedAtStartOnce.Do(func() { close(r.scannedAtStart) })
	})
	if r.cfg.SecurityHub != nil {
		r.goTracked(ctx, func() { r.every(ctx, r.cfg.SecurityHubSyncInterval, func() { r.syncSecurityHub(ctx, false) }) })
	}
	r.goTracked(ctx, func() { r.every(ctx, r.cfg.TicketPollInterval, func() { r.pollTickets(ctx, false) }) })
	r.goTracked(ctx, func() { r.every(ctx, r.cfg.ExpiryScanInterval, func() { r.scan(ctx, false, false) }) })
	r.goTracked(ctx, func() { r.activityTimer(ctx) }) // root activity deadlines (activity.go)
	r.log.Info("remediator running", "ticket_poll", r.cfg.TicketPollInterval, "scan", r.cfg.ExpiryScanInterval,
		"assume_root", r.cfg.AssumeRoot, "instance", r.cfg.Instance)
	<-ctx.Done()
	return nil
}

// every runs f every d until ctx ends; f runs on its own loop, so a slow f delays
// only itself.
func (r *Remediator) every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// goTracked runs f on a goroutine Run waits for; none once ctx ended.
func (r *Remediator) goTracked(ctx context.Context, f func()) bool {
	r.mu.Lock()
	if ctx.Err() != nil {
		r.mu.Unlock()
		return false
	}
	r.workers.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.workers.Done()
		f()
	}()
	return true
}

func (r *Remediator) consumer(ctx context.Context, stream, durable string) (jetstream.Consumer, error) {
	c, err := r.b.JS.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:   durable,
		AckPolicy: jetstream.AckExplicitPolicy,
		// Short: a message in flight when the process died is redelivered within
		// seconds; handlers that take longer say so with InProgress.
		AckWait:       r.cfg.AckWait,
		MaxDeliver:    r.cfg.MaxDeliver,
		MaxAckPending: 256,
		Description:   "rootwarden remediator",
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", durable, stream, err)
	}
	return c, nil
}

// heartbeat tells JetStream the message is still being worked on, every third of
// AckWait, until the returned stop is called.
func (r *Remediator) heartbeat(m jetstream.Msg) (stop func()) {
	return wait.Every(r.cfg.AckWait/3, func() bool { _ = m.InProgress(); return true })
}

// onFinding handles one message of RW_FINDINGS and ends in exactly one of Ack,
// NakWithDelay or Term.
func (r *Remediator) onFinding(ctx context.Context, m jetstream.Msg) {
	if strings.HasSuffix(m.Subject(), activitySubjectSuffix) {
		r.onActivityReport(ctx, m) // root activity (activity.go)
		return
	}
	var o model.Observation
	if err := json.Unmarshal(m.Data(), &o); err != nil || o.AccountID == "" || m.Subject() != bus.FindingSubject(o.AccountID) {
		r.log.Warn("malformed finding dropped", "subject", m.Subject(), "err", errOr(err, "no account id, or not the subject's account"))
		_ = m.TermWithReason("malformed finding")
		return
	}
	if h := r.cfg.dieOnDelivery; h != nil && h(m.Subject()) {
		return
	}
	stop := r.heartbeat(m)
	d, err := r.handleFinding(ctx, o)
	stop()
	r.settle(ctx, m, o.AccountID, "finding "+o.ID, err)
	// Work is owed only after a change; an unchanged observation costs no goroutine and
	// no reads (work owed from before is found by the due-time index: due.go).
	if err == nil && d.Changed() {
		r.workAsync(ctx, o.AccountID)
	}
}

// onAction handles one message of RW_ACTIONS.
func (r *Remediator) onAction(ctx context.Context, m jetstream.Msg) {
	var a model.Action
	if err := json.Unmarshal(m.Data(), &a); err != nil || a.AccountID == "" || a.ID == "" || m.Subject() != bus.ActionSubject(a.AccountID) {
		r.log.Warn("malformed action dropped", "subject", m.Subject(), "err", errOr(err, "no account or action id, or not the subject's account"))
		_ = m.TermWithReason("malformed action")
		return
	}
	if h := r.cfg.dieOnDelivery; h != nil && h(m.Subject()) {
		return
	}
	if isActivityAction(a.Kind) {
		r.onActivityAction(ctx, m, a) // root activity (activity.go)
		return
	}
	stop := r.heartbeat(m)
	// A check the action asks for (the verification of "I deleted the keys") starts
	// as soon as the decision is stored, while its events are published; the outbox
	// is emptied beside it, and the work reads the case only once it is empty.
	checking := false
	_, err := r.applyEmptyingLater(ctx, a.AccountID, func(now time.Time) Input { return Input{At: now, Action: &a} },
		func(d Decision, rec *record) {
			if verify, asked := checkAsked(a, d, rec); asked {
				checking = true
				r.checkAtOnce(ctx, *d.Case, verify)
			}
		})
	stop()
	r.settle(ctx, m, a.AccountID, "action "+a.ID, err)
	if err == nil && !checking {
		r.workAsync(ctx, a.AccountID)
	}
}

// workAsync runs the account's owed work beside the consumer, so that a slow ticket
// system or check for one account does not hold up the messages of every other
// account (work itself keeps to one goroutine per account).
func (r *Remediator) workAsync(ctx context.Context, account string) {
	// Shutting down: nothing starts; the scan at the next start resumes it.
	r.goTracked(ctx, func() { r.work(ctx, account) })
}

func (r *Remediator) settle(ctx context.Context, m jetstream.Msg, account, what string, err error) {
	log := r.log.With("account", account)
	if err == nil {
		if aerr := m.Ack(); aerr != nil {
			log.Warn("ack failed", "message", what, "err", aerr)
		}
		return
	}
	code := model.ErrorCode(err)
	if code == model.CodeInvalid || code == model.CodeNotFound || code == model.CodeUnauthorized {
		log.Warn("message refused", "message", what, "err", err)
		r.recordRefusal(ctx, account, what, err)
		_ = m.TermWithReason(truncate(err.Error(), 200))
		return
	}
	var delivered uint64 = 1
	if md, merr := m.Metadata(); merr == nil {
		delivered = md.NumDelivered
	}
	if delivered >= uint64(r.cfg.MaxDeliver) {
		// JetStream would stop redelivering without a word: say so, on the case too.
		log.Error("message dropped: still failing after the last delivery", "message", what, "delivered", delivered, "err", err)
		r.recordRefusal(ctx, account, what, fmt.Errorf("gave up after %d deliveries: %w", delivered, err))
		_ = m.TermWithReason(truncate(fmt.Sprintf("gave up after %d deliveries: %s", delivered, err), 200))
		return
	}
	d := retryDelay(r.cfg.RetryDelay, delivered)
	if delivered > 1 {
		log.Warn("message will be retried", "message", what, "delivered", delivered, "retry_in", d, "err", err)
	} else {
		log.Debug("message will be retried", "message", what, "retry_in", d, "err", err)
	}
	_ = m.NakWithDelay(d)
}

// maxDeliver bounds the deliveries of one finding or action; with retryDelay's
// backoff they span more than an hour of trouble (the default RetryDelay of 5s).
const maxDeliver = 20

// maxRetryDelay caps the backoff between deliveries.
const maxRetryDelay = 5 * time.Minute

// retryDelay is the NakWithDelay after the delivered-th failed delivery: base,
// doubling per delivery, at most maxRetryDelay (or base when base is larger).
func retryDelay(base time.Duration, delivered uint64) time.Duration {
	limit := max(base, maxRetryDelay)
	d := base
	for i := uint64(1); i < delivered && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// HandleFinding applies one observation (what the findings consumer does per message).
func (r *Remediator) HandleFinding(ctx context.Context, o model.Observation) error {
	_, err := r.handleFinding(ctx, o)
	return err
}

func (r *Remediator) handleFinding(ctx context.Context, o model.Observation) (Decision, error) {
	seen := r.seen.get(o.AccountID)
	d, err := r.apply(ctx, o.AccountID, func(now time.Time) Input { return Input{At: now, Finding: &o, Seen: seen} })
	if err == nil && !o.Failed() {
		r.seen.note(o.AccountID, o.ObservedAt)
	}
	if err == nil && (o.Failed() || r.mayBeUnchecked(ctx, o.AccountID)) {
		r.noteCheck(ctx, o) // with or without a case: an account not checked is a blind spot
	}
	return d, err
}

// policy adds the configured policy to an input.
func (r *Remediator) policy(in Input) Input {
	in.AssumeRoot = r.cfg.AssumeRoot
	in.MaxActionIDs = r.cfg.MaxActionIDs
	in.CheckedEvery = r.cfg.CheckedEvery
	in.VerifyTimeout = r.cfg.VerifyTimeout
	return in
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// HandleAction applies one action (what the actions consumer does per message).
func (r *Remediator) HandleAction(ctx context.Context, a model.Action) error {
	_, err := r.apply(ctx, a.AccountID, func(now time.Time) Input { return Input{At: now, Action: &a} })
	return err
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
