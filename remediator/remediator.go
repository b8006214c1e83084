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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

// Config of the remediator.
type Config struct {
	// APIToken is the bearer token of the case API (ROOTWARDEN_API_TOKEN); empty
	// turns the API off (404).
	APIToken string
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
	// CheckTimeout bounds one on-demand check (default 30s).
	CheckTimeout time.Duration
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
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Metrics registers rootwarden_remediator_* metrics when set.
	Metrics prometheus.Registerer

	// hooks for crash tests: a non-nil error stops the work at that point.
	afterTicketCreate func(caseID string) error
	afterSave         func(account string) error
}

// Remediator drives cases.
type Remediator struct {
	cfg     Config
	log     *slog.Logger
	b       *bus.Bus
	checker model.Checker
	tracker model.Tracker

	transitions *prometheus.CounterVec
	openCases   prometheus.Gauge

	mu sync.Mutex // guards running, and orders workers.Add before Run's Wait
	// running marks accounts whose work this instance runs now.
	running map[string]bool
	// workers are the work goroutines started by message handlers; Run waits for them.
	workers sync.WaitGroup
	// seen is the newest observation applied per account (steady.go).
	seen seenTimes
	// due is the state of the timers over the due-time index (due.go).
	due dueIndex
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
		cfg.CheckTimeout = 30 * time.Second
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 5 * time.Second
	}
	if cfg.StaleWork <= 0 {
		cfg.StaleWork = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Remediator{cfg: cfg, log: log.With("component", "remediator"), b: b, checker: checker, tracker: tr,
		running: map[string]bool{}}
	r.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rootwarden_remediator_transitions_total", Help: "Case events by type and resulting state."},
		[]string{"type", "to"})
	r.openCases = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rootwarden_remediator_active_cases", Help: "Cases not resolved, as of the last scan."})
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{r.transitions, r.openCases} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("remediator: register metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Run consumes findings and actions, polls tickets and scans for expiry and unfinished
// work until ctx ends.
func (r *Remediator) Run(ctx context.Context) error {
	findings, err := r.consumer(ctx, bus.StreamFindings, bus.ConsumerRemediatorFind)
	if err != nil {
		return err
	}
	actions, err := r.consumer(ctx, bus.StreamActions, bus.ConsumerRemediatorAction)
	if err != nil {
		return err
	}
	// Resume whatever a previous instance left unfinished before taking new work.
	r.scan(ctx, true)
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

	poll := time.NewTicker(r.cfg.TicketPollInterval)
	defer poll.Stop()
	scan := time.NewTicker(r.cfg.ExpiryScanInterval)
	defer scan.Stop()
	r.log.Info("remediator running", "ticket_poll", r.cfg.TicketPollInterval, "scan", r.cfg.ExpiryScanInterval,
		"assume_root", r.cfg.AssumeRoot)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
			r.pollTickets(ctx)
		case <-scan.C:
			r.scan(ctx, false)
		}
	}
}

func (r *Remediator) consumer(ctx context.Context, stream, durable string) (jetstream.Consumer, error) {
	c, err := r.b.JS.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       2 * time.Minute,
		MaxDeliver:    maxDeliver,
		MaxAckPending: 256,
		Description:   "rootwarden remediator",
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", durable, stream, err)
	}
	return c, nil
}

// onFinding handles one message of RW_FINDINGS and ends in exactly one of Ack,
// NakWithDelay or Term.
func (r *Remediator) onFinding(ctx context.Context, m jetstream.Msg) {
	var o model.Observation
	if err := json.Unmarshal(m.Data(), &o); err != nil || o.AccountID == "" || m.Subject() != bus.FindingSubject(o.AccountID) {
		r.log.Warn("malformed finding dropped", "subject", m.Subject(), "err", errOr(err, "no account id, or not the subject's account"))
		_ = m.TermWithReason("malformed finding")
		return
	}
	d, err := r.handleFinding(ctx, o)
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
	err := r.HandleAction(ctx, a)
	r.settle(ctx, m, a.AccountID, "action "+a.ID, err)
	if err == nil {
		r.workAsync(ctx, a.AccountID)
	}
}

// workAsync runs the account's owed work beside the consumer, so that a slow ticket
// system or check for one account does not hold up the messages of every other
// account (work itself keeps to one goroutine per account).
func (r *Remediator) workAsync(ctx context.Context, account string) {
	r.mu.Lock()
	if ctx.Err() != nil { // shutting down: the scan at the next start resumes it
		r.mu.Unlock()
		return
	}
	r.workers.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.workers.Done()
		r.work(ctx, account)
	}()
}

func (r *Remediator) settle(ctx context.Context, m jetstream.Msg, account, what string, err error) {
	log := r.log.With("account", account)
	if err == nil {
		if aerr := m.Ack(); aerr != nil {
			log.Warn("ack failed", "msg", what, "err", aerr)
		}
		return
	}
	code := model.ErrorCode(err)
	if code == model.CodeInvalid || code == model.CodeNotFound || code == model.CodeUnauthorized {
		log.Warn("message refused", "msg", what, "err", err)
		r.recordRefusal(ctx, account, what, err)
		_ = m.TermWithReason(truncate(err.Error(), 200))
		return
	}
	var delivered uint64 = 1
	if md, merr := m.Metadata(); merr == nil {
		delivered = md.NumDelivered
	}
	if delivered >= maxDeliver {
		// JetStream would stop redelivering without a word: say so, on the case too.
		log.Error("message dropped: still failing after the last delivery", "msg", what, "delivered", delivered, "err", err)
		r.recordRefusal(ctx, account, what, fmt.Errorf("gave up after %d deliveries: %w", delivered, err))
		_ = m.TermWithReason(truncate(fmt.Sprintf("gave up after %d deliveries: %s", delivered, err), 200))
		return
	}
	d := retryDelay(r.cfg.RetryDelay, delivered)
	if delivered > 1 {
		log.Warn("message will be retried", "msg", what, "delivered", delivered, "retry_in", d, "err", err)
	} else {
		log.Debug("message will be retried", "msg", what, "retry_in", d, "err", err)
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
	return d, err
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
