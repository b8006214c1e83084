package remediator

// Side effects. The state machine records what is owed (Case.Pending, the verifying
// state, record.TicketOps) in the same compare-and-set as the transition; the work
// below carries it out and reports the outcome back through Apply. Whatever a crash
// interrupts is found again by the scan at start-up or the periodic scan.
//
// Opening a ticket is idempotent per case: the intent (pending open_ticket) is saved
// first, the tracker looks the case's ticket up by its case label before creating
// one, and only then is the ticket ref saved. A crash between creating the ticket and
// saving its ref makes the next attempt find the same ticket.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/metrics"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/wait"
)

// work runs the account's owed side effects. Within one instance only one goroutine
// works on an account at a time; a request arriving meanwhile makes it go round again.
// Across replicas, a compare-and-set lease on the account (lease.go) makes one of
// them run it. The work takes one of the Workers slots, so a burst of accounts
// queues here rather than overwhelming the trackers and AWS.
func (r *Remediator) work(ctx context.Context, account string) {
	r.mu.Lock()
	if _, busy := r.running[account]; busy {
		r.running[account] = true // dirty: go round again
		r.mu.Unlock()
		return
	}
	r.running[account] = false
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, account)
		r.mu.Unlock()
	}()
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-ctx.Done():
		return
	}
	for {
		switch held, err := r.leased(ctx, account, func(ctx context.Context) error { return r.runWork(ctx, account) }); {
		case err != nil && ctx.Err() == nil:
			r.log.Warn("case work unfinished; will retry", "account", account, "err", err)
		case !held && ctx.Err() == nil:
			// Another replica runs it. Should it finish before seeing what this one
			// was asked to do, look again once its claim would have lapsed.
			r.log.Debug("case work claimed by another replica", "account", account)
			r.retryLater(ctx, account, r.cfg.LeaseTTL/3)
		}
		r.mu.Lock()
		if r.running[account] && ctx.Err() == nil {
			r.running[account] = false
			r.mu.Unlock()
			continue
		}
		r.mu.Unlock()
		return
	}
}

// checkAsked reports whether applying the action a (decision d, the record rec as
// stored) has just asked for a check that may run at once: "I deleted the keys"
// moved the case to verifying (verify), or a re-check was recorded. A click refused
// or ignored (a check already under way) asks for nothing; nor does one while the
// case owes a step that comes before its check (a ticket still to open, keys to
// delete, a ticket operation): the work runs those in order, the check after them,
// so that a case is never resolved while its ticket is being created.
func checkAsked(a model.Action, d Decision, rec *record) (verify, asked bool) {
	if !d.Changed() || d.Refused != "" || len(rec.TicketOps) > 0 ||
		slices.Contains(rec.Case.Pending, PendingOpenTicket) || slices.Contains(rec.Case.Pending, PendingDeleteKeys) {
		return false, false
	}
	for _, ev := range d.Events {
		if ev.ActionID != a.ID {
			continue
		}
		switch {
		case a.Kind == model.ActionConfirmDeleted && ev.Type == model.EventVerifying && d.Case.State == model.StateVerifying:
			return true, true
		case a.Kind == model.ActionRecheck && ev.Type == model.EventUpdated && slices.Contains(d.Case.Pending, PendingRecheck):
			return false, true
		}
	}
	return false, false
}

// checkAtOnce runs the check an action has just asked for (c is the case as just
// stored) on its own goroutine, at once: not behind the work claim's write, the
// outbox's emptying, a Workers slot or another read of the case. It is the step the
// person who clicked waits for. A check only reads AWS, and its answer is decided by
// compare-and-set against the state current then, so outside the claim the worst
// that can happen is a second check by another replica; what must run once (ticket
// operations, deletions) follows in the account's work, under the claim, once the
// answer is applied. Actions are a person's clicks: at most one check of a case owed
// at a time (the machine's throttle) and a small budget per person (the notifier's),
// so these checks do not need the Workers bound. While it runs, this instance's work leaves the account's checks to it.
func (r *Remediator) checkAtOnce(ctx context.Context, c model.Case, verify bool) {
	account := c.AccountID
	r.mu.Lock()
	busy := r.checking[account]
	r.checking[account] = true
	r.mu.Unlock()
	if busy { // cannot happen for one action at a time; the work picks it up
		r.workAsync(ctx, account)
		return
	}
	done := func() {
		r.mu.Lock()
		delete(r.checking, account)
		r.mu.Unlock()
	}
	if !r.goTracked(ctx, func() {
		err := r.check(ctx, c, verify)
		done()
		if err != nil {
			// The case still owes the check (verifying, or the re-check pending): the
			// due-time index runs the work again, as after a failed step of the work.
			r.log.Warn("check asked for by an action failed; will retry", "account", account, "case", c.ID, "err", err)
			return
		}
		r.work(ctx, account) // what the answer owes: closing the ticket, say
	}) {
		done()
	}
}

