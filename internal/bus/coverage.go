package bus

// Coverage: the accounts rootwarden cannot check, as a fact every component can read.
// The remediator keeps one record per account whose last check failed, in rw_sched
// under UncheckedKeyPrefix+account (remediator/unchecked.go writes them; a check that
// works deletes the record). Coverage is a live copy of those records and of the
// sweep record, fed by one KV watch per process: the remediator's gauges, /rootwarden
// status, the App Home and the daily summary read it without a read of their own,
// and each moves as soon as a record does.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// UncheckedKeyPrefix + account is the rw_sched key of an account's failed checks.
const UncheckedKeyPrefix = "remediator.unchecked."

// UncheckedRecord is an account's run of failed checks.
type UncheckedRecord struct {
	Since    time.Time `json:"since"`              // the first failure of the run
	Last     time.Time `json:"last,omitzero"`      // the latest failure (older records: unset)
	Failures int       `json:"failures"`           // failures in a row
	Error    string    `json:"error"`              // stable text of the last failure
	Reported string    `json:"reported,omitempty"` // set once the run is long enough to report (the failure reported)
}

// Unchecked reports whether the run is long enough to call the account unchecked (the
// remediator's UncheckedAfter failures in a row: it sets Reported then).
func (u UncheckedRecord) Unchecked() bool { return u.Reported != "" }

// LastFailure is the latest failure of the run.
func (u UncheckedRecord) LastFailure() time.Time {
	if u.Last.IsZero() {
		return u.Since
	}
	return u.Last
}

// Reasons of a failed check, grouped for people.
const (
	ReasonNoRole     = "no role (AssumeRole denied: the role is missing or does not trust rootwarden)"
	ReasonSCP        = "AccessDenied by an SCP"
	ReasonSuspended  = "suspended or closed"
	ReasonDenied     = "AccessDenied"
	ReasonThrottled  = "throttled or timed out"
	ReasonOtherError = "other error"
)

// UncheckedReason puts a failure (UncheckedRecord.Error: "<code>: <message>") in one
// of the groups above.
func UncheckedReason(failure string) string {
	l := strings.ToLower(failure)
	switch {
	case strings.Contains(l, "accountnotactive") || strings.Contains(l, "suspended") || strings.Contains(l, "is closed") ||
		strings.Contains(l, "account is closed"):
		return ReasonSuspended
	case strings.Contains(l, "service control polic"):
		return ReasonSCP
	case strings.Contains(l, "sts:assumerole") || strings.Contains(l, "assume role") || strings.Contains(l, "assumerole"):
		return ReasonNoRole
	case strings.Contains(l, "accessdenied") || strings.Contains(l, "not authorized"):
		return ReasonDenied
	case strings.Contains(l, "throttl") || strings.Contains(l, "toomanyrequests") || strings.Contains(l, "timeout") ||
		strings.Contains(l, "deadline exceeded"):
		return ReasonThrottled
	}
	return ReasonOtherError
}

// Coverage is a live copy of the unchecked records and the sweep record.
type Coverage struct {
	mu      sync.Mutex
	recs    map[string]UncheckedRecord
	sweep   *SweepRecord
	ready   chan struct{}
	changed func()
}

// WatchCoverage starts the copy; it follows rw_sched until ctx ends. changed, when
// set, is called after each change (on the watch's goroutine: keep it short).
func (b *Bus) WatchCoverage(ctx context.Context, changed func()) (*Coverage, error) {
	w, err := b.Sched.WatchFiltered(ctx, []string{UncheckedKeyPrefix + ">", SchedSweepKey})
	if err != nil {
		return nil, fmt.Errorf("watch the unchecked accounts: %w", err)
	}
	c := &Coverage{recs: map[string]UncheckedRecord{}, ready: make(chan struct{}), changed: changed}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				c.apply(e)
			}
		}
	}()
	return c, nil
}

// Ready is closed once the copy holds every record stored when it started.
func (c *Coverage) Ready() <-chan struct{} { return c.ready }

func (c *Coverage) apply(e jetstream.KeyValueEntry) {
	if e == nil {
		select {
		case <-c.ready:
		default:
			close(c.ready)
		}
		return
	}
	c.mu.Lock()
	put := e.Operation() == jetstream.KeyValuePut
	if e.Key() == SchedSweepKey {
		var sw SweepRecord
		if put && json.Unmarshal(e.Value(), &sw) == nil {
			c.sweep = &sw
		} else {
			c.sweep = nil
		}
	} else {
		account := strings.TrimPrefix(e.Key(), UncheckedKeyPrefix)
		var u UncheckedRecord
		if put && json.Unmarshal(e.Value(), &u) == nil {
			c.recs[account] = u
		} else {
			delete(c.recs, account)
		}
	}
	c.mu.Unlock()
	if c.changed != nil {
		c.changed()
	}
}

// Snapshot is what the copy holds now: the records still current (see Current) and
// the sweep record (nil before the first sweep).
func (c *Coverage) Snapshot() CoverageSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := CoverageSnapshot{Failing: map[string]UncheckedRecord{}}
	if c.sweep != nil {
		sw := *c.sweep
		s.Sweep = &sw
	}
	for a, u := range c.recs {
		if u.Current(s.Sweep) {
			s.Failing[a] = u
		}
	}
	return s
}

// Current reports whether the run still counts: its latest failure is not older than
// the start of the previous sweep (sw: the current sweep's record; nil → it counts).
// An older one is of an account no sweep checks any more (it left the organization).
func (u UncheckedRecord) Current(sw *SweepRecord) bool {
	if sw == nil || sw.Prev == nil {
		return true
	}
	return !u.LastFailure().Before(sw.Prev.StartedAt)
}

// CoverageSnapshot is the accounts whose last check failed, as of one moment.
type CoverageSnapshot struct {
	// Failing: account → its run of failures, for accounts whose latest check failed
	// during the previous sweep or since. Older records are of accounts no sweep
	// checks any more (they left the organization): they no longer count.
	Failing map[string]UncheckedRecord
	Sweep   *SweepRecord
}

// Unchecked is the failing accounts whose run is long enough to report (the
// remediator's UncheckedAfter failures in a row), account → failure.
func (s CoverageSnapshot) Unchecked() map[string]UncheckedRecord {
	out := map[string]UncheckedRecord{}
	for a, u := range s.Failing {
		if u.Unchecked() {
			out[a] = u
		}
	}
	return out
}

// ReasonCount is one group of failures.
type ReasonCount struct {
	Reason   string
	Accounts []string // sorted
}

// ByReason groups accounts (→ failure) by UncheckedReason, largest group first.
func ByReason(recs map[string]UncheckedRecord) []ReasonCount {
	groups := map[string][]string{}
	for a, u := range recs {
		r := UncheckedReason(u.Error)
		groups[r] = append(groups[r], a)
	}
	out := make([]ReasonCount, 0, len(groups))
	for _, r := range slices.Sorted(maps.Keys(groups)) {
		accts := groups[r]
		sort.Strings(accts)
		out = append(out, ReasonCount{Reason: r, Accounts: accts})
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].Accounts) > len(out[j].Accounts) })
	return out
}
