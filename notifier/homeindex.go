package notifier

// The index of active cases behind the App Home and `/rootwarden status`. The Home
// loop's watch of KV rw_cases keeps, in memory, one small entry per active case (what
// a list, a count and the visibility filter need), so that opening the tab or asking
// for the status never lists and reads every case: an opening reads from KV only the
// cases it shows (at most homeMaxShown). The view's data is built once and shared
// (homeRound): every opener within homeRoundTTL gets the same round, and a change
// (after the debounce) builds one new round for every refresh.
//
// A notifier that does not run its loops (a test, a benchmark) has no watch: each
// round then loads the index once through a short-lived watch.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/model"
)

const (
	homeRoundTTL = 5 * time.Second // an opening reuses a round this young
	// homeMaxShown is how many cases one tab can show within Slack's 100 blocks
	// (2 blocks each, after the header, notice, context lines and group titles).
	homeMaxShown = 40
	// homeMaxConcurrent openings are built at once; homeMaxQueued wait (one per user:
	// a repeat of a waiting user is dropped); beyond, an opening is dropped.
	homeMaxConcurrent = 4
	homeMaxQueued     = 64
)

// caseEntry is what the Home tab and the status need of an active case to list,
// count and filter it.
type caseEntry struct {
	ID, Account, AccountName string
	State                    model.State
	Severity                 model.Severity
	OpenedAt                 time.Time
	Failing                  bool   // its last check failed
	Channel                  string // the channel it is routed to
	OwnerEmail               string // lower case; "" when none
}

func (e caseEntry) label() string {
	return accountLabel(model.Case{AccountID: e.Account, AccountName: e.AccountName})
}

// caseIndex is the in-memory index of active cases, by account.
type caseIndex struct {
	mu      sync.Mutex
	m       map[string]caseEntry
	live    bool   // kept current by the watch
	version uint64 // counts changes
}

func (n *Notifier) entryOf(c model.Case) caseEntry {
	e := caseEntry{ID: c.ID, Account: c.AccountID, AccountName: c.AccountName, State: c.State, Severity: c.Severity,
		OpenedAt: c.OpenedAt, Failing: c.LastError != "", Channel: n.routeFor(c)}
	if n.cfg.OwnerTag != "" {
		e.OwnerEmail = strings.ToLower(strings.TrimSpace(c.Tags[n.cfg.OwnerTag]))
	}
	return e
}

// apply puts one watched KV entry into m; it reports whether anything changed.
func (n *Notifier) applyEntry(m map[string]caseEntry, kv jetstream.KeyValueEntry) bool {
	key := kv.Key()
	old, had := m[key]
	var c model.Case
	if kv.Operation() != jetstream.KeyValuePut || json.Unmarshal(kv.Value(), &c) != nil || !c.State.Active() {
		delete(m, key)
		return had
	}
	e := n.entryOf(c)
	m[key] = e
	return !had || old != e
}

// loadIndex reads every case once through a watch (its current values, then the end
// marker) into a new map.
func (n *Notifier) loadIndex(ctx context.Context) (map[string]caseEntry, error) {
	w, err := n.b.Cases.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch cases: %w", err)
	}
	defer func() { _ = w.Stop() }()
	m := map[string]caseEntry{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read cases: %w", ctx.Err())
		case kv, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("read cases: watch ended")
			}
			if kv == nil {
				return m, nil
			}
			n.applyEntry(m, kv)
		}
	}
}

// homeRound is the data every viewer's tab is built from, shared by the openings and
// refreshes of its time.
type homeRound struct {
	at      time.Time
	version uint64
	cases   []caseEntry // every active case, oldest first
	sweep   string      // how far the last sweep got (lastcheck.go)

	mu    sync.Mutex
	shown map[string]*homeCase // case id → what a tab shows of it, read once per round
}

// homeCase is a case with its line in the Home tab (the same for every viewer).
type homeCase struct {
	model.Case
	line string
	gone bool // no longer active when read
}

// roundCache holds the current round; one build at a time, the others wait for it.
type roundCache struct {
	mu       sync.Mutex
	cur      *homeRound
	building chan struct{} // closed when the build under way ends
}

// sharedRound is a round at most maxAge old (0: one that reflects every change the
// watch has seen), built once for everyone asking at the same time.
func (n *Notifier) sharedRound(ctx context.Context, maxAge time.Duration) (*homeRound, error) {
	rc := &n.home.rounds
	for {
		n.home.index.mu.Lock()
		version, live := n.home.index.version, n.home.index.live
		n.home.index.mu.Unlock()
		rc.mu.Lock()
		// The round's age is a cache's: wall clock, not Config.Now.
		if cur := rc.cur; cur != nil && time.Since(cur.at) < homeRoundTTL &&
			(maxAge > 0 && time.Since(cur.at) < maxAge || live && cur.version == version) {
			rc.mu.Unlock()
			return cur, nil
		}
		if wait := rc.building; wait != nil {
			rc.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("read cases: %w", ctx.Err())
			}
		}
		done := make(chan struct{})
		rc.building = done
		rc.mu.Unlock()
		r, err := n.buildRound(ctx)
		rc.mu.Lock()
		if err == nil {
			rc.cur = r
		}
		rc.building = nil
		close(done)
		rc.mu.Unlock()
		return r, err
	}
}

func (n *Notifier) buildRound(ctx context.Context) (*homeRound, error) {
	r := &homeRound{at: time.Now(), shown: map[string]*homeCase{}}
	n.home.index.mu.Lock()
	live := n.home.index.live
	if live {
		r.version = n.home.index.version
		r.cases = make([]caseEntry, 0, len(n.home.index.m))
		for _, e := range n.home.index.m {
			r.cases = append(r.cases, e)
		}
	}
	n.home.index.mu.Unlock()
	if !live {
		m, err := n.loadIndex(ctx)
		if err != nil {
			return nil, err
		}
		r.cases = make([]caseEntry, 0, len(m))
		for _, e := range m {
			r.cases = append(r.cases, e)
		}
	}
	sort.Slice(r.cases, func(i, j int) bool {
		a, b := r.cases[i], r.cases[j]
		if !a.OpenedAt.Equal(b.OpenedAt) {
			return a.OpenedAt.Before(b.OpenedAt)
		}
		return a.ID < b.ID
	})
	r.sweep = n.sweepLine(ctx) // the coverage line is added per view (viewFor): it is in memory and moves between rounds
	return r, nil
}

// show reads what the tab shows of one case, once per round: the case itself (one KV
// read) and its line (owner, message link, last check).
func (n *Notifier) show(ctx context.Context, r *homeRound, e caseEntry) *homeCase {
	r.mu.Lock()
	defer r.mu.Unlock() // one reader per round: the reads of a case are never repeated
	if hc := r.shown[e.ID]; hc != nil {
		return hc
	}
	hc := &homeCase{Case: model.Case{ID: e.ID, AccountID: e.Account, AccountName: e.AccountName, State: e.State,
		Severity: e.Severity, OpenedAt: e.OpenedAt}}
	n.home.caseReads.Add(1)
	if kv, err := n.b.Cases.Get(ctx, e.Account); err == nil {
		var c model.Case
		if json.Unmarshal(kv.Value(), &c) == nil {
			if c.ID != e.ID || !c.State.Active() {
				hc.gone = true
			} else {
				hc.Case = c
			}
		}
	} else if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		hc.gone = true
	}
	if !hc.gone {
		hc.line = n.homeLine(ctx, hc.Case)
	}
	r.shown[e.ID] = hc
	return hc
}
