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

// updateAccount changes one account's entry with compare-and-set: change gets the
// current entry (ok false when there is none) and returns the new one. The sweep's
// reconciliation (name, OU path) and its jobs (tags) write the same keys at the same
// time; each keeps what the other wrote.
func (d *Detector) updateAccount(ctx context.Context, id string, change func(cur accountInfo, ok bool) accountInfo) error {
	for attempt := 0; ; attempt++ {
		var cur accountInfo
		var rev uint64
		e, err := d.b.Accounts.Get(ctx, id)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read inventory entry %s: %w", id, err)
		default:
			rev = e.Revision()
			if json.Unmarshal(e.Value(), &cur) != nil {
				cur = accountInfo{}
			}
		}
		next := change(cur, rev != 0 && cur.ID == id)
		data, err := json.Marshal(next)
		if err != nil {
			return err
		}
		if rev == 0 {
			_, err = d.b.Accounts.Create(ctx, id, data)
		} else {
			_, err = d.b.Accounts.Update(ctx, id, data, rev)
		}
		if err == nil {
			d.e.dirMu.Lock()
			d.e.dir[id] = next
			d.e.dirMu.Unlock()
			return nil
		}
		if attempt >= 5 || !(errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)) {
			return fmt.Errorf("write inventory entry %s: %w", id, err)
		}
	}
}

// keepTags writes the tags (and OU path) a sweep job read onto the account's entry.
func (d *Detector) keepTags(ctx context.Context, fresh accountInfo) error {
	return d.updateAccount(ctx, fresh.ID, func(cur accountInfo, ok bool) accountInfo {
		if !ok {
			return fresh
		}
		if !fresh.TagsAt.Before(cur.TagsAt) {
			cur.Tags, cur.TagsAt = fresh.Tags, fresh.TagsAt
		}
		if !cur.OUKnown && fresh.OUKnown {
			cur.OUPath, cur.OUKnown = fresh.OUPath, true
		}
		return cur
	})
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
					listed := o.a
					err = d.updateAccount(ctx, listed.ID, func(cur accountInfo, ok bool) accountInfo {
						if ok {
							return mergeListed(listed, cur) // tags a job read meanwhile stay
						}
						return listed
					})
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
		if old, ok := prev[id]; ok && sameOrgDetails(old, a) && old.TagsAt.Equal(a.TagsAt) {
			continue // unchanged since the last sweep (tags read since are kept by their writer)
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
