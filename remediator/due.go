package remediator

// The due-time index: what is owed at a time is found without reading every case.
//
// Every transition that leaves a case owing something at a time (a risk acceptance
// that expires, work that another instance may have left half done, a ticket to
// read) puts one entry per thing into the rw_due bucket, BEFORE the case itself is
// written (so a crash between the two leaves at most an entry that finds nothing to
// do, never a case nobody looks at again):
//
//	key   = "<unix minute>.<kind>.<account>"   value = case id
//	key   = "at.<kind>.<account>"              value = the minute of the current entry
//
// A timer (the periodic scan, the ticket poll) lists only the minutes that have come
// since its last pass, filtered by its kinds: its reads are proportional to what is
// due, not to the number of cases. For each account listed it reads the pointer (an
// entry superseded by a later one of its kind, present in the index, is dropped) and
// the record once, puts the next entries (never in a minute already listed), purges
// the fired keys from the bucket's stream (no delete markers pile up) and hands the
// records to its caller, which decides from the record, as before, whether anything
// is really due.
// Entries are hints: an early, duplicate or stale entry costs one read.
//
// What makes it complete: the scan at start-up reads every case (as before) and puts
// the entries that are missing; so does a full pass every fullPassEvery, which also
// refreshes the active-cases gauge. Entries are never scheduled further than
// dueHorizon ahead (a far expiry fires early, finds nothing, and is put again), so the
// bucket's MaxAge (bus.DueMaxAge) only ever removes entries nobody needs.
//
// Other timers add a kind to dueOf and call dueRecords with it.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// Kinds of due entries.
const (
	dueExpiry = "expiry" // a risk acceptance expires, verifying times out (scan)
	dueWork   = "work"   // owed work (pending, ticket ops, verifying, outbox) may be stale (scan)
	dueTicket = "ticket" // read the ticket's status (ticket poll)
)

const (
	// dueHorizon is the furthest ahead an entry is put.
	dueHorizon = 24 * time.Hour
	// fullPassEvery is how often a timer reads every case anyway (index repair, gauge).
	fullPassEvery = 6 * time.Hour
	// maxSlotWalk is the most minutes listed one by one; a longer gap (start-up, a
	// clock jump) lists the timer's kinds at once.
	maxSlotWalk = 120
)

// dueItem is one thing a record owes at a time.
type dueItem struct {
	Kind string
	At   time.Time
}

// dueIndex is the per-instance state of the timers over rw_due.
type dueIndex struct {
	mu       sync.Mutex
	cursor   map[string]int64     // kinds → last minute listed
	lastFull map[string]time.Time // kinds → last full pass
	stream   jetstream.Stream     // the bucket's stream, for purges
}

// forget makes the next pass of kinds a full one.
func (d *dueIndex) forget(kinds ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.lastFull, strings.Join(kinds, ","))
}

// dueOf lists what rec owes and when, as of now.
func (r *Remediator) dueOf(rec *record, now time.Time) []dueItem {
	if rec == nil {
		return nil
	}
	c := rec.Case
	var out []dueItem
	if c.State == model.StateRiskAccepted && c.Risk != nil {
		out = append(out, dueItem{dueExpiry, c.Risk.Expires})
	}
	workAt := latest(c.UpdatedAt, now).Add(r.cfg.StaleWork)
	if c.State == model.StateVerifying { // verifying is time-boxed (machine.go, verifyTimedOut)
		claimed := c.UpdatedAt
		if c.VerifyingSince != nil {
			claimed = *c.VerifyingSince
		}
		// The scan reads both of its kinds and ends the time box whichever fired: the
		// work entry, at the earlier of the two times, serves the timeout too (one
		// entry and pointer fewer on the path of "I deleted the keys").
		workAt = earliest(workAt, claimed.Add(r.cfg.VerifyTimeout))
	}
	// Not for the outbox alone: it is flushed right after the write, and a leftover is
	// flushed by the next touch of the account (a sweep's observation), the scan at
	// start-up, or the full pass.
	if len(rec.TicketOps) > 0 || len(c.Pending) > 0 || c.State == model.StateVerifying || r.shubOwed(rec) {
		out = append(out, dueItem{dueWork, workAt})
	}
	if c.State == model.StateTicketed && c.Ticket != nil {
		out = append(out, dueItem{dueTicket, now.Add(r.cfg.TicketPollInterval)})
	}
	return out
}

func slotOf(t time.Time) int64 { return t.Unix() / 60 }

func dueKey(slot int64, kind, account string) string {
	return strconv.FormatInt(slot, 10) + "." + kind + "." + account
}

// parseDueKey splits a key; ok is false for a key this version does not know.
func parseDueKey(key string) (slot int64, kind, account string, ok bool) {
	parts := strings.SplitN(key, ".", 3)
	if len(parts) != 3 || parts[2] == "" {
		return 0, "", "", false
	}
	slot, err := strconv.ParseInt(parts[0], 10, 64)
	return slot, parts[1], parts[2], err == nil
}