// checkingNow reports whether checkAtOnce runs the account's check now.
func (r *Remediator) checkingNow(account string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checking[account]
}

// retryLater runs the account's work again after d when it still owes some.
func (r *Remediator) retryLater(ctx context.Context, account string, d time.Duration) {
	r.goTracked(ctx, func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if rec, _, err := r.load(ctx, account); err == nil && rec != nil && r.owes(rec) {
			r.work(ctx, account)
		}
	})
}

// owed reports whether a record has side effects still to run.
func owed(rec *record) bool {
	return len(rec.TicketOps) > 0 || len(rec.Case.Pending) > 0 || rec.Case.State == model.StateVerifying || len(rec.Outbox) > 0
}

func (r *Remediator) runWork(ctx context.Context, account string) error {
	tried := map[string]bool{}
	var errs []error
	for round := 0; round < 12; round++ {
		r.applying.lock(account)() // an apply emptying its outbox (applyEmptyingLater) is done first
		rec, rev, err := r.load(ctx, account)
		if err != nil || rec == nil {
			return errors.Join(append(errs, err)...)
		}
		if round == 0 && len(rec.Outbox) > 0 {
			// Events a crash left unpublished go out first (the steps need the record
			// only, so this read serves both).
			if err := r.flushSaved(ctx, account, rec, rev); err != nil {
				return err
			}
		}
		step, err := r.nextStep(ctx, rec, tried)
		if err != nil {
			errs = append(errs, err)
		}
		if !step {
			return errors.Join(errs...)
		}
	}
	return errors.Join(errs...)
}

// nextStep runs one owed side effect not yet tried in this round of work and reports
// whether it ran one.
func (r *Remediator) nextStep(ctx context.Context, rec *record, tried map[string]bool) (bool, error) {
	c := rec.Case
	for _, op := range rec.TicketOps {
		key := "op:" + op.ID + ":" + op.Op
		if tried[key] {
			continue
		}
		tried[key] = true
		return true, r.ticketOp(ctx, c.AccountID, op)
	}
	switch {
	case slices.Contains(c.Pending, PendingDeleteKeys) && !tried[PendingDeleteKeys]:
		tried[PendingDeleteKeys] = true
		return true, r.deleteKeys(ctx, c)
	case slices.Contains(c.Pending, PendingOpenTicket) && !tried[PendingOpenTicket]:
		tried[PendingOpenTicket] = true
		return true, r.openTicket(ctx, rec)
	case (c.State == model.StateVerifying || slices.Contains(c.Pending, PendingRecheck)) && r.checkingNow(c.AccountID):
		// checkAtOnce runs the account's check; once its answer is applied, it runs the
		// work again for what the answer owes.
		return false, nil
	case c.State == model.StateVerifying && !tried["verify"]:
		tried["verify"] = true
		tried[PendingRecheck] = true
		return true, r.check(ctx, c, true)
	case slices.Contains(c.Pending, PendingRecheck) && !tried[PendingRecheck]:
		tried[PendingRecheck] = true
		return true, r.check(ctx, c, false)
	case r.shubOwed(rec) && !tried["securityhub"] && len(rec.TicketOps) == 0 && len(c.Pending) == 0 && c.State != model.StateVerifying:
		tried["securityhub"] = true // after the case's own steps (securityhub.go)
		return true, r.markSecurityHub(ctx, rec)
	}
	return false, nil
}

