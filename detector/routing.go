package detector

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"
)

// Routing facts: read what is needed, when it is needed.
//
// An account's Organizations tags and OU path route its case (channel, owner), so
// they matter for the accounts with a case, and Organizations reads tags at 10 a
// second (pace.go): 50,000 accounts' tags take 83 minutes, the 500 of those with a
// root key less than a minute. So:
//
//   - a check that finds root credentials reads the account's routing facts first
//     (tags, and the OU path when the listing did not give it), waiting for its
//     turn in Organizations' buckets, before its finding is published: the case is
//     posted once, to its routed channel, with its owner;
//   - that wait is bounded (routingWait); past it, or when Organizations refuses
//     (AccessDenied), the finding is published with RoutingError saying why, and
//     with what was known, never silently as an account without tags;
//   - tags of clean accounts (and their OU paths, when the tree cannot be listed)
//     are refreshed in the background of the sweep's jobs, only while their
//     buckets have tokens to spare (half the burst is kept for the
//     reads a case waits for); what is not read in this sweep is read in a later
//     one (tagsStale spreads refreshes over 1–2 hours);
//   - one read per account at a time: a case's read joins a background read of the
//     same account in flight.

// routingWait bounds how long a finding with root credentials waits for its routing
// facts. At 50,000 accounts with 1 % holding keys, reading the OU path (ListParents,
// 5 a second) of all 500 takes 100 s at the published rate, 125 s at the default share.
const routingWait = 5 * time.Minute

type routing struct {
	e        *engine
	mu       sync.Mutex
	inflight map[string]*routingRead
	// onRead, when set, keeps facts read for an account (the Detector writes them
	// to the inventory). It must not block.
	onRead func(accountInfo)
}

type routingRead struct {
	done chan struct{}
	a    accountInfo
	err  error
}

func newRouting(e *engine) *routing {
	return &routing{e: e, inflight: map[string]*routingRead{}}
}

// current is the directory's copy of a when it holds fresher facts.
func (r *routing) current(a accountInfo) accountInfo {
	r.e.dirMu.Lock()
	cur, ok := r.e.dir[a.ID]
	r.e.dirMu.Unlock()
	if !ok {
		return a
	}
	if cur.TagsAt.After(a.TagsAt) {
		a.Tags, a.TagsAt = cur.Tags, cur.TagsAt
	}
	if !a.OUKnown && cur.OUKnown {
		a.OUPath, a.OUKnown = cur.OUPath, true
	}
	return a
}

// forCase returns a with fresh routing facts for a finding with root credentials:
// read now (waiting for Organizations' buckets, at most routingWait) unless they are
// fresh. On error, a holds what was known.
func (r *routing) forCase(ctx context.Context, a accountInfo) (accountInfo, error) {
	a = r.current(a)
	if !r.e.tagsStale(a) {
		return a, nil
	}
	ctx, cancel := context.WithTimeout(ctx, routingWait)
	defer cancel()
	return r.read(ctx, a, !a.OUKnown, r.e.tagsOld(a))
}

// background refreshes a's routing facts when they are stale and Organizations'
// buckets have tokens to spare; ok is false when nothing was read.
func (r *routing) background(ctx context.Context, a accountInfo) (accountInfo, bool) {
	a = r.current(a)
	// The OU path only when the tree cannot be listed (else the tree's listing has it).
	tags := r.e.tagsOld(a)
	ou := !a.OUKnown && r.e.noTree.Load() && r.e.pace.spareNow("Organizations.ListParents")
	if !tags && !ou {
		return a, false
	}
	if tags {
		var ok bool
		if ctx, ok = r.e.pace.spare(ctx, "Organizations.ListTagsForResource"); !ok {
			return a, false
		}
	}
	ctx, cancel := context.WithTimeout(ctx, routingWait)
	defer cancel()
	fresh, err := r.read(ctx, a, ou, tags)
	if err != nil {
		r.e.log.Debug("account tags not refreshed", "account", a.ID, "err", safeError(err))
		return a, false
	}
	return fresh, true
}

// read reads a's tags (and, with ou, its OU path when unknown: a background read
// leaves that to the tree's listing), one read per account at a time.
func (r *routing) read(ctx context.Context, a accountInfo, ou, tags bool) (accountInfo, error) {
	r.mu.Lock()
	if rd, ok := r.inflight[a.ID]; ok {
		r.mu.Unlock()
		select {
		case <-rd.done:
			if rd.err == nil && (!ou || rd.a.OUKnown) {
				return rd.a, nil
			}
		case <-ctx.Done():
			return a, fmt.Errorf("read the tags of account %s: %w", a.ID, ctx.Err())
		}
		// The other read failed (its own deadline) or did not read the OU path: ours.
		a = r.current(a)
		return r.read(ctx, a, ou && !a.OUKnown, r.e.tagsOld(a))
	}
	rd := &routingRead{done: make(chan struct{})}
	r.inflight[a.ID] = rd
	r.mu.Unlock()

	rd.a, rd.err = r.e.readOrgDetails(ctx, a, ou, tags)
	r.mu.Lock()
	delete(r.inflight, a.ID)
	r.mu.Unlock()
	close(rd.done)
	if rd.err == nil {
		r.e.dirMu.Lock()
		if cur, ok := r.e.dir[a.ID]; ok {
			cur.Tags, cur.TagsAt = rd.a.Tags, rd.a.TagsAt
			if !cur.OUKnown && rd.a.OUKnown {
				cur.OUPath, cur.OUKnown = rd.a.OUPath, true
			}
			r.e.dir[a.ID] = cur
		}
		r.e.dirMu.Unlock()
		if r.onRead != nil {
			r.onRead(rd.a)
		}
	}
	return rd.a, rd.err
}

// readOrgDetails reads a's tags (with tags) and its OU path (with ou, when unknown).
// On error it returns a with what it could read.
func (e *engine) readOrgDetails(ctx context.Context, a accountInfo, ou, tags bool) (accountInfo, error) {
	var errs []error
	if ou && !a.OUKnown {
		if p, err := e.ouPath(ctx, a.ID); err == nil {
			a.OUPath, a.OUKnown = p, true
		} else {
			errs = append(errs, err)
		}
	}
	if !tags {
		return a, errors.Join(errs...)
	}
	read, err := e.accountTags(ctx, a.ID)
	if err != nil {
		errs = append(errs, err)
	} else {
		a.Tags, a.TagsAt = maps.Clone(read), e.cfg.Now().UTC()
		if len(a.Tags) == 0 {
			a.Tags = nil
		}
	}
	return a, errors.Join(errs...)
}

// routingError is what a finding says when its routing facts could not be read.
func routingError(err error) string {
	msg, code := describe(err)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("the account's tags and OU path could not be read from AWS Organizations within %s (its request rate is shared with other tools): routed with what was known; the owner is added when they are read (%s)", routingWait, msg)
	}
	return fmt.Sprintf("the account's tags and OU path could not be read from AWS Organizations (%s: %s): routed with what was known", code, msg)
}
