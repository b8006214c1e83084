package bus

// The last check of an account, for whoever shows it (Slack's /rootwarden case, the
// case API). A sweep publishes an observation only when it finds something new
// (detector/unchanged.go), so the account's newest observation on RW_FINDINGS says
// what was found and since when; the sweep record in rw_sched (SchedSweepKey) and the
// sweep's queued jobs on RW_SCAN say whether a later sweep checked the account and
// found it so still.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/model"
)

// SchedSweepKey is the rw_sched key of the current sweep (the detector writes it).
const SchedSweepKey = "sweep"

// LastCheck is what is known of an account's last check.
type LastCheck struct {
	// Observation is the account's newest observation on RW_FINDINGS; nil when the
	// stream holds none (never checked, or not within FindingsMaxAge).
	Observation *model.Observation
	// Sweep, when not nil, checked the account after Observation and found it
	// unchanged: the account's last check happened in it (after its StartedAt).
	Sweep *model.SweepRef
}

// SweepRecord is what readers take of the detector's record of the current sweep
// (rw_sched SchedSweepKey; the detector writes more).
type SweepRecord struct {
	model.SweepRef
	Done     bool            `json:"done"`     // every account listed and its job queued
	Accounts int             `json:"accounts"` // accounts listed
	Error    string          `json:"error"`    // why the listing failed
	Prev     *model.SweepRef `json:"prev,omitempty"`
}

// ErrNoSweep: no sweep has started yet; ErrSweepUnreadable: its record does not decode.
var (
	ErrNoSweep         = errors.New("no sweep yet")
	ErrSweepUnreadable = errors.New("unreadable sweep record")
)

// Sweep reads the record of the current sweep (ErrNoSweep when there is none).
func (b *Bus) Sweep(ctx context.Context) (SweepRecord, error) {
	var sw SweepRecord
	e, err := b.Sched.Get(ctx, SchedSweepKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return sw, ErrNoSweep
	case err != nil:
		return sw, fmt.Errorf("read the sweep record: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &sw); err != nil {
		return sw, fmt.Errorf("%w: %v", ErrSweepUnreadable, err)
	}
	return sw, nil
}

// LastCheck reads an account's last check: up to four reads (its newest
// observation, the sweep record, its inventory entry, its queued sweep job).
func (b *Bus) LastCheck(ctx context.Context, account string) (LastCheck, error) {
	var lc LastCheck
	findings, err := b.JS.Stream(ctx, StreamFindings)
	if err != nil {
		return lc, fmt.Errorf("open %s: %w", StreamFindings, err)
	}
	m, err := findings.GetLastMsgForSubject(ctx, FindingSubject(account))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return lc, nil
	case err != nil:
		return lc, fmt.Errorf("read the newest observation of %s: %w", account, err)
	}
	var o model.Observation
	if err := json.Unmarshal(m.Data, &o); err != nil || o.AccountID != account {
		return lc, fmt.Errorf("read the newest observation of %s: unreadable (seq %d)", account, m.Sequence)
	}
	lc.Observation = &o

	cur, err := b.Sweep(ctx)
	if errors.Is(err, ErrNoSweep) || errors.Is(err, ErrSweepUnreadable) {
		return lc, nil
	} else if err != nil {
		return lc, err
	}
	// Only accounts of the inventory are swept.
	if _, err := b.Accounts.Get(ctx, account); errors.Is(err, jetstream.ErrKeyNotFound) {
		return lc, nil
	} else if err != nil {
		return lc, fmt.Errorf("read the inventory entry of %s: %w", account, err)
	}
	scan, err := b.JS.Stream(ctx, StreamScan)
	if err != nil {
		return lc, fmt.Errorf("open %s: %w", StreamScan, err)
	}
	_, err = scan.GetLastMsgForSubject(ctx, ScanSubject(account))
	queued := err == nil
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return lc, fmt.Errorf("read the queued sweep job of %s: %w", account, err)
	}
	var sweep *model.SweepRef
	switch {
	case cur.Done && !queued:
		sweep = &cur.SweepRef // the current sweep has checked it
	case cur.Prev != nil && cur.Prev.Complete:
		sweep = cur.Prev // the current one has not yet; the previous one checked every account
	}
	if sweep != nil && sweep.StartedAt.After(o.ObservedAt) {
		s := *sweep
		s.StartedAt = s.StartedAt.UTC()
		lc.Sweep = &s
	}
	return lc, nil
}

// LastCheckedAt is the earliest time the last check can have happened.
func (lc LastCheck) LastCheckedAt() time.Time {
	switch {
	case lc.Sweep != nil:
		return lc.Sweep.StartedAt
	case lc.Observation != nil:
		return lc.Observation.ObservedAt
	}
	return time.Time{}
}
