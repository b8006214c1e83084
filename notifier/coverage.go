package notifier

// Coverage in Slack: an account rootwarden cannot check is a blind spot (root keys
// created there go unnoticed), so Slack says so, not only a log line and an API
// endpoint (issue 19 item 12). The facts are the remediator's records of failed
// checks, read through a live copy (internal/bus coverage.go: one KV watch):
//
//   - /rootwarden status and the App Home add one line under the sweep's: "N of M
//     listed accounts decided; K could not be checked (reasons grouped)". K counts
//     the accounts whose last check failed; decided are the others the sweep has
//     checked (keys present or absent).
//   - Once a day (after CoverageSummaryAt, UTC) each routed channel gets a summary of
//     its own accounts that could not be checked UncheckedAfter times in a row (the
//     remediator's threshold; routing as for cases, from the account's OU and tags in
//     the inventory), and the default channel gets the rest, only when there is
//     something to say. Which channels got today's summary is kept in rw_slack
//     (coverageDailyKey), claimed before the post, so a restart or a second replica
//     does not post it again; a process that dies between the post and its record
//     posts it again after coverageClaimFor.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// DefaultCoverageSummaryAt is when in the UTC day the daily coverage summary is due.
const DefaultCoverageSummaryAt = 9 * time.Hour

const (
	// coverageDailyKey is the rw_slack key of the daily summary's record (not a case id).
	coverageDailyKey = "coverage.daily"
	// coverageClaimFor is how long a claim to post a channel's summary holds.
	coverageClaimFor = 10 * time.Minute
	// coverageListMax bounds the accounts named per reason in one message.
	coverageListMax = 10
)

// coverageSnapshot reads the live copy Run keeps (before Run, a copy of its own).
func (n *Notifier) coverageSnapshot(ctx context.Context) (bus.CoverageSnapshot, error) {
	if cov := n.coverage.Load(); cov != nil {
		select {
		case <-cov.Ready():
			return cov.Snapshot(), nil
		case <-ctx.Done():
			return bus.CoverageSnapshot{}, ctx.Err()
		}
	}
	// Not running (a command answered before Run, a test): a copy for this answer.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cov, err := n.b.WatchCoverage(wctx, nil)
	if err != nil {
		return bus.CoverageSnapshot{}, err
	}
	select {
	case <-cov.Ready():
		return cov.Snapshot(), nil
	case <-ctx.Done():
		return bus.CoverageSnapshot{}, ctx.Err()
	}
}

// withCoverage is the sweep's line followed by the coverage line, for /rootwarden
// status and the App Home.
func (n *Notifier) withCoverage(ctx context.Context, sweep string) string {
	line := n.coverageLine(ctx)
	if line == "" {
		return sweep
	}
	if sweep == "" {
		return line
	}
	return sweep + "\n" + line
}

// coverageLine says how many listed accounts are decided and how many could not be
// checked, and why ("" before the first sweep).
func (n *Notifier) coverageLine(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	snap, err := n.coverageSnapshot(ctx)
	if err != nil {
		n.log.Warn("read the unchecked accounts", "err", err)
		return "Coverage: unknown (cannot read the accounts that failed their checks)."
	}
	failing := len(snap.Failing)
	why := reasonsText(snap.Failing, 3)
	sw := snap.Sweep
	if sw == nil || !sw.Done || sw.Error != "" || sw.Accounts == 0 {
		if failing == 0 {
			return ""
		}
		return fmt.Sprintf(":warning: Coverage: %d %s could not be checked (%s): root access keys there would go unnoticed. `rootwarden cases unchecked` lists them.",
			failing, plural(failing, "account", "accounts"), why)
	}
	queued, err := n.queuedChecks(ctx)
	if err != nil {
		queued = 0 // sweepLine says "unknown"
	}
	decided := max(0, sw.Accounts-int(queued)-failing)
	if failing == 0 {
		return fmt.Sprintf("Coverage: %d of %d listed accounts decided (root access keys present or absent); none failed its last check.",
			decided, sw.Accounts)
	}
	return fmt.Sprintf(":warning: Coverage: %d of %d listed accounts decided; %d could not be checked (%s): root access keys there would go unnoticed. `rootwarden cases unchecked` lists them.",
		decided, sw.Accounts, failing, why)
}

