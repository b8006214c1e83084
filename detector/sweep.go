package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	rwmetrics "github.com/rootwarden/rootwarden/internal/metrics"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/wait"
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
	sweepKey       = bus.SchedSweepKey
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
	// Prev is the sweep before this one; Complete when its every job was done as this
	// one started (internal/bus LastCheck: which sweep last checked an account).
	Prev *model.SweepRef `json:"prev,omitempty"`
	// RootAccess is the organization's centralized root access as this sweep read it
	// (organization mode only; rootaccess.go).
	RootAccess *model.OrgRootAccess `json:"root_access,omitempty"`
}

// scanJob is one account of one sweep on RW_SCAN.
type scanJob struct {
	SchemaVersion int    `json:"schema_version"`
	SweepID       string `json:"sweep_id"`
	// Listed is false for a job dispatched from the previous inventory before the
	// fresh listing confirmed the account.
	Listed bool `json:"listed,omitempty"`
	// Generation counts re-queues after a job used up its deliveries (see handleJob).
	Generation int `json:"generation,omitempty"`
	accountInfo
}

// maxGenerations: a job whose detectors keep dying under it is queued again this
// many times in all (each time with MaxDeliver fresh deliveries) before its account
// is reported as not checkable in this sweep.
const maxGenerations = 3

// jobMsgID is the Nats-Msg-Id of a job: one per account per sweep and generation.
func jobMsgID(sweepID, account string, gen int) string {
	if gen == 0 {
		return sweepID + "/" + account
	}
	return fmt.Sprintf("%s/%s/g%d", sweepID, account, gen)
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
			d.log.Warn("sweep scheduling failed; trying again", "err", safeError(err), "retry_in", poll.String())
		}
		if !wait.Sleep(ctx, poll) {
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
	var prev *model.SweepRef
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return "", false, fmt.Errorf("read sweep schedule: %w", err)
	default:
		rev = entry.Revision()
		var st sweepState
		if err := json.Unmarshal(entry.Value(), &st); err != nil {
			d.log.Warn("unreadable sweep schedule; replacing it", "err", err)
		} else if !d.due(st, now) {
			return "", false, nil
		} else if st.Error != "" {
			// Its jobs queued before the failure keep their Nats-Msg-Ids
			// "<sweep id>/<account>": queued again under the same id, they are
			// duplicates the stream drops, and no account is checked twice.
			retryOf, prev = st.ID, st.Prev
		} else {
			n, qerr := d.queuedJobs(ctx)
			if qerr == nil && n > 0 && st.Done && now.Sub(st.StartedAt) < 2*d.e.cfg.ScanInterval {
				d.log.Info("previous sweep still has queued jobs; postponing the next", "sweep", st.ID, "queued", n)
				return "", false, nil
			}
			prev = &model.SweepRef{ID: st.ID, StartedAt: st.StartedAt, Complete: st.Done && qerr == nil && n == 0}
		}
	}
	st := sweepState{SchemaVersion: model.SchemaVersion, ID: now.Format("20060102T150405Z") + "-" + newID()[:8],
		StartedAt: now, Owner: d.e.cfg.Instance, Prev: prev}
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

	listStart := time.Now()
	n, err := d.enqueue(ctx, &st, &rev)
	if errors.Is(err, errSweepTakenOver) {
		log.Warn("sweep taken over by another detector while listing the accounts", "enqueued", n)
		return st.ID, true, err
	}
	st.Done, st.Accounts = true, n
	if err != nil {
		st.Error = safeError(err)
		log.Error("sweep enumeration failed", "err", st.Error, "enqueued", n)
	} else {
		log.Info("sweep enqueued", "accounts", n, "listing", time.Since(listStart).Round(time.Millisecond).String())
		rwmetrics.SweepListed(st.StartedAt, d.e.cfg.Now().UTC(), n)
		if ra, ok := d.e.readOrgRootAccess(ctx); ok {
			st.RootAccess = &ra
		}
	}
	d.recordListed(ctx, st.ID, st.StartedAt, n, st.Error)
	data, _ = json.Marshal(st)
	if _, uerr := kv.Update(context.WithoutCancel(ctx), sweepKey, data, rev); uerr != nil {
		log.Warn("mark sweep enqueued", "err", safeError(uerr))
	}
	return st.ID, true, err
}

