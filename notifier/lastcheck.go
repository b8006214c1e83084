package notifier

// "When was this account last checked?" in Slack, without editing messages.
//
// A sweep that changes nothing about a case writes nothing to it and publishes no case
// event (remediator/steady.go), so the case message is not edited: 10,000 open cases
// edited once a sweep would take 200 minutes of a channel's ~50 chat.update a minute,
// longer than the 15-minute interval. The answer therefore comes from where it is
// exact, and is shown where it is asked for:
//
//   - The case message states the check ON RECORD when it was rendered
//     (Case.LastCheckedAt: exact at every transition; when nothing changes the
//     remediator writes it only every 6–12 h, silently) and says that checks that
//     change nothing do not edit it, and where the latest one is shown. It never
//     presents that time as the latest check.
//   - `/rootwarden case <id>` and the App Home show the account's last check
//     (internal/bus LastCheck): its newest observation on RW_FINDINGS (exact time,
//     what made it, what it found) and, as a sweep publishes only what changed
//     (detector/unchanged.go), the later sweep that found it so still.
//   - `/rootwarden status` and the App Home say how far the last sweep got: when it
//     started, how many accounts it listed, and how many of its checks are still
//     queued on RW_SCAN; the coverage line under it (coverage.go) says how many
//     of those checks failed.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// streams caches the handles of the streams the notifier reads but does not consume
// (a handle costs a stream-info call).
type streams struct {
	mu sync.Mutex
	m  map[string]jetstream.Stream
}

func (n *Notifier) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	n.streams.mu.Lock()
	defer n.streams.mu.Unlock()
	if s, ok := n.streams.m[name]; ok {
		return s, nil
	}
	s, err := n.b.JS.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", name, err)
	}
	if n.streams.m == nil {
		n.streams.m = map[string]jetstream.Stream{}
	}
	n.streams.m[name] = s
	return s, nil
}

// sourceWords says what made an observation, for "by …".
func sourceWords(s model.Source) string {
	switch s {
	case model.SourceSweep, "":
		return "a sweep"
	case model.SourceEvent:
		return "a CloudTrail event"
	case model.SourceCheck:
		return "an on-demand check"
	}
	return esc(string(s))
}

// lastCheckLine is the account's last check for /rootwarden case and the App Home:
// exact when RW_FINDINGS has it, otherwise the case's coarse field, named as such.
// ago adds how long ago, for an answer read at once (not for the Home tab, which
// stays up between refreshes).
func (n *Notifier) lastCheckLine(ctx context.Context, c model.Case, ago bool) string {
	since := func(t time.Time) string {
		if !ago {
			return ""
		}
		return " (" + human(n.now().Sub(t)) + " ago)"
	}
	lc, err := n.b.LastCheck(ctx, c.AccountID)
	if err != nil {
		n.log.Warn("last check", "account", c.AccountID, "err", err)
	}
	o := lc.Observation
	if o == nil || o.ObservedAt.Before(c.LastCheckedAt) {
		if c.LastCheckedAt.IsZero() {
			return "Last check: unknown"
		}
		return fmt.Sprintf("Last check on record: %s%s; later checks that changed nothing are not recorded on the case",
			stamp(c.LastCheckedAt), since(c.LastCheckedAt))
	}
	found := "no root access keys"
	switch {
	case o.Failed():
		found = ":warning: the check failed: " + esc(truncate(o.Error, 120))
	case o.RootKeysPresent:
		found = "root access keys present"
	}
	if sw := lc.Sweep; sw != nil {
		// A sweep that finds nothing new publishes nothing (detector/unchanged.go).
		return fmt.Sprintf("Last check: in the sweep `%s` started %s%s: %s, unchanged since %s by %s",
			esc(sw.ID), stamp(sw.StartedAt), since(sw.StartedAt), found, stamp(o.ObservedAt), sourceWords(o.Source))
	}
	return fmt.Sprintf("Last check: %s%s by %s: %s", stamp(o.ObservedAt), since(o.ObservedAt), sourceWords(o.Source), found)
}

// sweepLine says how far the last sweep got (rw_sched bus.SchedSweepKey, written by the
// detector, and the checks still queued on RW_SCAN).
func (n *Notifier) sweepLine(ctx context.Context) string {
	sw, err := n.b.Sweep(ctx)
	switch {
	case errors.Is(err, bus.ErrNoSweep):
		return "Last sweep: none yet."
	case errors.Is(err, bus.ErrSweepUnreadable):
		return "Last sweep: unreadable record."
	case err != nil:
		return "Last sweep: unknown (cannot read the schedule)."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Last sweep: `%s` started %s (%s ago)", esc(sw.ID), stamp(sw.StartedAt), human(n.now().Sub(sw.StartedAt)))
	switch {
	case sw.Error != "":
		if sw.Accounts > 0 {
			fmt.Fprintf(&b, ", %d accounts", sw.Accounts)
		}
		fmt.Fprintf(&b, "; listing failed: %s", esc(sw.Error))
		return b.String()
	case !sw.Done:
		b.WriteString(", listing the accounts")
		return b.String()
	}
	fmt.Fprintf(&b, ", %d accounts listed", sw.Accounts)
	queued, err := n.queuedChecks(ctx)
	switch {
	case err != nil:
		n.log.Warn("sweep progress", "err", err)
		b.WriteString("; checks still to do: unknown")
	case queued == 0:
		b.WriteString("; no check still to do") // done, not necessarily answered: the coverage line says (coverage.go)
	default:
		fmt.Fprintf(&b, "; %d checks still to do", queued)
	}
	return b.String()
}

// queuedChecks is the number of sweep jobs not done yet (a work queue: a job leaves
// RW_SCAN when its check is published).
func (n *Notifier) queuedChecks(ctx context.Context) (uint64, error) {
	s, err := n.stream(ctx, bus.StreamScan)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", bus.StreamScan, err)
	}
	return info.State.Msgs, nil
}
