package remediator

// Accounts that cannot be checked. A failed check of an account with an active case
// is also a check_failed event on the case (once per stable failure); an account
// without a case has no thread to say it in, yet an account whose role is missing or
// denied is a blind spot: root keys created there are never found. So the remediator
// counts every account's failed checks in a row in rw_sched
// (bus.UncheckedKeyPrefix+account, a bus.UncheckedRecord); after UncheckedAfter
// failures in a row it logs an error once per distinct failure and the account is
// unchecked: GET /api/v1/unchecked, rootwarden_remediator_unchecked_accounts (read
// from the live copy, internal/bus coverage.go, so it moves when a record does), and
// in Slack /rootwarden status, the App Home and the daily summary
// (notifier/coverage.go). The first check that works again deletes the record.

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// DefaultUncheckedAfter is how many failed checks in a row make an account unchecked.
const DefaultUncheckedAfter = 3

const uncheckedPrefix = bus.UncheckedKeyPrefix

type unchecked = bus.UncheckedRecord

// noteCheck records the outcome of a check of an account.
func (r *Remediator) noteCheck(ctx context.Context, o model.Observation) {
	if !o.Failed() && !r.mayBeUnchecked(ctx, o.AccountID) {
		return // the common case: a clean account that works, no KV round trip
	}
	key := uncheckedPrefix + o.AccountID
	kv := r.b.Sched
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		e, err := kv.Get(ctx, key)
		missing := errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)
		if err != nil && !missing {
			return
		}
		if !o.Failed() {
			if !missing {
				_ = kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
				r.log.Info("account can be checked again", "account", o.AccountID)
			}
			r.uncheckedMu.Lock()
			delete(r.uncheckedKnown, o.AccountID)
			r.uncheckedMu.Unlock()
			return
		}
		var u unchecked
		if !missing {
			_ = json.Unmarshal(e.Value(), &u)
		}
		if u.Failures == 0 {
			u.Since = o.ObservedAt
		}
		if securityHubOnly(o) {
			u.Failures = max(u.Failures, r.cfg.UncheckedAfter-1) // unchecked at once (securityhub.go)
		}
		u.Failures++
		u.Last = o.ObservedAt
		u.Error = StableError(o.ErrorCode + ": " + o.Error)
		report := u.Failures >= r.cfg.UncheckedAfter && u.Reported != u.Error
		if report {
			u.Reported = u.Error
		}
		data, _ := json.Marshal(u)
		if missing {
			_, err = kv.Create(ctx, key, data)
		} else {
			_, err = kv.Update(ctx, key, data, e.Revision())
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err == nil {
			r.uncheckedMu.Lock()
			if r.uncheckedKnown != nil {
				r.uncheckedKnown[o.AccountID] = true
			}
			r.uncheckedMu.Unlock()
		}
		if err == nil && report {
			r.log.Error("account cannot be checked: root access keys there would go unnoticed", "account", o.AccountID,
				"failures", u.Failures, "since", u.Since, "err", u.Error)
		}
		return
	}
}

// mayBeUnchecked reports whether the account may have a failure count (read from the
// bucket once, kept up to date by noteCheck; another replica's counts are found when
// that account fails here too).
func (r *Remediator) mayBeUnchecked(ctx context.Context, account string) bool {
	r.uncheckedMu.Lock()
	defer r.uncheckedMu.Unlock()
	if r.uncheckedKnown == nil {
		l, err := r.b.Sched.ListKeysFiltered(ctx, uncheckedPrefix+">")
		if err != nil {
			return true
		}
		known := map[string]bool{}
		for k := range l.Keys() {
			known[k[len(uncheckedPrefix):]] = true
		}
		r.uncheckedKnown = known
	}
	return r.uncheckedKnown[account]
}

// UncheckedAccount is an account that cannot be checked, as GET /api/v1/unchecked
// shows it.
type UncheckedAccount struct {
	AccountID   string    `json:"account_id"`
	Reason      string    `json:"reason"` // the failure's group (internal/bus UncheckedReason)
	Error       string    `json:"error"`  // the last failure
	Failures    int       `json:"failures"`
	Since       time.Time `json:"since"`
	LastFailure time.Time `json:"last_failure"`
}

// UncheckedAccounts lists the accounts that could not be checked UncheckedAfter times
// in a row and still fail (an account whose last failure is older than the previous
// sweep's start is no longer swept: it left the organization), by account id.
func (r *Remediator) UncheckedAccounts(ctx context.Context) ([]UncheckedAccount, error) {
	var sw *bus.SweepRecord
	if rec, err := r.b.Sweep(ctx); err == nil {
		sw = &rec
	} else if !errors.Is(err, bus.ErrNoSweep) && !errors.Is(err, bus.ErrSweepUnreadable) {
		return nil, model.Wrap(model.CodeTransient, err, "list unchecked accounts")
	}
	l, err := r.b.Sched.ListKeysFiltered(ctx, uncheckedPrefix+">")
	if err != nil {
		return nil, model.Wrap(model.CodeTransient, err, "list unchecked accounts")
	}
	out := []UncheckedAccount{}
	for k := range l.Keys() {
		e, err := r.b.Sched.Get(ctx, k)
		if err != nil {
			continue
		}
		var u unchecked
		if json.Unmarshal(e.Value(), &u) == nil && u.Failures >= r.cfg.UncheckedAfter && u.Current(sw) {
			out = append(out, UncheckedAccount{AccountID: k[len(uncheckedPrefix):], Reason: bus.UncheckedReason(u.Error),
				Error: u.Error, Failures: u.Failures, Since: u.Since.UTC(), LastFailure: u.LastFailure().UTC()})
		}
	}
	slices.SortFunc(out, func(a, b UncheckedAccount) int { return strings.Compare(a.AccountID, b.AccountID) })
	return out, nil
}

// Unchecked is UncheckedAccounts as account → failure.
func (r *Remediator) Unchecked(ctx context.Context) (map[string]string, error) {
	l, err := r.UncheckedAccounts(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, u := range l {
		out[u.AccountID] = u.Error
	}
	return out, nil
}

// uncheckedNow is the number of unchecked accounts in the live copy (0 before Run
// starts it).
func (r *Remediator) uncheckedNow() int {
	cov := r.coverage.Load()
	if cov == nil {
		return 0
	}
	return len(cov.Snapshot().Unchecked())
}
