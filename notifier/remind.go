package notifier

// Reminders and escalation. The timers live in the case's record in KV rw_slack, so
// they survive restarts; a periodic loop compares them with Config.Now. A reminder is
// claimed (compare-and-set) before it is sent, so two notifier replicas never both
// send it; a failed send gives the claim back.

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/model"
)

func (n *Notifier) remindLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.TickEvery)
	defer t.Stop()
	for {
		if err := n.tick(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("reminder pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// tick looks at every current case once and sends what is due.
func (n *Notifier) tick(ctx context.Context) error {
	lister, err := n.b.Cases.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return err
	}
	var errs []error
	for key := range lister.Keys() {
		if err := n.tickCase(ctx, key); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (n *Notifier) tickCase(ctx context.Context, account string) error {
	e, err := n.b.Cases.Get(ctx, account)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil
		}
		return err
	}
	var c model.Case
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		return nil // not ours to judge; the remediator owns the bucket
	}
	if c.State != model.StateOpen && c.State != model.StateTicketed {
		return nil
	}
	rec, rev, err := n.loadRecord(ctx, c.ID)
	if err != nil || rec == nil || rec.RenderedSeq == 0 || rec.State != c.State {
		return err // not rendered yet: the projection comes first
	}
	now := n.now()
	log := n.log.With("case", c.ID, "account", c.AccountID)
	switch c.State {
	case model.StateOpen:
		if n.cfg.MaxReminders < 0 || rec.Reminders >= n.cfg.MaxReminders || rec.OpenSince == nil {
			return nil
		}
		last := *rec.OpenSince
		if rec.LastReminderAt != nil {
			last = *rec.LastReminderAt
		}
		if now.Sub(last) < n.cfg.RemindAfter {
			return nil
		}
		prevCount, prevAt := rec.Reminders, rec.LastReminderAt
		rec.Reminders++
		rec.LastReminderAt = &now
		if !n.claim(ctx, rec, rev) {
			return nil
		}
		text := reminderText(c, now.Sub(*rec.OpenSince), rec.Reminders, n.cfg.MaxReminders, n.approverMentions(ctx))
		if _, _, err := n.api.PostMessageContext(ctx, rec.Channel, slack.MsgOptionTS(rec.TS),
			slack.MsgOptionText(text, false)); err != nil {
			n.unclaim(ctx, c.ID, func(r *record) { r.Reminders, r.LastReminderAt = prevCount, prevAt })
			return err
		}
		log.Info("reminder sent", "reminder", rec.Reminders, "max", n.cfg.MaxReminders)
	case model.StateTicketed:
		if rec.EscalatedAt != nil || rec.TicketedSince == nil || now.Sub(*rec.TicketedSince) < n.cfg.SLA {
			return nil
		}
		rec.EscalatedAt = &now
		if !n.claim(ctx, rec, rev) {
			return nil
		}
		text := escalationText(c, now.Sub(*rec.TicketedSince), n.cfg.SLA, n.approverMentions(ctx))
		if _, _, err := n.api.PostMessageContext(ctx, rec.Channel, slack.MsgOptionTS(rec.TS),
			slack.MsgOptionBroadcast(), slack.MsgOptionText(text, false)); err != nil {
			n.unclaim(ctx, c.ID, func(r *record) { r.EscalatedAt = nil })
			return err
		}
		log.Warn("SLA breached: escalated in the channel", "sla", n.cfg.SLA)
	}
	return nil
}

// claim saves rec at revision rev; false when someone else changed it first.
func (n *Notifier) claim(ctx context.Context, rec *record, rev uint64) bool {
	data, _ := json.Marshal(rec)
	_, err := n.b.Slack.Update(ctx, rec.CaseID, data, rev)
	return err == nil
}

func (n *Notifier) unclaim(ctx context.Context, caseID string, undo func(*record)) {
	if err := n.updateRecord(ctx, caseID, func(r *record) bool { undo(r); return true }); err != nil {
		n.log.Warn("give back reminder claim", "case", caseID, "err", err)
	}
}
