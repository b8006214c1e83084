package remediator

// Case state lives in the rw_cases bucket, one value per account. Every write is a
// compare-and-set on the entry's revision (Create for a new key, Update with the
// revision read); on a revision mismatch the state is read again and the input decided
// again from the fresh state, never overwritten.
//
// Crash safety of the audit log: the events a transition produces are stored in the
// same value as the new state (the outbox), in the same compare-and-set. After the
// write they are published with Nats-Msg-Id = event id (so JetStream drops repeats)
// and then removed from the outbox with another compare-and-set. A crash anywhere in
// between leaves them in the outbox, and the next touch of the account (a redelivered
// message, the scan at start-up, the periodic scan) publishes them again.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/metrics"
	"github.com/rootwarden/rootwarden/internal/model"
)

// record is the value stored under an account in rw_cases: the case (its fields at
// the top level, so the value reads as a model.Case) plus the remediator's own
// bookkeeping: events not yet published and ticket operations not yet done.
type record struct {
	model.Case
	Outbox    []model.CaseEvent `json:"outbox,omitempty"`
	TicketOps []TicketOp        `json:"ticket_ops,omitempty"`
	// TicketClosure is the closure of the case's ticket last taken as "I deleted the
	// keys" (ticket id @ the tracker's closure time): one closure is verified once.
	TicketClosure string `json:"ticket_closure,omitempty"`
	// SecurityHub is what the account's Security Hub findings were last made to say
	// ("<case id>/<status>"; securityhub.go).
	SecurityHub string `json:"securityhub,omitempty"`
	// OpenAttemptAt is when this case's ticket was last asked to be opened (wall
	// clock): an attempt right after an interrupted one waits for the tracker's
	// search to show what the interrupted one may have created.
	OpenAttemptAt *time.Time `json:"open_attempt_at,omitempty"`
	// ChainHead is model.ChainHash of the account's last case event (published or in
	// the outbox): the PrevHash of its next one (chain.go).
	ChainHead string `json:"chain_head,omitempty"`
}

const maxCASAttempts = 20

// load reads an account's record; nil (and revision 0) when it has none.
func (r *Remediator) load(ctx context.Context, account string) (*record, uint64, error) {
	e, err := r.b.Cases.Get(ctx, account)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, model.Wrap(model.CodeTransient, err, "read case of %s", account)
	}
	var rec record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, 0, model.Wrap(model.CodeInternal, err, "decode case of %s", account)
	}
	return &rec, e.Revision(), nil
}

// put writes rec with compare-and-set: Create when rev is 0, Update otherwise.
// It reports conflict=true when someone else wrote first.
func (r *Remediator) put(ctx context.Context, account string, rec *record, rev uint64) (conflict bool, err error) {
	conflict, _, err = r.putRev(ctx, account, rec, rev)
	return conflict, err
}

// putRev is put that also returns the revision written.
func (r *Remediator) putRev(ctx context.Context, account string, rec *record, rev uint64) (conflict bool, newRev uint64, err error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return false, 0, model.Wrap(model.CodeInternal, err, "encode case of %s", account)
	}
	if rev == 0 {
		newRev, err = r.b.Cases.Create(ctx, account, data)
	} else {
		newRev, err = r.b.Cases.Update(ctx, account, data, rev)
	}
	switch {
	case err == nil:
		return false, newRev, nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch): // first: it also matches ErrKeyExists
		return true, 0, nil
	case rev == 0 && errors.Is(err, jetstream.ErrKeyExists):
		return true, 0, nil
	}
	return false, 0, model.Wrap(model.CodeTransient, err, "save case of %s", account)
}

// apply decides input against the current state and stores the decision with
// compare-and-set, re-deciding from fresh state on conflict. Events are published
// right after the write (outbox). It returns the decision that was stored.
//
// Within this instance one apply per account runs at a time (two inputs for one
// account, such as a check's answer and the same observation arriving as a finding,
// would otherwise both decide from the same revision, both schedule, and one lose
// the compare-and-set and decide again). Across replicas the compare-and-set decides.
func (r *Remediator) apply(ctx context.Context, account string, input func(now time.Time) Input) (Decision, error) {
	defer r.applying.lock(account)()
	d, empty, err := r.save(ctx, account, input, nil)
	if empty != nil {
		err = empty()
	}
	return d, err
}

