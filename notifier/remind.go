package notifier

// Reminders and escalation. The timers live in the case's record in KV rw_slack, so
// they survive restarts; a periodic loop compares them with Config.Now. A reminder is
// claimed (compare-and-set) before it is sent, so two notifier replicas never both
// send it; a failed send gives the claim back.
//
// The loop does not read every case: a due-time index (case → next reminder or
// escalation time), built from a watch of rw_slack (its current values at start,
// then every change by any replica) and from this process's own writes, names the
// few cases that are due; only those are read. A notifier that is not running (a
// test calling Tick) rebuilds the index from the records on each pass.

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
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

// tick sends what is due: it reads only the cases the due-time index names.
func (n *Notifier) tick(ctx context.Context) error {
	if !n.due.isLive() {
		if err := n.rebuildDue(ctx); err != nil {
			return err
		}
	}
	var errs []error
	for _, account := range n.due.dueBy(n.now()) {
		if err := n.tickCase(ctx, account); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dueIndex: case id → when its next reminder or escalation is due.
type dueIndex struct {
	mu   sync.Mutex
	at   map[string]dueAt
	live bool   // a watch keeps it current
	rev  uint64 // the newest rw_slack revision applied (tests wait for it)
}

type dueAt struct {
	account string
	at      time.Time
}

func newDueIndex() *dueIndex { return &dueIndex{at: map[string]dueAt{}} }

func (d *dueIndex) isLive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live
}

func (d *dueIndex) set(caseID, account string, at time.Time, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ok {
		d.at[caseID] = dueAt{account: account, at: at}
	} else {
		delete(d.at, caseID)
	}
}

// dueBy lists the accounts with something due at now.
func (d *dueIndex) dueBy(now time.Time) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, e := range d.at {
		if !now.Before(e.at) {
			out = append(out, e.account)
		}
	}
	return out
}

// nextDue is when the record's next reminder or escalation is due; false → none.
func (n *Notifier) nextDue(r *record) (time.Time, bool) {
	switch r.State {
	case model.StateOpen:
		if n.cfg.MaxReminders <= 0 || r.Reminders >= n.cfg.MaxReminders || r.OpenSince == nil {
			return time.Time{}, false
		}
		last := *r.OpenSince
		if r.LastReminderAt != nil {
			last = *r.LastReminderAt
		}
		return last.Add(n.cfg.RemindAfter), true
	case model.StateTicketed:
		if r.EscalatedAt != nil || r.TicketedSince == nil {
			return time.Time{}, false
		}
		return r.TicketedSince.Add(n.cfg.SLA), true
	}
	return time.Time{}, false
}

// track puts the record's due time into the index.
func (n *Notifier) track(caseID string, r *record) {
	if r == nil || r.AccountID == "" {
		n.due.set(caseID, "", time.Time{}, false)
		return
	}
	at, ok := n.nextDue(r)
	n.due.set(caseID, r.AccountID, at, ok)
}

func (n *Notifier) trackRaw(key string, value []byte) {
	if key == summaryKey {
		return
	}
	var r record
	if json.Unmarshal(value, &r) != nil {
		return
	}
	n.track(key, &r)
}

// rebuildDue reads every record once (a notifier that is not running).
func (n *Notifier) rebuildDue(ctx context.Context) error {
	lister, err := n.b.Slack.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return err
	}
	for key := range lister.Keys() {
		e, err := n.b.Slack.Get(ctx, key)
		if err != nil {
			continue
		}
		n.trackRaw(key, e.Value())
	}
	return nil
}

// watchDue keeps the index current from rw_slack until ctx ends.
func (n *Notifier) watchDue(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := n.b.Slack.WatchAll(ctx)
		if err != nil {
			n.log.Warn("watch rw_slack for reminders", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(n.cfg.RetryMax):
			}
			continue
		}
		for e := range w.Updates() {
			if e != nil {
				n.due.mu.Lock()
				n.due.rev = max(n.due.rev, e.Revision())
				n.due.mu.Unlock()
			}
			if e == nil { // the current values are in
				n.due.mu.Lock()
				n.due.live = true
				n.due.mu.Unlock()
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				n.due.set(e.Key(), "", time.Time{}, false)
				continue
			}
			n.trackRaw(e.Key(), e.Value())
		}
		_ = w.Stop()
		n.due.mu.Lock()
		n.due.live = false
		n.due.mu.Unlock()
	}
}

func (n *Notifier) tickCase(ctx context.Context, account string) error {
	n.tickReads.Add(1)
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
		if n.cfg.MaxReminders <= 0 || rec.Reminders >= n.cfg.MaxReminders || rec.OpenSince == nil {
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
		if _, _, err := n.postMsg(withPrio(ctx, prioBackground), rec.Channel, slack.MsgOptionTS(rec.TS),
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
		if _, _, err := n.postMsg(withPrio(ctx, prioBackground), rec.Channel, slack.MsgOptionTS(rec.TS),
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
	n.track(rec.CaseID, rec)
	data, _ := json.Marshal(rec)
	_, err := n.b.Slack.Update(ctx, rec.CaseID, data, rev)
	return err == nil
}

func (n *Notifier) unclaim(ctx context.Context, caseID string, undo func(*record)) {
	if err := n.updateRecord(ctx, caseID, func(r *record) bool { undo(r); return true }); err != nil {
		n.log.Warn("give back reminder claim", "case", caseID, "err", err)
	}
}
