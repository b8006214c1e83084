package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// The inventory is the accounts the last sweep listed, with what Organizations says
// of them (name, OU path, tags), one key per account in the rw_accounts bucket. It
// serves three purposes:
//
//   - a sweep dispatches the previous inventory's accounts at once, before the fresh
//     listing, so checks do not wait for Organizations' pagination; the listing then
//     adds the accounts it finds that were not dispatched, and the inventory is
//     reconciled when it is complete (new and changed accounts written, the ones
//     that left deleted);
//   - events and on-demand checks take the account from it (no DescribeAccount per
//     event): every detector process keeps a copy in memory, fed by a watch;
//   - every observation carries the account's OU path and tags from it.

// loadInventory reads the whole inventory (one ordered consumer, not a read per key).
func (d *Detector) loadInventory(ctx context.Context) (map[string]accountInfo, error) {
	w, err := d.b.Accounts.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read account inventory: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]accountInfo{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("read account inventory: watch closed")
			}
			if e == nil {
				return out, nil // the initial values are all there
			}
			var a accountInfo
			if err := json.Unmarshal(e.Value(), &a); err != nil || !accountIDRE.MatchString(a.ID) {
				d.log.Warn("skipping unreadable inventory entry", "key", e.Key())
				continue
			}
			out[a.ID] = a
		}
	}
}

// watchInventory keeps the engine's directory equal to the inventory until ctx ends.
// ready is closed once the initial values are in.
func (d *Detector) watchInventory(ctx context.Context, ready chan<- struct{}) error {
	w, err := d.b.Accounts.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch account inventory: %w", err)
	}
	defer func() { _ = w.Stop() }()
	once := sync.OnceFunc(func() { close(ready) })
	defer once()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil {
				once()
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				d.e.forget(e.Key())
				continue
			}
			var a accountInfo
			if err := json.Unmarshal(e.Value(), &a); err != nil || a.ID != e.Key() {
				continue
			}
			d.e.dirMu.Lock()
			d.e.dir[a.ID] = a
			d.e.dirMu.Unlock()
		}
	}
}

// keepAccount writes one account's entry (new tags, or a new account).
func (d *Detector) keepAccount(ctx context.Context, a accountInfo) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := d.b.Accounts.Put(ctx, a.ID, data); err != nil {
		return fmt.Errorf("write inventory entry %s: %w", a.ID, err)
	}
	d.e.dirMu.Lock()
	d.e.dir[a.ID] = a
	d.e.dirMu.Unlock()
	return nil
}

// reconcile writes the fresh listing over the previous inventory: entries that are
// new or changed are written, entries of accounts no longer listed are deleted.
// It returns how many were written and deleted.
func (d *Detector) reconcile(ctx context.Context, prev, fresh map[string]accountInfo) (written, deleted int, err error) {
	type op struct {
		a   accountInfo
		del bool
	}
	ops := make(chan op)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range ops {
				var err error
				if o.del {
					err = d.b.Accounts.Delete(ctx, o.a.ID)
				} else {
					err = d.keepAccount(ctx, o.a)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for id, a := range fresh {
		// Jobs of this sweep may have read tags since the listing began: keep them.
		d.e.dirMu.Lock()
		cur, ok := d.e.dir[id]
		d.e.dirMu.Unlock()
		if ok {
			a = mergeListed(a, cur)
			if sameOrgDetails(cur, a) && cur.TagsAt.Equal(a.TagsAt) {
				if old, had := prev[id]; had && sameOrgDetails(old, a) && old.TagsAt.Equal(a.TagsAt) {
					continue // unchanged since the last sweep
				}
				if _, err := d.b.Accounts.Get(ctx, id); err == nil {
					continue // a job of this sweep wrote it already
				}
			}
		}
		written++
		ops <- op{a: a}
	}
	for id, a := range prev {
		if _, ok := fresh[id]; !ok {
			deleted++
			ops <- op{a: a, del: true}
			d.e.forget(id)
		}
	}
	close(ops)
	wg.Wait()
	return written, deleted, errors.Join(errs...)
}
