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
//
// The watch delivers writes late, so an update of this process's own write (a
// reminder claim) can arrive after the write that replaced it (the claim given back)
// and must not undo it: each entry keeps the newest revision applied, own writes
// note theirs once written (wrote), and the watch applies only newer revisions.
type dueIndex struct {
	mu   sync.Mutex
	at   map[string]dueAt
	live bool   // a watch keeps it current
	rev  uint64 // the newest rw_slack revision applied (tests wait for it)
}

type dueAt struct {
	account string
	at      time.Time
	ok      bool   // something is due at at; false: nothing (kept for its revision)
	rev     uint64 // newest revision of the record applied
}

func newDueIndex() *dueIndex { return &dueIndex{at: map[string]dueAt{}} }

func (d *dueIndex) isLive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.live
}

// set records the case's due time from its record at revision rev (0: this
// process's write about to be made, newest by definition). A revision older than one
// applied already is ignored.
func (d *dueIndex) set(caseID, account string, at time.Time, ok bool, rev uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, had := d.at[caseID]
	if had && rev != 0 && rev <= cur.rev {
		return
	}
	if rev == 0 {
		rev = cur.rev
	}
	if !ok && rev == 0 {
		delete(d.at, caseID)
		return
	}
	d.at[caseID] = dueAt{account: account, at: at, ok: ok, rev: rev}
}

// wrote notes that this process's write of the case's record got revision rev.
func (d *dueIndex) wrote(caseID string, rev uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if cur, had := d.at[caseID]; had && rev > cur.rev {
		cur.rev = rev
		d.at[caseID] = cur
	} else if !had {
		d.at[caseID] = dueAt{rev: rev}
	}
}

// dueBy lists the accounts with something due at now.
func (d *dueIndex) dueBy(now time.Time) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, e := range d.at {
		if e.ok && !now.Before(e.at) {
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

// track puts the due time of the record this process is about to write into the
// index.
func (n *Notifier) track(caseID string, r *record) { n.trackAt(caseID, r, 0) }

// trackAt puts the due time of the record at revision rev into the index.
func (n *Notifier) trackAt(caseID string, r *record, rev uint64) {
	if r == nil || r.AccountID == "" {
		n.due.set(caseID, "", time.Time{}, false, rev)
		return
	}
	at, ok := n.nextDue(r)
	n.due.set(caseID, r.AccountID, at, ok, rev)
}

func (n *Notifier) trackRaw(key string, value []byte, rev uint64) {
	if key == summaryKey {
		return
	}
	var r record
	if json.Unmarshal(value, &r) != nil {
		return
	}
	n.trackAt(key, &r, rev)
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
		n.trackRaw(key, e.Value(), e.Revision())
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
				n.due.set(e.Key(), "", time.Time{}, false, e.Revision())
				continue
			}
			n.trackRaw(e.Key(), e.Value(), e.Revision())
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
	nrev, err := n.b.Slack.Update(ctx, rec.CaseID, data, rev)
	if err != nil {
		return false
	}
	n.due.wrote(rec.CaseID, nrev)
	return true
}

func (n *Notifier) unclaim(ctx context.Context, caseID string, undo func(*record)) {
	if err := n.updateRecord(ctx, caseID, func(r *record) bool { undo(r); return true }); err != nil {
		n.log.Warn("give back reminder claim", "case", caseID, "err", err)
	}
}