// applyEmptyingLater is apply returning once the decision is stored and its events
// are published: the outbox is emptied beside the caller's next step. Until the
// outbox is empty the account's next apply, and the work's first read (runWork),
// wait for it; should the emptying fail, the next touch of the account publishes the
// events again (deduplicated) and empties it, as after a crash at that point.
// stored, when set, is called with the decision and the record as soon as they are
// stored, before the events are published: the caller's next step (the check a click asks for) starts
// while they are; whatever it applies is decided after them.
func (r *Remediator) applyEmptyingLater(ctx context.Context, account string, input func(now time.Time) Input, stored func(Decision, *record)) (Decision, error) {
	unlock := r.applying.lock(account)
	d, empty, err := r.save(ctx, account, input, stored)
	if empty == nil || err != nil {
		unlock()
		return d, err
	}
	if !r.goTracked(ctx, func() {
		defer unlock()
		if err := empty(); err != nil {
			r.log.Debug("empty the outbox; the next touch of the account does", "account", account, "err", err)
		}
	}) {
		defer unlock()
		return d, empty()
	}
	return d, nil
}

// save is apply's decision and write, with the account's lock held. stored, when
// set, is called once the decision is stored, before its events are published.
// empty, when set, removes the published events from the outbox and must be called.
func (r *Remediator) save(ctx context.Context, account string, input func(now time.Time) Input, stored func(Decision, *record)) (d Decision, empty func() error, err error) {
	var newest time.Time // the newest observation of the account on RW_FINDINGS
	newestRead := false
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		rec, rev, err := r.load(ctx, account)
		if err != nil {
			return Decision{}, nil, err
		}
		in := r.policy(input(r.cfg.Now()))
		var cur *model.Case
		if rec != nil {
			cur = &rec.Case
		}
		d, err = Apply(cur, in)
		if err != nil {
			return Decision{}, nil, err
		}
		if d.Changed() && cur != nil && in.Finding != nil {
			// The durable stale-observation guard (steady.go): decided again against
			// the newest observation on RW_FINDINGS, read once per apply.
			if !newestRead {
				if newest, err = r.b.NewestObservedAt(ctx, account); err != nil {
					return Decision{}, nil, model.Wrap(model.CodeTransient, err, "read the newest observation of %s", account)
				}
				newestRead = true
			}
			if newest.After(in.Seen) {
				in.Seen = newest
				if d, err = Apply(cur, in); err != nil {
					return Decision{}, nil, err
				}
			}
		}
		if !d.Changed() {
			// Nothing new; still make sure earlier events went out (redelivery after a crash).
			if rec != nil && len(rec.Outbox) > 0 {
				return d, nil, r.flush(ctx, account)
			}
			return d, nil, nil
		}
		next := &record{Case: *d.Case}
		if rec != nil {
			next.SecurityHub = rec.SecurityHub
			next.Outbox = slices.Clone(rec.Outbox)
			next.TicketOps = slices.Clone(rec.TicketOps)
			next.ChainHead = rec.ChainHead
		}
		if err := chain(next, d.Events); err != nil {
			return Decision{}, nil, err
		}
		next.Outbox = append(next.Outbox, d.Events...)
		next.TicketOps = append(next.TicketOps, d.TicketOps...)
		// What the case will owe at a time goes into the due-time index first (due.go).
		if err := r.scheduleDue(ctx, next, in.At, nil); err != nil {
			return Decision{}, nil, err
		}
		conflict, newRev, err := r.putRev(ctx, account, next, rev)
		if err != nil {
			return Decision{}, nil, err
		}
		if conflict {
			r.log.Debug("case changed underneath; deciding again", "account", account, "attempt", attempt+1)
			continue
		}
		for _, ev := range d.Events {
			r.transitions.WithLabelValues(string(ev.Type), string(ev.To)).Inc()
			metrics.CaseEvent(ev)
			r.log.Info("case event", "account", account, "case", ev.CaseID, "event", ev.Type, "from", ev.From,
				"to", ev.To, "actor", ev.Actor.String(), "reason", ev.Reason)
		}
		if h := r.cfg.afterSave; h != nil {
			if err := h(account); err != nil {
				return d, nil, model.Wrap(model.CodeTransient, err, "after saving case of %s", account)
			}
		}
		if stored != nil {
			stored(d, next)
		}
		done, err := r.publishOutbox(ctx, next)
		if err != nil {
			return d, nil, err
		}
		r.recordPosture(ctx, d.Events)
		return d, func() error { return r.emptyOutbox(ctx, account, next, newRev, done) }, nil
	}
	return Decision{}, nil, model.Errorf(model.CodeConflict, "case of %s kept changing: gave up after %d attempts", account, maxCASAttempts)
}

