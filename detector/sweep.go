package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	rwmetrics "github.com/rootwarden/rootwarden/internal/metrics"
	"github.com/rootwarden/rootwarden/internal/model"
)

// How sweeps are shared between detector processes:
//
//   - The key "sweep" of the rw_sched bucket holds the last sweep (id, start time,
//     owner, done). Every detector polls it; when ScanInterval has passed since the last
//     start (or there was none), each tries to write the next sweep with Create (no key
//     yet) or Update at the revision it read: a compare-and-set, so exactly one wins.
//   - The winner lists the accounts and publishes one job per account on
//     rootwarden.scan.<account> (work-queue stream RW_SCAN) with Nats-Msg-Id
//     "<sweep id>/<account>", then marks the sweep done.
//   - Every detector pulls jobs from the one durable consumer detector-scan (explicit
//     ack, AckWait longer than a check, MaxDeliver bounded). A work queue hands each job
//     to one consumer; the job is acked after its observation is published, and the
//     observation's Nats-Msg-Id "sweep-<sweep id>-<account>" makes a redelivered job
//     publish no second finding.
//   - The winner renews its lease (Heartbeat) while it lists; one that dies before
//     marking the sweep done is replaced enumerateLease after its last renewal by a
//     new sweep; a sweep is postponed while jobs of the previous one are still
//     queued (up to two intervals), so a slow sweep does not pile up behind itself.
//   - A sweep whose listing failed is retried after failedRetry under the same id, so
//     the jobs it had queued already are deduplicated, not checked a second time.

const (
	sweepKey       = "sweep"
	enumerateLease = 5 * time.Minute
	failedRetry    = time.Minute
)