// reasonsText groups failures: "AccessDenied by an SCP: 2 (`1…`, `2…`) · no role (…): 1 (`3…`)",
// naming at most per accounts of each group.
func reasonsText(recs map[string]bus.UncheckedRecord, per int) string {
	var parts []string
	for _, g := range bus.ByReason(recs) {
		ids := g.Accounts
		more := ""
		if len(ids) > per {
			more = fmt.Sprintf(", %d more", len(ids)-per)
			ids = ids[:per]
		}
		quoted := make([]string, len(ids))
		for i, a := range ids {
			quoted[i] = "`" + esc(a) + "`"
		}
		parts = append(parts, fmt.Sprintf("%s: %d (%s%s)", g.Reason, len(g.Accounts), strings.Join(quoted, ", "), more))
	}
	return strings.Join(parts, " · ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// coverageDaily is the record of the day's summaries.
type coverageDaily struct {
	Day     string               `json:"day"`               // UTC date
	Posted  map[string]time.Time `json:"posted,omitempty"`  // channel → when its summary was posted
	Claimed map[string]time.Time `json:"claimed,omitempty"` // channel → when a notifier set out to post it
}

// coverageLoop keeps the live copy of the unchecked accounts and posts the daily
// summary when it is due. Runs until ctx ends.
func (n *Notifier) coverageLoop(ctx context.Context) {
	cov, err := n.b.WatchCoverage(ctx, nil)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("watch the unchecked accounts: /rootwarden status reads them per answer", "err", err)
		}
		return
	}
	n.coverage.Store(cov)
	if n.cfg.CoverageSummaryAt < 0 {
		return
	}
	t := time.NewTicker(n.cfg.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cov.Ready():
		}
		if err := n.coverageSummary(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("daily coverage summary", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// coverageDayState is what the summary pass remembers within one UTC day, so that a
// pass every TickEvery costs no read once the day's summaries are out: the channel of
// each unchecked account (one inventory read per account per day) and the channels
// whose summary of the day is posted.
type coverageDayState struct {
	mu     sync.Mutex
	day    string
	routes map[string]string // account → channel
	names  map[string]string // account → name
	done   map[string]bool   // channel → today's summary posted
}

// coverageSummary posts today's summary to each channel that has something to say and
// has not had it yet today, once the day's CoverageSummaryAt has passed. A channel
// whose accounts fail only later in the day gets its summary then.
func (n *Notifier) coverageSummary(ctx context.Context) error {
	now := n.now().UTC()
	today := now.Format("2006-01-02")
	if now.Sub(now.Truncate(24*time.Hour)) < n.cfg.CoverageSummaryAt {
		return nil
	}
	st := &n.coverageDay
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.day != today {
		st.day, st.routes, st.names, st.done = today, map[string]string{}, map[string]string{}, map[string]bool{}
	}
	snap, err := n.coverageSnapshot(ctx)
	if err != nil {
		return err
	}
	byChannel := map[string]map[string]bus.UncheckedRecord{}
	for a, u := range snap.Unchecked() {
		ch, ok := st.routes[a]
		if !ok {
			ch, st.names[a] = n.routeAccount(ctx, a)
			st.routes[a] = ch
		}
		if st.done[ch] {
			continue
		}
		if byChannel[ch] == nil {
			byChannel[ch] = map[string]bus.UncheckedRecord{}
		}
		byChannel[ch][a] = u
	}
	var errs []error
	for _, ch := range slices.Sorted(maps.Keys(byChannel)) {
		claimed, posted, err := n.claimCoverage(ctx, today, ch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if posted {
			st.done[ch] = true // by another notifier, or before a restart
		}
		if !claimed {
			continue
		}
		text := coverageSummaryText(byChannel[ch], st.names, ch == n.cfg.Channel && len(n.cfg.Routes) > 0)
		_, _, err = n.postMsg(withPrio(ctx, prioBackground), ch, slack.MsgOptionText(text, false),
			slack.MsgOptionBlocks(slack.NewSectionBlock(mrkdwn(text), nil, nil)))
		if err != nil {
			errs = append(errs, fmt.Errorf("post the coverage summary in %s: %w", ch, err))
			continue // claimed: tried again once the claim lapses
		}
		n.log.Info("daily coverage summary posted", "channel", ch, "accounts", len(byChannel[ch]))
		st.done[ch] = true
		if err := n.markCoverage(ctx, today, ch); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// routeAccount is the channel a case of the account would go to (its OU and tags
// from the inventory; the default channel when it has no entry), and its name.
func (n *Notifier) routeAccount(ctx context.Context, account string) (channel, name string) {
	c := model.Case{AccountID: account}
	if e, err := n.b.Accounts.Get(ctx, account); err == nil {
		var inv struct {
			Name   string            `json:"account_name"`
			OUPath string            `json:"ou_path"`
			Tags   map[string]string `json:"tags"`
		}
		if json.Unmarshal(e.Value(), &inv) == nil {
			c.AccountName, c.OUPath, c.Tags = inv.Name, inv.OUPath, inv.Tags
		}
	}
	channel, _ = n.RouteFor(c)
	return channel, c.AccountName
}

// coverageSummaryText is one channel's summary. rest: the default channel with routes
// configured (its accounts are those no route matches).
func coverageSummaryText(recs map[string]bus.UncheckedRecord, names map[string]string, rest bool) string {
	var b strings.Builder
	scope := "in this channel's scope"
	if rest {
		scope = "that no route sends elsewhere"
	}
	fmt.Fprintf(&b, ":warning: *rootwarden could not check %d %s %s* (each failed several checks in a row): root access keys there would go unnoticed.",
		len(recs), plural(len(recs), "account", "accounts"), scope)
	for _, g := range bus.ByReason(recs) {
		fmt.Fprintf(&b, "\n• *%s* (%d): ", esc(g.Reason), len(g.Accounts))
		ids := g.Accounts
		if len(ids) > coverageListMax {
			ids = ids[:coverageListMax]
		}
		var since time.Time
		for _, a := range g.Accounts {
			if s := recs[a].Since; since.IsZero() || s.Before(since) {
				since = s
			}
		}
		labels := make([]string, len(ids))
		for i, a := range ids {
			labels[i] = "`" + esc(a) + "`"
			if nm := names[a]; nm != "" {
				labels[i] += " " + esc(truncate(nm, 40))
			}
		}
		b.WriteString(strings.Join(labels, ", "))
		if more := len(g.Accounts) - len(ids); more > 0 {
			fmt.Fprintf(&b, " and %d more", more)
		}
		fmt.Fprintf(&b, " — failing since %s", stamp(since))
	}
	b.WriteString("\n`rootwarden cases unchecked` (or GET /api/v1/unchecked) lists every one with its error; docs/operations.md says what to do.")
	return b.String()
}

// loadCoverageDaily reads the record (empty when there is none).
func (n *Notifier) loadCoverageDaily(ctx context.Context) (coverageDaily, uint64, error) {
	var st coverageDaily
	e, err := n.b.Slack.Get(ctx, coverageDailyKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		return st, 0, nil
	case err != nil:
		return st, 0, fmt.Errorf("read the daily coverage record: %w", err)
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return coverageDaily{}, e.Revision(), nil // unreadable: start the day again
	}
	return st, e.Revision(), nil
}

// updateCoverageDaily changes the record with compare-and-set; f reports whether to
// write.
func (n *Notifier) updateCoverageDaily(ctx context.Context, today string, f func(*coverageDaily) bool) (bool, error) {
	for range 10 {
		st, rev, err := n.loadCoverageDaily(ctx)
		if err != nil {
			return false, err
		}
		if st.Day != today {
			st = coverageDaily{Day: today}
		}
		if st.Posted == nil {
			st.Posted = map[string]time.Time{}
		}
		if st.Claimed == nil {
			st.Claimed = map[string]time.Time{}
		}
		if !f(&st) {
			return false, nil
		}
		data, _ := json.Marshal(st)
		if rev == 0 {
			_, err = n.b.Slack.Create(ctx, coverageDailyKey, data)
		} else {
			_, err = n.b.Slack.Update(ctx, coverageDailyKey, data, rev)
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("write the daily coverage record: %w", err)
		}
		return true, nil
	}
	return false, errors.New("write the daily coverage record: it kept changing")
}

// claimCoverage takes the channel's summary of today: claimed false when it was
// posted (posted true) or another notifier's claim still holds.
func (n *Notifier) claimCoverage(ctx context.Context, today, ch string) (claimed, posted bool, err error) {
	now := n.now()
	claimed, err = n.updateCoverageDaily(ctx, today, func(st *coverageDaily) bool {
		if _, done := st.Posted[ch]; done {
			posted = true
			return false
		}
		if at, ok := st.Claimed[ch]; ok && now.Sub(at) < coverageClaimFor && !now.Before(at) {
			return false
		}
		st.Claimed[ch] = now
		return true
	})
	return claimed, posted, err
}

// markCoverage records the channel's summary of today as posted.
func (n *Notifier) markCoverage(ctx context.Context, today, ch string) error {
	now := n.now()
	_, err := n.updateCoverageDaily(ctx, today, func(st *coverageDaily) bool {
		st.Posted[ch] = now
		delete(st.Claimed, ch)
		return true
	})
	return err
}
