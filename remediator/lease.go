package remediator

// Work claims. Owed work (open a ticket, run a check, comment on a ticket) is found
// by every replica's scan; a claim in rw_sched, written with compare-and-set, makes
// exactly one of them run it. The claim names its owner and lapses LeaseTTL after its
// last renewal, so the work of a replica that died is taken over within seconds;
// while the work runs the owner renews it every third of LeaseTTL. The clock is the
// wall clock (claims are between processes), not Config.Now.

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/model"
)

type lease struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

func leaseKey(account string) string { return "remediator.work." + account }

// claim takes or renews the account's claim; false when another owner holds it.
func (r *Remediator) claim(ctx context.Context, account string) (bool, error) {
	kv := r.b.Sched
	data, _ := json.Marshal(lease{Owner: r.cfg.Instance, Until: time.Now().Add(r.cfg.LeaseTTL)})
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		e, err := kv.Get(ctx, leaseKey(account))
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			if _, err := kv.Create(ctx, leaseKey(account), data); err == nil {
				return true, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return false, model.Wrap(model.CodeTransient, err, "claim work of %s", account)
			}
			continue
		}
		if err != nil {
			return false, model.Wrap(model.CodeTransient, err, "read work claim of %s", account)
		}
		var cur lease
		_ = json.Unmarshal(e.Value(), &cur)
		if cur.Owner != r.cfg.Instance && time.Now().Before(cur.Until) {
			return false, nil
		}
		if _, err := kv.Update(ctx, leaseKey(account), data, e.Revision()); err == nil {
			return true, nil
		} else if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, model.Wrap(model.CodeTransient, err, "claim work of %s", account)
		}
	}
	return false, nil
}

// release gives the claim up when this replica still holds it.
func (r *Remediator) release(ctx context.Context, account string) {
	e, err := r.b.Sched.Get(ctx, leaseKey(account))
	if err != nil {
		return
	}
	var cur lease
	if json.Unmarshal(e.Value(), &cur) != nil || cur.Owner != r.cfg.Instance {
		return
	}
	_ = r.b.Sched.Delete(ctx, leaseKey(account), jetstream.LastRevision(e.Revision()))
}

// leased runs f under the account's claim, renewing it while f runs; f's context
// ends when the claim is lost. held is false when another replica holds the claim
// (f did not run).
func (r *Remediator) leased(ctx context.Context, account string, f func(context.Context) error) (held bool, err error) {
	ok, err := r.claim(ctx, account)
	if err != nil || !ok {
		return false, err
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(r.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if ok, err := r.claim(wctx, account); err == nil && !ok {
					r.log.Warn("work claim lost to another replica; stopping", "account", account)
					cancel()
					return
				}
			}
		}
	}()
	err = f(wctx)
	close(done)
	cancel()
	// A shutdown still gives the claim up, so a restart resumes at once.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	r.release(rctx, account)
	rcancel()
	return true, err
}