func (r *Remediator) openTicket(ctx context.Context, rec *record) error {
	c := rec.Case
	// The intent is on the case (pending open_ticket). A tracker whose search lags
	// behind its creates (Jira) may not show a ticket an interrupted attempt made a
	// moment ago: wait until it would.
	if lagger, ok := r.tracker.(interface{ SearchLag() time.Duration }); ok && rec.OpenAttemptAt != nil {
		if lag := lagger.SearchLag() - time.Since(*rec.OpenAttemptAt); lag > 0 {
			r.log.Info("waiting for the ticket system's search before opening again", "account", c.AccountID, "case", c.ID, "wait", lag)
			if !wait.Sleep(ctx, lag) {
				return ctx.Err()
			}
		}
	}
	now := time.Now()
	if err := r.update(ctx, c.AccountID, func(rec *record) bool { rec.OpenAttemptAt = &now; return true }); err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, r.cfg.TicketTimeout)
	ref, err := r.tracker.Open(tctx, c, r.slackLink(ctx, c.ID))
	cancel()
	if err == nil {
		if h := r.cfg.afterTicketCreate; h != nil {
			if herr := h(c.ID); herr != nil {
				return fmt.Errorf("after opening ticket for %s: %w", c.ID, herr)
			}
		}
	}
	if err != nil {
		_, aerr := r.apply(ctx, c.AccountID, func(now time.Time) Input { return Input{At: now, TicketError: err.Error()} })
		return errors.Join(fmt.Errorf("open ticket for case %s: %w", c.ID, err), aerr)
	}
	_, err = r.apply(ctx, c.AccountID, func(now time.Time) Input { return Input{At: now, TicketOpened: &ref} })
	return err
}

func (r *Remediator) deleteKeys(ctx context.Context, c model.Case) error {
	var del Deletion
	switch {
	case !r.cfg.AssumeRoot || r.cfg.Deleter == nil:
		del.Err = "deletion through AssumeRoot is not enabled"
	case c.Management:
		del.Err = "never for the management account"
	case !c.OrgMember:
		del.Err = "the account is not a member of an AWS Organization"
	case c.State != model.StateTicketed:
		del.Err = "the case is " + string(c.State) + ", not ticketed"
	default:
		dctx, cancel := context.WithTimeout(ctx, r.cfg.CheckTimeout)
		ids, err := r.cfg.Deleter.DeleteRootKeys(dctx, c.AccountID)
		cancel()
		del.KeyIDs = ids
		if err != nil {
			del.Err = err.Error()
			r.log.Warn("AssumeRoot deletion failed; falling back to a ticket", "account", c.AccountID, "case", c.ID, "err", err)
		}
	}
	_, err := r.apply(ctx, c.AccountID, func(now time.Time) Input { return Input{At: now, Deleted: &del} })
	return err
}

func (r *Remediator) check(ctx context.Context, c model.Case, verify bool) error {
	reason := "re-check of case " + c.ID
	if verify {
		reason = "verify deletion for case " + c.ID
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CheckTimeout)
	obs, err := r.checker.Check(cctx, c.AccountID, reason)
	cancel()
	if err != nil {
		_, aerr := r.apply(ctx, c.AccountID, func(now time.Time) Input { return Input{At: now, CheckError: err.Error()} })
		return errors.Join(fmt.Errorf("check account %s: %w", c.AccountID, err), aerr)
	}
	if obs.Source == "" {
		obs.Source = model.SourceCheck
	}
	_, err = r.apply(ctx, c.AccountID, func(now time.Time) Input { return Input{At: now, Check: &obs, Verify: verify} })
	return err
}

