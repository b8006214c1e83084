package detector

// One log line per sweep instead of one per account: each detector counts the sweep
// jobs it checked and, once a sweep's jobs have gone quiet here (sweepQuiet), logs
// what it saw (accounts, accounts with root keys, failed checks, how long since the
// sweep started, when the next sweep is due). Per-account lines are at debug. With several detectors, each logs its own
// share of the sweep.

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// sweepQuiet is how long a sweep's jobs must have been quiet before its line is logged.
const sweepQuiet = 5 * time.Second

type sweepCount struct {
	accounts, withKeys, failed int
	unchanged                  int // checked, nothing published (unchanged.go)
	// start is when the sweep started (its id says, to the second; else this
	// detector's first check of it), last this detector's last check of it.
	start, last time.Time
	// unchecked: account → error code of its failed check (history.go), bounded.
	unchecked map[string]string
}

// sweepStart is the start a sweep id names: MaybeSweep makes ids
// "20061231T150405Z-<random>" from the sweep's StartedAt.
func sweepStart(id string) (time.Time, bool) {
	stamp, _, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102T150405Z", stamp)
	return t, err == nil
}

// rootKeysLog is an observation's root_keys for a log line: "unknown" when the check
// could not decide (false would read as "no root keys").
func rootKeysLog(o model.Observation) any {
	if o.Failed() {
		return "unknown"
	}
	return o.RootKeysPresent
}

type sweepTally struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]*sweepCount
}

func newSweepTally(now func() time.Time) *sweepTally {
	return &sweepTally{now: now, m: map[string]*sweepCount{}}
}

// add counts one sweep observation: published, or found unchanged.
func (t *sweepTally) add(o model.Observation, unchanged bool) {
	if o.SweepID == "" {
		return
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.m[o.SweepID]
	if c == nil {
		c = &sweepCount{start: now}
		if st, ok := sweepStart(o.SweepID); ok && !st.After(now) {
			c.start = st
		}
		t.m[o.SweepID] = c
	}
	c.accounts++
	if unchanged {
		c.unchanged++
	}
	switch {
	case o.Failed():
		c.failed++
		if c.unchecked == nil {
			c.unchecked = map[string]string{}
		}
		if len(c.unchecked) < maxUncheckedKept {
			c.unchecked[o.AccountID] = orUnknown(o.ErrorCode)
		}
	case o.RootKeysPresent:
		c.withKeys++
	}
	c.last = now
}

// flush logs and forgets every sweep quiet for at least quiet (all when quiet is 0),
// and returns this detector's share of each for the retained history (history.go).
func (t *sweepTally) flush(log *slog.Logger, quiet, interval time.Duration) []model.SweepHistory {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []model.SweepHistory
	for id, c := range t.m {
		if quiet > 0 && now.Sub(c.last) < quiet {
			continue
		}
		delete(t.m, id)
		out = append(out, checkedShare(id, c, now))
		level := slog.LevelInfo
		if c.failed > 0 {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "sweep checked",
			"sweep", id, "accounts", c.accounts, "with_root_keys", c.withKeys, "failed", c.failed,
			"unchanged", c.unchanged,
			"took", c.last.Sub(c.start).Round(time.Millisecond).String(),
			"next_sweep", c.start.Add(interval).UTC().Format(time.RFC3339))
	}
	return out
}

// logSweeps flushes the tally every second until ctx ends, then once more.
func (d *Detector) logSweeps(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			d.recordSweeps(context.WithoutCancel(ctx), d.sweeps.flush(d.log, 0, d.e.cfg.ScanInterval))
			return nil
		case <-t.C:
			d.recordSweeps(ctx, d.sweeps.flush(d.log, sweepQuiet, d.e.cfg.ScanInterval))
		}
	}
}