// publishJob publishes one sweep job without waiting for its acknowledgement. When
// the client already holds its maximum of unacknowledged publications (a slow or
// busy server: the client gives up after a short stall), it waits for them to be
// acknowledged and tries again, instead of failing the whole sweep.
func (d *Detector) publishJob(ctx context.Context, subject string, data []byte, msgID string) (jetstream.PubAckFuture, error) {
	for {
		f, err := d.b.JS.PublishAsync(subject, data, jetstream.WithMsgID(msgID))
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return f, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-d.b.JS.PublishAsyncComplete():
		case <-time.After(time.Second): // the stall may clear before every ack is in
		}
	}
}

// errSweepTakenOver: another detector claimed the sweep while this one listed.
var errSweepTakenOver = errors.New("sweep taken over by another detector")

// enqueue publishes one job per account: first, at once, for every account of the
// previous inventory, then, page by page as Organizations lists them, for accounts
// the inventory did not hold. When the listing is complete the inventory is
// reconciled with it. It renews the sweep's lease (Heartbeat, at revision *rev) as
// it goes, so a long listing is not taken over.
func (d *Detector) enqueue(ctx context.Context, st *sweepState, rev *uint64) (int, error) {
	sweepID := st.ID
	beat := st.StartedAt
	log := d.log.With("sweep", sweepID)
	var futures []jetstream.PubAckFuture
	dispatched := map[string]bool{}
	dispatch := func(a accountInfo, listed bool) error {
		data, err := json.Marshal(scanJob{SchemaVersion: model.SchemaVersion, SweepID: sweepID, Listed: listed, accountInfo: a})
		if err != nil {
			return err
		}
		f, err := d.publishJob(ctx, bus.ScanSubject(a.ID), data, jobMsgID(sweepID, a.ID, 0))
		if err != nil {
			return fmt.Errorf("publish sweep job for %s: %w", a.ID, err)
		}
		dispatched[a.ID] = true
		futures = append(futures, f)
		return nil
	}
	prev, err := d.loadInventory(ctx)
	if err != nil {
		log.Warn("no account inventory; the listing alone decides", "err", safeError(err))
		prev = map[string]accountInfo{}
	}
	for _, a := range prev {
		if err := dispatch(a, false); err != nil {
			return 0, err
		}
	}
	if len(prev) > 0 {
		log.Info("sweep dispatched the previous inventory", "accounts", len(prev))
	}
	fresh := make(map[string]accountInfo, len(prev))
	err = d.e.eachAccount(ctx, func(page []accountInfo) error {
		if now := d.e.cfg.Now().UTC(); now.Sub(beat) >= enumerateLease/5 {
			st.Heartbeat = now
			data, _ := json.Marshal(st)
			r, err := d.b.Sched.Update(ctx, sweepKey, data, *rev)
			switch {
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists):
				return errSweepTakenOver
			case err != nil:
				d.log.Warn("renew the sweep lease", "sweep", sweepID, "err", safeError(err))
			default:
				*rev, beat = r, now
			}
		}
		for _, a := range page {
			if old, ok := prev[a.ID]; ok {
				a = mergeListed(a, old)
			}
			fresh[a.ID] = a
			if dispatched[a.ID] {
				continue
			}
			if err := dispatch(a, true); err != nil {
				return err
			}
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
	// Accounts ListAccounts handed out first get the tree's OU paths now.
	d.e.dirMu.Lock()
	for id, a := range fresh {
		if cur, ok := d.e.dir[id]; ok && cur.OUKnown && !a.OUKnown {
			a.OUPath, a.OUKnown = cur.OUPath, true
			fresh[id] = a
		}
	}
	d.e.dirMu.Unlock()
	written, deleted, rerr := d.reconcile(ctx, prev, fresh)
	if rerr != nil {
		log.Warn("reconcile the account inventory", "err", safeError(rerr))
	}
	if written+deleted > 0 {
		log.Info("account inventory reconciled", "accounts", len(fresh), "written", written, "left", deleted)
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
	stopped := make(chan struct{}) // closed once this process pulls no more
	defer func() {
		// Stop pulling first: a job given back (Nak) by a check that ends now must go
		// to another detector, not into this iterator's pull request, where it would
		// be dropped and wait out AckWait with one delivery spent. Handlers wait for
		// stopped before they give a job back.
		it.Stop()
		// Stop unsubscribes in the iterator's own goroutine: wait for that, then a
		// round trip makes sure the server has seen it, so a job given back goes to
		// no pull request of this process.
		if c, ok := it.(interface{ Closed() <-chan struct{} }); ok {
			// Closed reports an unsubscribed iterator only when asked again.
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
				select {
				case <-c.Closed():
					deadline = time.Time{}
					continue
				default:
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		_ = d.b.NC.FlushTimeout(2 * time.Second)
		close(stopped)
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
			d.log.Warn("sweep job consumer", "err", safeError(err))
			if !wait.Sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		go func() {
			defer func() { <-sem }()
			d.handleJob(ctx, msg, stopped)
		}()
	}
}

// handleJob checks one account of a sweep and ends the job with Ack (published, or
// the account left the organization), Nak (shutting down, or publish failed) or Term
// (malformed, or out of deliveries). While the check runs it tells the server the
// job is in progress every ackWait/4, so AckWait can be short: a job whose detector
// died is handed to another within seconds, not minutes.
//
// A job on its last delivery (MaxDeliver) first queues its next generation, so a job
// whose detectors keep dying mid-check is not lost (the server would never deliver
// it again); the last generation's last delivery first publishes an error finding
// for the account (code CheckInterrupted), so the account is not silently left
// unchecked until the next sweep. A check that then works publishes over it.
func (d *Detector) handleJob(ctx context.Context, msg jetstream.Msg, stopped <-chan struct{}) {
	var job scanJob
	if err := json.Unmarshal(msg.Data(), &job); err != nil || !accountIDRE.MatchString(job.ID) || job.SweepID == "" {
		d.log.Warn("dropping malformed sweep job", "subject", msg.Subject())
		_ = msg.TermWithReason("malformed sweep job")
		return
	}
	_ = msg.InProgress() // the AckWait clock starts now, not when the job was buffered
	stopBeat := d.heartbeat(msg)
	defer stopBeat()
	log := d.log.With("account", job.ID, "sweep", job.SweepID)
	delivered := uint64(0)
	if md, merr := msg.Metadata(); merr == nil {
		delivered = md.NumDelivered
	}
	obsID := "sweep-" + strings.ReplaceAll(job.SweepID, "/", "_") + "-" + job.ID
	last := delivered >= uint64(d.maxDeliver)
	if last {
		d.lastDelivery(ctx, job, obsID, log)
	}

	a := job.accountInfo
	d.e.dirMu.Lock()
	if cur, ok := d.e.dir[a.ID]; ok {
		a = cur // tags read since the job was queued
	}
	d.e.dirMu.Unlock()
	// Stale tags of an account are refreshed beside its check when Organizations has
	// tokens to spare; a check that finds root credentials reads them first itself
	// (routing.go), joining this read when it is in flight.
	var orgDone chan accountInfo
	if d.e.tagsStale(a) {
		orgDone = make(chan accountInfo, 1)
		go func() {
			fresh, ok := d.e.rt.background(ctx, a)
			if !ok {
				fresh.ID = "" // nothing read
			}
			orgDone <- fresh
		}()
	}
	obs := d.e.check(ctx, a, model.SourceSweep)
	if orgDone != nil {
		if fresh := <-orgDone; fresh.ID != "" && !obs.RootKeysPresent {
			obs.OUPath, obs.Tags = fresh.OUPath, fresh.Tags
		}
	}
	if ctx.Err() != nil {
		if last {
			log.Warn("stopped during the last delivery of a sweep job; its next generation is queued", "generation", job.Generation)
			_ = msg.TermWithReason("detector stopped during the last delivery")
			return
		}
		<-stopped     // ctx ended, so the pull loop is stopping
		_ = msg.Nak() // shutting down: another detector takes it
		return
	}
	if !job.Listed && obs.ErrorCode == "AccessDenied" {
		// Dispatched from the previous inventory: the account may have been closed
		// or have left since. Then it is dropped, not reported.
		if err := d.e.stillActive(ctx, job.ID); err != nil {
			log.Info("account no longer active; dropped from the sweep", "reason", safeError(err))
			_ = d.b.Accounts.Delete(context.WithoutCancel(ctx), job.ID)
			d.ack(ctx, msg, log)
			return
		}
	}
	if _, throttled := retry.DefaultThrottleErrorCodes[obs.ErrorCode]; throttled && !last {
		// Still throttled after the SDK's retries: try the account again later in
		// the sweep rather than report it unchecked until the next sweep.
		log.Info("account check throttled; trying it again later in the sweep", "delivery", delivered)
		_ = msg.NakWithDelay(time.Duration(delivered) * 2 * time.Second)
		return
	}
	obs.SweepID = job.SweepID
	obs.ID = obsID
	if d.newest.unchanged(obs, d.e.cfg.RepublishEvery) {
		// As the newest observation says: nothing to publish (unchanged.go).
		d.e.met.unchanged.Inc()
		d.sweeps.add(obs, true)
		log.Debug("account unchanged since its newest observation; nothing published")
		d.ack(ctx, msg, log)
		return
	}
	if err := d.publish(ctx, obs); err != nil {
		if last {
			log.Error("publish sweep finding failed on the last delivery; its next generation is queued", "err", safeError(err))
			_ = msg.TermWithReason("publish failed")
			return
		}
		log.Warn("publish sweep finding failed; retrying the job", "err", safeError(err))
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	d.ack(ctx, msg, log)
}

func (d *Detector) ack(ctx context.Context, msg jetstream.Msg, log *slog.Logger) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		log.Warn("ack sweep job", "err", safeError(err))
	}
}

// heartbeat calls msg.InProgress every ackWait/4 until the returned func is called.
func (d *Detector) heartbeat(msg jetstream.Msg) func() {
	return wait.Every(max(d.ackWait/4, 10*time.Millisecond), func() bool { _ = msg.InProgress(); return true })
}

// lastDelivery runs before the check on a job's last delivery: it queues the job's
// next generation, or on the last generation publishes that the account could not
// be checked.
func (d *Detector) lastDelivery(ctx context.Context, job scanJob, obsID string, log *slog.Logger) {
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if job.Generation+1 < maxGenerations {
		next := job
		next.Generation++
		data, err := json.Marshal(next)
		if err == nil {
			_, err = d.b.JS.Publish(pctx, bus.ScanSubject(job.ID), data, jetstream.WithMsgID(jobMsgID(job.SweepID, job.ID, next.Generation)))
		}
		if err != nil {
			log.Error("queue the next generation of a sweep job on its last delivery", "err", safeError(err))
			return
		}
		log.Warn("sweep job on its last delivery; its next generation is queued", "generation", next.Generation)
		return
	}
	attempts := maxGenerations * d.maxDeliver
	obs := model.Observation{SchemaVersion: model.SchemaVersion, ID: obsID + "-interrupted", AccountID: job.ID,
		AccountName: job.Name, Management: job.Management, OrgMember: job.OrgMember, OUPath: job.OUPath, Tags: job.Tags,
		Source: model.SourceSweep, SweepID: job.SweepID, ObservedAt: d.e.cfg.Now().UTC(), Keys: []model.KeyDetail{},
		ErrorCode: "CheckInterrupted",
		Error: fmt.Sprintf("the sweep's check of account %s was interrupted %d times (its detector stopped or died during it); "+
			"this is its last attempt in this sweep", job.ID, attempts-1)}
	if err := d.publish(pctx, obs); err != nil {
		log.Error("publish that a sweep job is on its last attempt", "err", safeError(err))
		return
	}
	log.Error("sweep job on its last attempt; published that the account could not be checked", "attempts", attempts)
}