func (r *Remediator) ticketOp(ctx context.Context, account string, op TicketOp) error {
	tctx, cancel := context.WithTimeout(ctx, r.cfg.TicketTimeout)
	defer cancel()
	var err error
	what := op.Op
	switch op.Op {
	case TicketClose:
		err = r.tracker.Close(tctx, op.Ticket, op.Text)
	case TicketComment:
		err = r.tracker.Comment(tctx, op.Ticket, op.Text)
	case TicketReopen:
		var st model.TicketStatus
		st, err = r.tracker.Status(tctx, op.Ticket)
		if err == nil {
			if st.Done {
				err = r.tracker.Reopen(tctx, op.Ticket, op.Text)
			} else {
				what = TicketComment
				err = r.tracker.Comment(tctx, op.Ticket, op.Text)
			}
		}
	default:
		err = model.Errorf(model.CodeInvalid, "unknown ticket operation %q", op.Op)
	}
	if err != nil {
		switch model.ErrorCode(err) {
		case model.CodeInvalid, model.CodeNotFound, model.CodeUnauthorized:
			// Final: say so on the case (a thread reply) instead of dropping it.
			r.log.Warn("ticket operation failed for good", "account", account, "ticket", op.Ticket.ID, "op", op.Op, "err", err)
			text := fmt.Sprintf("could not %s ticket %s: %s", what, op.Ticket.ID, err)
			if op.Op == TicketReopen && what == TicketReopen {
				text += "; it stays done: once the keys are deleted, press \"I deleted the keys\""
			}
			if _, aerr := r.apply(ctx, account, func(now time.Time) Input { return Input{At: now, TicketOpFailed: text} }); aerr != nil {
				return aerr
			}
		default:
			return fmt.Errorf("%s ticket %s: %w", op.Op, op.Ticket.ID, err)
		}
	}
	return r.update(ctx, account, func(rec *record) bool {
		n := len(rec.TicketOps)
		rec.TicketOps = slices.DeleteFunc(rec.TicketOps, func(o TicketOp) bool { return o.ID == op.ID && o.Op == op.Op })
		return len(rec.TicketOps) != n
	})
}

// slackLink is the permalink of the case's Slack message, when the notifier has posted one.
func (r *Remediator) slackLink(ctx context.Context, caseID string) string {
	e, err := r.b.Slack.Get(ctx, caseID)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			r.log.Debug("read Slack ref", "case", caseID, "err", err)
		}
		return ""
	}
	var ref model.SlackRef
	if json.Unmarshal(e.Value(), &ref) != nil {
		return ""
	}
	return ref.Permalink
}

// scan publishes leftover events, ends what is time-boxed (risk acceptances at
// their expiry, verifying after VerifyTimeout), and hands work left unfinished to
// the pool (all of it at start-up, work older than StaleWork later). It reads the
// cases due (due.go), every case only at start-up. It never waits on a tracker or
// AWS itself; with wait it returns once the work it started is done (ScanNow, tests).
func (r *Remediator) scan(ctx context.Context, startup, wait bool) {
	recs, full, err := r.dueRecords(ctx, startup, dueExpiry, dueWork) // every case only at start-up (due.go)
	if err != nil {
		r.log.Warn("scan cases", "err", err)
		return
	}
	now := r.cfg.Now()
	var wg sync.WaitGroup
	tally := metrics.NewTally()
	for _, rec := range recs {
		if ctx.Err() != nil {
			return
		}
		c := rec.Case
		tally.Add(c)
		if len(rec.Outbox) > 0 {
			if err := r.flush(ctx, c.AccountID); err != nil {
				r.log.Warn("publish case events", "account", c.AccountID, "err", err)
			}
		}
		riskOver := c.State == model.StateRiskAccepted && c.Risk != nil && !now.Before(c.Risk.Expires)
		claimed := c.UpdatedAt // cases from before VerifyingSince existed
		if c.VerifyingSince != nil {
			claimed = *c.VerifyingSince
		}
		verifyOver := c.State == model.StateVerifying && now.Sub(claimed) >= r.cfg.VerifyTimeout
		if riskOver || verifyOver {
			if _, err := r.apply(ctx, c.AccountID, func(now time.Time) Input { return Input{At: now, Expire: true} }); err != nil {
				r.log.Warn("end time-boxed state", "account", c.AccountID, "state", c.State, "err", err)
			}
			if riskOver {
				continue
			}
		}
		if r.owes(rec) && (startup || now.Sub(c.UpdatedAt) >= r.cfg.StaleWork) {
			account := c.AccountID
			if wait {
				wg.Add(1)
				if !r.goTracked(ctx, func() { defer wg.Done(); r.work(ctx, account) }) {
					wg.Done()
				}
			} else {
				r.workAsync(ctx, account)
			}
		}
	}
	if full {
		tally.Publish(now)
	}
	wg.Wait()
}