// scheduleDue puts rec's entries, each in a minute after now's (so never in one a
// timer has already listed) and at most dueHorizon ahead. gap, when set, is the
// least delay per kind (a retry); kinds, when given, limits the kinds put.
//
// A kind whose current entry (its pointer, and the entry it names) is already due no
// later than wanted, and not before the next minute, needs nothing: that entry fires
// first and its timer decides from the record then, as it does for any early hint.
// So a case moving on before its entries fire (verifying → resolved, a second write
// in the same minute) writes no entries. Entries and pointers are put side by side,
// all before the case (the caller's write): a pointer whose entry a crash left
// unwritten supersedes nothing (dueRecords).
func (r *Remediator) scheduleDue(ctx context.Context, rec *record, now time.Time, gap map[string]time.Duration, kinds ...string) error {
	type want struct {
		kind string
		slot int64
	}
	var wants []want
	for _, it := range r.dueOf(rec, now) {
		if len(kinds) > 0 && !slices.Contains(kinds, it.Kind) {
			continue
		}
		at := it.At
		if g := gap[it.Kind]; at.Before(now.Add(g)) {
			at = now.Add(g)
		}
		if far := now.Add(dueHorizon); at.After(far) {
			at = far
		}
		wants = append(wants, want{it.Kind, max(slotOf(at), slotOf(now)+1)})
	}
	// The kinds' pointers (and the entries they name) are read side by side.
	type write struct{ key, value string }
	needed := make([]bool, len(wants))
	errs := make([]error, len(wants))
	var wg sync.WaitGroup
	for i, w := range wants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, ok, err := r.pointer(ctx, w.kind, rec.AccountID)
			if err == nil && ok && p > slotOf(now) && p <= w.slot {
				var there bool
				if there, err = r.entryExists(ctx, p, w.kind, rec.AccountID); there {
					return // an entry fires early enough
				}
			}
			needed[i], errs[i] = err == nil, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var writes []write
	for i, w := range wants {
		if !needed[i] {
			continue
		}
		// The pointer says which entry is the current one: an older entry of the same
		// kind fires, finds a newer slot here (whose entry is in the index), and is
		// dropped without a successor.
		writes = append(writes, write{dueKey(w.slot, w.kind, rec.AccountID), rec.ID},
			write{pointerKey(w.kind, rec.AccountID), strconv.FormatInt(w.slot, 10)})
	}
	errs = make([]error, len(writes))
	for i, w := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.b.Due.Put(ctx, w.key, []byte(w.value)); err != nil {
				errs[i] = model.Wrap(model.CodeTransient, err, "schedule %s of %s", w.key, rec.AccountID)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// entryExists reports whether the index holds the entry of kind for account at slot.
func (r *Remediator) entryExists(ctx context.Context, slot int64, kind, account string) (bool, error) {
	_, err := r.b.Due.Get(ctx, dueKey(slot, kind, account))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, model.Wrap(model.CodeTransient, err, "read due entry of %s", account)
	}
	return true, nil
}

// pointerKey is the key naming the current entry of kind for account.
func pointerKey(kind, account string) string { return "at." + kind + "." + account }

// pointer is the slot of the current entry of kind for account (ok false: none known).
func (r *Remediator) pointer(ctx context.Context, kind, account string) (int64, bool, error) {
	e, err := r.b.Due.Get(ctx, pointerKey(kind, account))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, model.Wrap(model.CodeTransient, err, "read due pointer of %s", account)
	}
	slot, perr := strconv.ParseInt(string(e.Value()), 10, 64)
	return slot, perr == nil, nil
}

