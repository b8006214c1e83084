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
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/metrics"
	"github.com/rootwarden/rootwarden/internal/model"
)

// work runs the account's owed side effects. Within one instance only one goroutine
// works on an account at a time; a request arriving meanwhile makes it go round again.
func (r *Remediator) work(ctx context.Context, account string) {
	r.mu.Lock()
	if _, busy := r.running[account]; busy {
		r.running[account] = true // dirty: go round again
		r.mu.Unlock()
		return
	}
	r.running[account] = false
	r.mu.Unlock()
	for {
		if err := r.runWork(ctx, account); err != nil && ctx.Err() == nil {
			r.log.Warn("case work unfinished; will retry", "account", account, "err", err)
		}
		r.mu.Lock()
		if r.running[account] && ctx.Err() == nil {
			r.running[account] = false
			r.mu.Unlock()
			continue
		}
		delete(r.running, account)
		r.mu.Unlock()
		return
	}
}

func (r *Remediator) runWork(ctx context.Context, account string) error {
	if err := r.flush(ctx, account); err != nil {
		return err
	}
	tried := map[string]bool{}
	var errs []error
	for round := 0; round < 12; round++ {
		rec, _, err := r.load(ctx, account)
		if err != nil || rec == nil {
			return errors.Join(append(errs, err)...)
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
		return true, r.openTicket(ctx, c)
	case c.State == model.StateVerifying && !tried["verify"]:
		tried["verify"] = true
		tried[PendingRecheck] = true
		return true, r.check(ctx, c, true)
	case slices.Contains(c.Pending, PendingRecheck) && !tried[PendingRecheck]:
		tried[PendingRecheck] = true
		return true, r.check(ctx, c, false)
	}
	return false, nil
}

func (r *Remediator) openTicket(ctx context.Context, c model.Case) error {
	ref, err := r.tracker.Open(ctx, c, r.slackLink(ctx, c.ID))
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
		ids, err := r.cfg.Deleter.DeleteRootKeys(ctx, c.AccountID)
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
	var err error
	switch op.Op {
	case TicketClose:
		err = r.tracker.Close(ctx, op.Ticket, op.Text)
	case TicketComment:
		err = r.tracker.Comment(ctx, op.Ticket, op.Text)
	case TicketReopen:
		var st model.TicketStatus
		st, err = r.tracker.Status(ctx, op.Ticket)
		if err == nil {
			if st.Done {
				err = r.tracker.Reopen(ctx, op.Ticket, op.Text)
			} else {
				err = r.tracker.Comment(ctx, op.Ticket, op.Text)
			}
		}
	default:
		err = model.Errorf(model.CodeInvalid, "unknown ticket operation %q", op.Op)
	}
	if err != nil {
		switch model.ErrorCode(err) {
		case model.CodeInvalid, model.CodeNotFound, model.CodeUnauthorized:
			r.log.Warn("ticket operation failed for good; dropped", "account", account, "ticket", op.Ticket.ID, "op", op.Op, "err", err)
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

// scan publishes leftover events, reopens expired risk acceptances, and runs work
// left unfinished (all of it at start-up, work older than StaleWork later).
func (r *Remediator) scan(ctx context.Context, startup bool) {
	recs, full, err := r.dueRecords(ctx, startup, dueExpiry, dueWork) // every case only at start-up (due.go)
	if err != nil {
		r.log.Warn("scan cases", "err", err)
		return
	}
	now := r.cfg.Now()
	active := 0
	tally := metrics.NewTally()
	for _, rec := range recs {
		if ctx.Err() != nil {
			return
		}
		c := rec.Case
		tally.Add(c)
		if c.State.Active() {
			active++
		}
		if len(rec.Outbox) > 0 {
			if err := r.flush(ctx, c.AccountID); err != nil {
				r.log.Warn("publish case events", "account", c.AccountID, "err", err)
			}
		}
		if c.State == model.StateRiskAccepted && c.Risk != nil && !now.Before(c.Risk.Expires) {
			if _, err := r.apply(ctx, c.AccountID, func(now time.Time) Input { return Input{At: now, Expire: true} }); err != nil {
				r.log.Warn("reopen expired risk acceptance", "account", c.AccountID, "err", err)
			}
			continue
		}
		owed := len(rec.TicketOps) > 0 || len(c.Pending) > 0 || c.State == model.StateVerifying
		if owed && (startup || now.Sub(c.UpdatedAt) >= r.cfg.StaleWork) {
			r.work(ctx, c.AccountID)
		}
	}
	if full {
		r.openCases.Set(float64(active))
		tally.Publish(now)
	}
}

// ScanNow runs one scan as the periodic one does (expiry, leftovers). For operators
// and tests.
func (r *Remediator) ScanNow(ctx context.Context) { r.scan(ctx, false) }

// pollTickets reads the ticket of each ticketed case; a ticket moved to done counts as
// "I deleted the keys" by its assignee.
func (r *Remediator) pollTickets(ctx context.Context) {
	recs, _, err := r.dueRecords(ctx, false, dueTicket) // the tickets due, not every case (due.go)
	if err != nil {
		r.log.Warn("poll tickets", "err", err)
		return
	}
	for _, rec := range recs {
		c := rec.Case
		if ctx.Err() != nil {
			return
		}
		if c.State != model.StateTicketed || c.Ticket == nil || len(rec.TicketOps) > 0 {
			continue
		}
		st, err := r.tracker.Status(ctx, *c.Ticket)
		if err != nil {
			r.log.Warn("read ticket status", "account", c.AccountID, "case", c.ID, "ticket", c.Ticket.ID, "err", err)
			continue
		}
		if !st.Done {
			continue
		}
		who := st.Assignee
		if who == "" {
			who = "unassigned"
		}
		a := model.Action{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("ticket/%s/%d", c.ID, c.Seq),
			Kind: model.ActionConfirmDeleted, AccountID: c.AccountID, CaseID: c.ID,
			Actor: model.Actor{Kind: model.ActorTicket, ID: st.Assignee, Name: who}, At: r.cfg.Now(),
			Reason: fmt.Sprintf("ticket %s is %s", c.Ticket.ID, st.State), Origin: "ticket"}
		if err := r.HandleAction(ctx, a); err != nil {
			r.log.Warn("apply ticket confirmation", "account", c.AccountID, "case", c.ID, "err", err)
			continue
		}
		r.work(ctx, c.AccountID)
	}
}

// PollTicketsNow reads every ticketed case's ticket now. For operators and tests.
func (r *Remediator) PollTicketsNow(ctx context.Context) { r.due.forget(dueTicket); r.pollTickets(ctx) }