// ScanNow runs one scan as the periodic one does (expiry, leftovers) and waits for
// the work it started. For operators and tests.
func (r *Remediator) ScanNow(ctx context.Context) { r.scan(ctx, false, true) }

// pollTickets reads the ticket of each ticketed case due (due.go), each on the pool
// (a hung tracker call holds up only its own account); a ticket moved to done counts
// as "I deleted the keys" by its assignee, once per closure. With wait it returns
// once every read is done.
func (r *Remediator) pollTickets(ctx context.Context, wait bool) {
	recs, _, err := r.dueRecords(ctx, false, dueTicket) // the tickets due, not every case (due.go)
	if err != nil {
		r.log.Warn("poll tickets", "err", err)
		return
	}
	var wg sync.WaitGroup
	for _, rec := range recs {
		c := rec.Case
		if c.State != model.StateTicketed || c.Ticket == nil || len(rec.TicketOps) > 0 {
			continue
		}
		r.mu.Lock()
		busy := r.polling[c.AccountID]
		if !busy {
			r.polling[c.AccountID] = true
		}
		r.mu.Unlock()
		if busy {
			continue // the last read of this ticket has not returned yet
		}
		wg.Add(1)
		started := r.goTracked(ctx, func() {
			defer wg.Done()
			defer func() { r.mu.Lock(); delete(r.polling, c.AccountID); r.mu.Unlock() }()
			r.pollTicket(ctx, rec)
		})
		if !started {
			wg.Done()
			r.mu.Lock()
			delete(r.polling, c.AccountID)
			r.mu.Unlock()
		}
	}
	if wait {
		wg.Wait()
	}
}

func (r *Remediator) pollTicket(ctx context.Context, rec *record) {
	c := rec.Case
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	tctx, cancel := context.WithTimeout(ctx, r.cfg.TicketTimeout)
	st, err := r.tracker.Status(tctx, *c.Ticket)
	cancel()
	<-r.sem
	if err != nil {
		r.log.Warn("read ticket status", "account", c.AccountID, "case", c.ID, "ticket", c.Ticket.ID, "err", err)
		return
	}
	if !st.Done {
		return
	}
	// One closure is one claim: the tracker's closure time names it, so a ticket that
	// stays done (it could not be reopened) is not verified again on every poll.
	closure := st.ClosedAt
	if closure == "" {
		closure = st.State
	}
	closure = c.Ticket.ID + "@" + closure
	if rec.TicketClosure == closure {
		return
	}
	who := st.Assignee
	if who == "" {
		who = "unassigned"
	}
	a := model.Action{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("ticket/%s/%s", c.ID, closure),
		Kind: model.ActionConfirmDeleted, AccountID: c.AccountID, CaseID: c.ID,
		Actor: model.Actor{Kind: model.ActorTicket, ID: st.Assignee, Name: who}, At: r.cfg.Now(),
		Reason: fmt.Sprintf("ticket %s is %s", c.Ticket.ID, st.State), Origin: "ticket"}
	if err := r.HandleAction(ctx, a); err != nil {
		r.log.Warn("apply ticket confirmation", "account", c.AccountID, "case", c.ID, "err", err)
		return
	}
	if err := r.update(ctx, c.AccountID, func(rec *record) bool {
		if rec.Case.ID != c.ID || rec.TicketClosure == closure {
			return false
		}
		rec.TicketClosure = closure
		return true
	}); err != nil {
		r.log.Warn("remember ticket closure", "account", c.AccountID, "case", c.ID, "err", err)
	}
	r.work(ctx, c.AccountID)
}

// PollTicketsNow reads every ticketed case's ticket now and waits for it. For
// operators and tests.
func (r *Remediator) PollTicketsNow(ctx context.Context) {
	r.due.forget(dueTicket)
	r.pollTickets(ctx, true)
}