// dueRecords returns the records of the accounts with entries of the given kinds due
// by now, rescheduling their next entries and removing the fired ones. With full (or
// once every fullPassEvery per set of kinds) it returns every record instead, after
// putting the entries that are missing; the second result says which it did.
func (r *Remediator) dueRecords(ctx context.Context, full bool, kinds ...string) ([]*record, bool, error) {
	now := r.cfg.Now()
	cur := slotOf(now)
	set := strings.Join(kinds, ",")
	r.due.mu.Lock()
	defer r.due.mu.Unlock()
	if r.due.cursor == nil {
		r.due.cursor, r.due.lastFull = map[string]int64{}, map[string]time.Time{}
	}
	if last, ok := r.due.lastFull[set]; full || !ok || now.Sub(last) >= fullPassEvery || now.Before(last) {
		recs, err := r.repairDue(ctx, now, kinds)
		if err != nil {
			return nil, false, err
		}
		r.due.lastFull[set] = now
		r.due.cursor[set] = cur
		return recs, true, nil
	}
	from := r.due.cursor[set] - 1 // the last minute again: entries put late in it
	var filters []string
	if cur-from > maxSlotWalk {
		for _, k := range kinds {
			filters = append(filters, "*."+k+".*")
		}
	} else {
		for s := from; s <= cur; s++ {
			for _, k := range kinds {
				filters = append(filters, dueKey(s, k, "*"))
			}
		}
	}
	keys, err := r.dueKeys(ctx, filters...)
	if err != nil {
		return nil, false, err
	}
	byAccount := map[string][]string{}
	var accounts []string
	for _, k := range keys {
		slot, _, account, ok := parseDueKey(k)
		if !ok || slot > cur {
			continue
		}
		if byAccount[account] == nil {
			accounts = append(accounts, account)
		}
		byAccount[account] = append(byAccount[account], k)
	}
	slices.Sort(accounts)
	// A retry of what fires now waits at least a pass of its timer.
	gap := map[string]time.Duration{dueExpiry: r.cfg.ExpiryScanInterval, dueWork: r.cfg.StaleWork,
		dueTicket: r.cfg.TicketPollInterval}
	var out []*record
	var errs []error
accounts:
	for _, account := range accounts {
		// Entries superseded by a newer one of the same kind go without a successor.
		var live, stale []string
		var liveKinds []string
		for _, k := range byAccount[account] {
			slot, kind, _, _ := parseDueKey(k)
			p, ok, err := r.pointer(ctx, kind, account)
			if err != nil {
				errs = append(errs, err) // its keys stay: the next pass lists them again
				continue accounts
			}
			if ok && p > slot {
				// Superseded, unless the newer entry is not there (its writer stopped
				// between the pointer and the entry, which are put side by side).
				newer, err := r.entryExists(ctx, p, kind, account)
				if err != nil {
					errs = append(errs, err)
					continue accounts
				}
				if newer {
					stale = append(stale, k)
					continue
				}
			}
			live = append(live, k)
			if !slices.Contains(liveKinds, kind) {
				liveKinds = append(liveKinds, kind)
			}
		}
		var rec *record
		if len(live) > 0 {
			var err error
			rec, _, err = r.load(ctx, account)
			if err == nil && rec != nil {
				err = r.scheduleDue(ctx, rec, now, gap, liveKinds...)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			// A kind no longer owed loses its pointer too.
			owed := map[string]bool{}
			for _, it := range r.dueOf(rec, now) {
				owed[it.Kind] = true
			}
			for _, kind := range liveKinds {
				if !owed[kind] {
					stale = append(stale, pointerKey(kind, account))
				}
			}
		}
		if err := r.purgeDue(ctx, append(live, stale...)...); err != nil {
			errs = append(errs, err)
		}
		if rec != nil {
			out = append(out, rec)
		}
	}
	if len(errs) == 0 {
		r.due.cursor[set] = cur
	}
	return out, false, errors.Join(errs...)
}

// repairDue reads every record for a full pass of kinds: the entries of kinds due by
// now are removed (the pass itself serves every record), and every entry a record
// needs and the index lacks is put.
func (r *Remediator) repairDue(ctx context.Context, now time.Time, kinds []string) ([]*record, error) {
	recs, err := r.records(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := r.dueKeys(ctx, ">")
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	var fired []string
	for _, k := range keys {
		slot, kind, account, ok := parseDueKey(k)
		switch {
		case !ok:
		case slices.Contains(kinds, kind) && slot <= slotOf(now):
			fired = append(fired, k)
		default:
			have[kind+"."+account] = true
		}
	}
	for _, rec := range recs {
		var missing []string
		for _, it := range r.dueOf(rec, now) {
			if !have[it.Kind+"."+rec.AccountID] {
				missing = append(missing, it.Kind)
			}
		}
		if len(missing) > 0 {
			if err := r.scheduleDue(ctx, rec, now, nil, missing...); err != nil {
				return nil, err
			}
		}
	}
	return recs, r.purgeDue(ctx, fired...)
}

// dueKeys lists the keys of rw_due matching any of filters.
func (r *Remediator) dueKeys(ctx context.Context, filters ...string) ([]string, error) {
	lister, err := r.b.Due.ListKeysFiltered(ctx, filters...)
	if err != nil {
		return nil, model.Wrap(model.CodeTransient, err, "list due work")
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	return keys, ctx.Err()
}

// purgeDue removes fired keys from the bucket's stream, markers and all.
func (r *Remediator) purgeDue(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	s := r.due.stream
	if s == nil {
		var err error
		if s, err = r.b.JS.Stream(ctx, "KV_"+bus.BucketDue); err != nil {
			return model.Wrap(model.CodeTransient, err, "open the due index")
		}
		r.due.stream = s
	}
	for _, k := range keys {
		if err := s.Purge(ctx, jetstream.WithPurgeSubject("$KV."+bus.BucketDue+"."+k)); err != nil {
			return model.Wrap(model.CodeTransient, err, "remove due entry %s", k)
		}
	}
	return nil
}

// String is for logs.
func (it dueItem) String() string {
	return fmt.Sprintf("%s@%s", it.Kind, it.At.UTC().Format(time.RFC3339))
}