// sweepState is the value of the "sweep" key in rw_sched.
type sweepState struct {
	SchemaVersion int       `json:"schema_version"`
	ID            string    `json:"id"`
	StartedAt     time.Time `json:"started_at"`
	Owner         string    `json:"owner"`
	Done          bool      `json:"done"`
	// Heartbeat is renewed by the owner while it lists the accounts; the lease runs
	// from it (or from StartedAt before the first renewal).
	Heartbeat time.Time `json:"heartbeat,omitzero"`
	Accounts  int       `json:"accounts,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// scanJob is one account of one sweep on RW_SCAN.
type scanJob struct {
	SchemaVersion int    `json:"schema_version"`
	SweepID       string `json:"sweep_id"`
	accountInfo
}

// due reports whether a new sweep should start after st at now.
func (d *Detector) due(st sweepState, now time.Time) bool {
	age := now.Sub(st.StartedAt)
	switch {
	case st.Error != "":
		return age >= min(failedRetry, d.e.cfg.ScanInterval)
	case !st.Done:
		if st.Heartbeat.After(st.StartedAt) {
			age = now.Sub(st.Heartbeat)
		}
		return age >= enumerateLease // its owner died while enumerating
	}
	return age >= d.e.cfg.ScanInterval
}

// schedule polls the sweep schedule until ctx ends.
func (d *Detector) schedule(ctx context.Context) error {
	poll := min(max(d.e.cfg.ScanInterval/20, 250*time.Millisecond), 15*time.Second)
	for {
		if _, _, err := d.MaybeSweep(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("sweep scheduling failed; trying again", "error", safeError(err), "retry_in", poll.String())
		}
		if !sleepCtx(ctx, poll) {
			return nil
		}
	}
}

// MaybeSweep starts a sweep when one is due and this process wins the election for
// it; it returns the sweep id and whether this process started it. Run calls it
// periodically; tests call it after moving Now.
func (d *Detector) MaybeSweep(ctx context.Context) (string, bool, error) {
	kv := d.b.Sched
	now := d.e.cfg.Now().UTC()
	entry, err := kv.Get(ctx, sweepKey)
	var rev uint64
	retryOf := "" // a sweep whose listing failed: continue it under its id
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return "", false, fmt.Errorf("read sweep schedule: %w", err)
	default:
		rev = entry.Revision()
		var st sweepState
		if err := json.Unmarshal(entry.Value(), &st); err != nil {
			d.log.Warn("unreadable sweep schedule; replacing it", "error", err)
		} else if !d.due(st, now) {
			return "", false, nil
		} else if st.Error != "" {
			// Its jobs queued before the failure keep their Nats-Msg-Ids
			// "<sweep id>/<account>": queued again under the same id, they are
			// duplicates the stream drops, and no account is checked twice.
			retryOf = st.ID
		} else if st.Done && st.Error == "" && now.Sub(st.StartedAt) < 2*d.e.cfg.ScanInterval {
			if n, err := d.queuedJobs(ctx); err == nil && n > 0 {
				d.log.Info("previous sweep still has queued jobs; postponing the next", "sweep", st.ID, "queued", n)
				return "", false, nil
			}
		}
	}
	st := sweepState{SchemaVersion: model.SchemaVersion, ID: now.Format("20060102T150405Z") + "-" + newID()[:8],
		StartedAt: now, Owner: d.e.cfg.Instance}
	if retryOf != "" {
		st.ID = retryOf
	}
	data, _ := json.Marshal(st)
	if rev == 0 {
		rev, err = kv.Create(ctx, sweepKey, data)
	} else {
		rev, err = kv.Update(ctx, sweepKey, data, rev)
	}
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return "", false, nil // another detector won this sweep
		}
		return "", false, fmt.Errorf("claim sweep: %w", err)
	}
	d.e.met.sweeps.Inc()
	log := d.log.With("sweep", st.ID)
	log.Info("sweep started")

	n, err := d.enqueue(ctx, &st, &rev)
	if errors.Is(err, errSweepTakenOver) {
		log.Warn("sweep taken over by another detector while listing the accounts", "enqueued", n)
		return st.ID, true, err
	}
	st.Done, st.Accounts = true, n
	if err != nil {
		st.Error = safeError(err)
		log.Error("sweep enumeration failed", "error", st.Error, "enqueued", n)
	} else {
		log.Info("sweep enqueued", "accounts", n)
		rwmetrics.SweepListed(st.StartedAt, d.e.cfg.Now().UTC(), n)
	}
	data, _ = json.Marshal(st)
	if _, uerr := kv.Update(context.WithoutCancel(ctx), sweepKey, data, rev); uerr != nil {
		log.Warn("mark sweep enqueued", "error", safeError(uerr))
	}
	return st.ID, true, err
}

// errSweepTakenOver: another detector claimed the sweep while this one listed.
var errSweepTakenOver = errors.New("sweep taken over by another detector")

// enqueue lists the accounts and publishes one job each, page by page, so the
// checks start while Organizations is still listing. It renews the sweep's lease
// (Heartbeat, at revision *rev) as it goes, so a long listing is not taken over.
func (d *Detector) enqueue(ctx context.Context, st *sweepState, rev *uint64) (int, error) {
	sweepID := st.ID
	beat := st.StartedAt
	var futures []jetstream.PubAckFuture
	err := d.e.eachAccount(ctx, func(page []accountInfo) error {
		if now := d.e.cfg.Now().UTC(); now.Sub(beat) >= enumerateLease/5 {
			st.Heartbeat = now
			data, _ := json.Marshal(st)
			r, err := d.b.Sched.Update(ctx, sweepKey, data, *rev)
			switch {
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists):
				return errSweepTakenOver
			case err != nil:
				d.log.Warn("renew the sweep lease", "sweep", sweepID, "error", safeError(err))
			default:
				*rev, beat = r, now
			}
		}
		for _, a := range page {
			data, err := json.Marshal(scanJob{SchemaVersion: model.SchemaVersion, SweepID: sweepID, accountInfo: a})
			if err != nil {
				return err
			}
			f, err := d.b.JS.PublishAsync(bus.ScanSubject(a.ID), data, jetstream.WithMsgID(sweepID+"/"+a.ID))
			if err != nil {
				return fmt.Errorf("publish sweep job for %s: %w", a.ID, err)
			}
			futures = append(futures, f)
		}
		return nil
	})
	var errs []error
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	n := len(futures) - len(errs)
	if err != nil {
		return n, err
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("publish %d sweep jobs: %w", len(errs), errs[0])
	}
	return n, nil
}

// queuedJobs counts jobs of RW_SCAN not yet handed to a detector. Jobs in flight are
// not counted (they end within a check's time), nor are jobs that used up MaxDeliver:
// the server keeps those in the stream until MaxAge but never delivers them again, so
// counting them would postpone every sweep for a day. Before the shared consumer
// exists, every message in the stream is waiting.
func (d *Detector) queuedJobs(ctx context.Context) (uint64, error) {
	cons, err := d.b.JS.Consumer(ctx, bus.StreamScan, bus.ConsumerDetectorScan)
	if err == nil {
		ci, err := cons.Info(ctx)
		if err != nil {
			return 0, err
		}
		return ci.NumPending, nil
	}
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, err
	}
	s, err := d.b.JS.Stream(ctx, bus.StreamScan)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// scanConsumer creates or updates the durable consumer every detector shares.
func (d *Detector) scanConsumer(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := d.b.JS.CreateOrUpdateConsumer(ctx, bus.StreamScan, jetstream.ConsumerConfig{
		Durable:       bus.ConsumerDetectorScan,
		Description:   "per-account sweep jobs shared by every detector",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       d.ackWait,
		MaxDeliver:    d.maxDeliver,
		MaxAckPending: max(1000, 4*d.e.cfg.Concurrency),
	})
	if err != nil {
		return nil, fmt.Errorf("detector: consumer %s on %s: %w", bus.ConsumerDetectorScan, bus.StreamScan, err)
	}
	return cons, nil
}

// consumeJobs checks accounts from the sweep queue, Concurrency at a time. The client
// buffers at most Concurrency jobs, so jobs are not held here while another detector
// is idle.
func (d *Detector) consumeJobs(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(d.e.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("consume %s: %w", bus.ConsumerDetectorScan, err)
	}
	sem := make(chan struct{}, d.e.cfg.Concurrency)
	defer func() {
		// Stop pulling first: a job given back (Nak) by a check that ends now must go
		// to another detector, not into this iterator's pull request, where it would
		// be dropped and wait out AckWait with one delivery spent.
		it.Stop()
		for range cap(sem) { // wait for the checks in flight
			sem <- struct{}{}
		}
	}()
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return err
			}
			d.log.Warn("sweep job consumer", "error", safeError(err))
			if !sleepCtx(ctx, time.Second) {
				return nil
			}
			continue
		}
		go func() {
			defer func() { <-sem }()
			d.handleJob(ctx, msg)
		}()
	}
}

// handleJob checks one account of a sweep and ends the job with Ack (published),
// Nak (shutting down, or publish failed) or Term (malformed, or out of deliveries).
func (d *Detector) handleJob(ctx context.Context, msg jetstream.Msg) {
	var job scanJob
	if err := json.Unmarshal(msg.Data(), &job); err != nil || !accountIDRE.MatchString(job.ID) || job.SweepID == "" {
		d.log.Warn("dropping malformed sweep job", "subject", msg.Subject())
		_ = msg.TermWithReason("malformed sweep job")
		return
	}
	_ = msg.InProgress() // the AckWait clock starts now, not when the job was buffered
	obs := d.e.check(ctx, job.accountInfo, model.SourceSweep)
	delivered := uint64(0)
	if md, merr := msg.Metadata(); merr == nil {
		delivered = md.NumDelivered
	}
	if ctx.Err() != nil {
		if delivered >= uint64(d.maxDeliver) {
			// A Nak on the last delivery strands the job: never delivered again, kept
			// unacknowledged until MaxAge. The next sweep checks the account.
			d.log.Warn("stopped during the last delivery of a sweep job; dropping it", "account", job.ID, "sweep", job.SweepID)
			_ = msg.TermWithReason("detector stopped during the last delivery")
			return
		}
		_ = msg.Nak() // shutting down: another detector takes it
		return
	}
	obs.SweepID = job.SweepID
	obs.ID = "sweep-" + strings.ReplaceAll(job.SweepID, "/", "_") + "-" + job.ID
	if err := d.publish(ctx, obs); err != nil {
		if delivered >= uint64(d.maxDeliver) {
			d.log.Error("publish sweep finding failed; giving up on the job", "account", job.ID, "sweep", job.SweepID, "error", safeError(err))
			_ = msg.TermWithReason("publish failed")
			return
		}
		d.log.Warn("publish sweep finding failed; retrying the job", "account", job.ID, "sweep", job.SweepID, "error", safeError(err))
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		d.log.Warn("ack sweep job", "account", job.ID, "error", safeError(err))
	}
}
