package remediator

// Accounts that cannot be checked. A failed check of an account with an active case
// is a check_failed event on the case (once per stable failure). An account without
// a case has no thread to say it in, yet an account whose role is missing or denied
// is a blind spot: root keys created there are never found. The remediator counts
// such failures per account in rw_sched ("remediator.unchecked.<account>"); after
// UncheckedAfter failures in a row it logs an error once per distinct failure and
// counts the account in rootwarden_remediator_unchecked_accounts. The first check
// that works again clears it.

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/model"
)

// DefaultUncheckedAfter is how many failed checks in a row make an account unchecked.
const DefaultUncheckedAfter = 3

const uncheckedPrefix = "remediator.unchecked."

type unchecked struct {
	Since    time.Time `json:"since"`
	Failures int       `json:"failures"`
	Error    string    `json:"error"`              // stable text of the last failure
	Reported string    `json:"reported,omitempty"` // the failure last reported
}

// noteCheck records the outcome of a check of an account without an active case.
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

// Unchecked lists the accounts that could not be checked UncheckedAfter times in a
// row, with the failure.
func (r *Remediator) Unchecked(ctx context.Context) (map[string]string, error) {
	l, err := r.b.Sched.ListKeysFiltered(ctx, uncheckedPrefix+">")
	if err != nil {
		return nil, model.Wrap(model.CodeTransient, err, "list unchecked accounts")
	}
	out := map[string]string{}
	for k := range l.Keys() {
		e, err := r.b.Sched.Get(ctx, k)
		if err != nil {
			continue
		}
		var u unchecked
		if json.Unmarshal(e.Value(), &u) == nil && u.Failures >= r.cfg.UncheckedAfter {
			out[k[len(uncheckedPrefix):]] = u.Error
		}
	}
	return out, nil
}
