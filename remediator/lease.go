package remediator

// Work claims. Owed work (open a ticket, run a check, comment on a ticket) is found
// by every replica's scan; a claim in rw_sched, written with compare-and-set, makes
// exactly one of them run it. The claim names its owner and lapses LeaseTTL after its
// last renewal, so the work of a replica that died is taken over within seconds;
// while the work runs the owner renews it every third of LeaseTTL. The clock is the
// wall clock (claims are between processes), not Config.Now. One step runs outside
// the claim: the check an action has just asked for (checkAtOnce, work.go), a read
// of AWS whose answer is decided by compare-and-set.

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/wait"
)

type lease struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

func leaseKey(account string) string { return "remediator.work." + account }

// claim takes or renews the account's claim; false when another owner holds it. rev
// is the revision it wrote (release gives the claim up at it).
func (r *Remediator) claim(ctx context.Context, account string) (ok bool, rev uint64, err error) {
	kv := r.b.Sched
	data, _ := json.Marshal(lease{Owner: r.cfg.Instance, Until: time.Now().Add(r.cfg.LeaseTTL)})
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		e, err := kv.Get(ctx, leaseKey(account))
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			if rev, err := kv.Create(ctx, leaseKey(account), data); err == nil {
				return true, rev, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return false, 0, model.Wrap(model.CodeTransient, err, "claim work of %s", account)
			}
			continue
		}
		if err != nil {
			return false, 0, model.Wrap(model.CodeTransient, err, "read work claim of %s", account)
		}
		var cur lease
		_ = json.Unmarshal(e.Value(), &cur)
		if cur.Owner != r.cfg.Instance && time.Now().Before(cur.Until) {
			return false, 0, nil
		}
		if rev, err := kv.Update(ctx, leaseKey(account), data, e.Revision()); err == nil {
			return true, rev, nil
		} else if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, 0, model.Wrap(model.CodeTransient, err, "claim work of %s", account)
		}
	}
	return false, 0, nil
}

// released is the value of a claim given up: lapsed, no owner. Giving up overwrites
// the claim rather than deleting it, so that the next claim is a read and one write
// (a Create over a delete marker costs the client two writes and a read).
var released, _ = json.Marshal(lease{})

// release gives the claim up when this replica still holds it: the claim is
// overwritten at rev, the revision this replica last wrote, so a claim another
// replica took since (after this one lapsed) stays. Only when that revision is not
// the latest (a renewal whose answer was lost wrote another) is the claim read.
func (r *Remediator) release(ctx context.Context, account string, rev uint64) {
	_, err := r.b.Sched.Update(ctx, leaseKey(account), released, rev)
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return
	}
	e, err := r.b.Sched.Get(ctx, leaseKey(account))
	if err != nil {
		return
	}
	var cur lease
	if json.Unmarshal(e.Value(), &cur) != nil || cur.Owner != r.cfg.Instance {
		return
	}
	_, _ = r.b.Sched.Update(ctx, leaseKey(account), released, e.Revision())
}

// leased runs f under the account's claim, renewing it while f runs; f's context
// ends when the claim is lost. held is false when another replica holds the claim
// (f did not run).
func (r *Remediator) leased(ctx context.Context, account string, f func(context.Context) error) (held bool, err error) {
	ok, rev, err := r.claim(ctx, account)
	if err != nil || !ok {
		return false, err
	}
	var last atomic.Uint64 // the revision of this replica's latest claim
	last.Store(rev)
	wctx, cancel := context.WithCancel(ctx)
	stopRenewing := wait.Every(r.cfg.LeaseTTL/3, func() bool {
		ok, rev, err := r.claim(wctx, account)
		if err == nil && !ok {
			r.log.Warn("work claim lost to another replica; stopping", "account", account)
			cancel()
			return false
		}
		if ok {
			last.Store(rev)
		}
		return true
	})
	err = f(wctx)
	cancel()
	stopRenewing() // no renewal in flight: last is the revision to give up
	// A shutdown still gives the claim up, so a restart resumes at once.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	r.release(rctx, account, last.Load())
	rcancel()
	return true, err
}