// flush publishes the outbox of an account and removes what was published.
func (r *Remediator) flush(ctx context.Context, account string) error {
	rec, rev, err := r.load(ctx, account)
	if err != nil || rec == nil || len(rec.Outbox) == 0 {
		return err
	}
	return r.flushSaved(ctx, account, rec, rev)
}

// flushSaved is flush of the record just read or written at rev: no second read,
// and the outbox is emptied with one compare-and-set when nothing wrote between
// (the usual case: this remediator is the account's only writer).
func (r *Remediator) flushSaved(ctx context.Context, account string, rec *record, rev uint64) error {
	if len(rec.Outbox) == 0 {
		return nil
	}
	done, err := r.publishOutbox(ctx, rec)
	if err != nil {
		return err
	}
	return r.emptyOutbox(ctx, account, rec, rev, done)
}

// publishOutbox publishes rec's outbox (Nats-Msg-Id = event id) and returns the ids
// published.
func (r *Remediator) publishOutbox(ctx context.Context, rec *record) (map[string]bool, error) {
	done := map[string]bool{}
	for _, ev := range rec.Outbox {
		if _, err := r.b.PublishJSON(ctx, bus.CaseSubject(ev.AccountID), ev.ID, ev); err != nil {
			return nil, model.Wrap(model.CodeTransient, err, "publish case event %s", ev.ID)
		}
		done[ev.ID] = true
	}
	return done, nil
}

// emptyOutbox removes the events published (done) from the outbox of rec, stored at
// rev: one compare-and-set when nothing wrote since, else read and retry.
func (r *Remediator) emptyOutbox(ctx context.Context, account string, rec *record, rev uint64, done map[string]bool) error {
	if len(done) == 0 {
		return nil
	}
	sent := *rec
	sent.Outbox = slices.DeleteFunc(slices.Clone(rec.Outbox), func(ev model.CaseEvent) bool { return done[ev.ID] })
	if conflict, _, err := r.putRev(ctx, account, &sent, rev); err == nil && !conflict {
		return nil
	}
	return r.update(ctx, account, func(rec *record) bool {
		n := len(rec.Outbox)
		rec.Outbox = slices.DeleteFunc(rec.Outbox, func(ev model.CaseEvent) bool { return done[ev.ID] })
		return len(rec.Outbox) != n
	})
}

// update changes the remediator's bookkeeping in a record (never the case state) with
// compare-and-set; f reports whether it changed anything.
func (r *Remediator) update(ctx context.Context, account string, f func(*record) bool) error {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		rec, rev, err := r.load(ctx, account)
		if err != nil || rec == nil {
			return err
		}
		if !f(rec) {
			return nil
		}
		conflict, err := r.put(ctx, account, rec, rev)
		if err != nil {
			return err
		}
		if !conflict {
			return nil
		}
	}
	return model.Errorf(model.CodeConflict, "case of %s kept changing: gave up after %d attempts", account, maxCASAttempts)
}

// recordRefusal leaves a case event saying why a message was refused, when the
// account has a case to attach it to.
func (r *Remediator) recordRefusal(ctx context.Context, account, what string, cause error) {
	reason := fmt.Sprintf("%s refused: %s", what, cause)
	_, err := r.apply(ctx, account, func(now time.Time) Input {
		return Input{At: now, Refusal: reason}
	})
	if err != nil {
		r.log.Warn("could not record refusal", "account", account, "err", err)
	}
}

// records lists every account's record.
func (r *Remediator) records(ctx context.Context) ([]*record, error) {
	lister, err := r.b.Cases.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, model.Wrap(model.CodeTransient, err, "list cases")
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []*record
	for _, k := range keys {
		rec, _, err := r.load(ctx, k)
		if err != nil {
			return nil, err
		}
		if rec != nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

// accountLocks serialises work per account within this instance; an account's
// entry lives while someone holds or waits for it.
type accountLocks struct {
	mu sync.Mutex
	m  map[string]*accountLock
}

type accountLock struct {
	sync.Mutex
	users int
}

// lock takes the account's lock and returns its unlock.
func (l *accountLocks) lock(account string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*accountLock{}
	}
	al := l.m[account]
	if al == nil {
		al = &accountLock{}
		l.m[account] = al
	}
	al.users++
	l.mu.Unlock()
	al.Lock()
	return func() {
		al.Unlock()
		l.mu.Lock()
		if al.users--; al.users == 0 {
			delete(l.m, account)
		}
		l.mu.Unlock()
	}
}
