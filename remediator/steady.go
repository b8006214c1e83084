package remediator

// Steady state. A sweep observes every account every ScanInterval; when it sees a
// case exactly as the case already says (same keys, event, name, error, membership,
// severity), the decision is "nothing changes": no write to rw_cases, no case event,
// no Slack edit. Only LastCheckedAt would have moved, and it is written rarely: when
// it lags the newest observation by checkedEvery (DefaultCheckedEvery, spread over
// [d, 2d) per account so that the cases opened by one sweep are not all rewritten by
// the same later sweep). Any other change writes it exactly, in the same
// compare-and-set.
//
// "Last checked" therefore has two answers:
//   - Case.LastCheckedAt (rw_cases, the API, the Slack message): the newest
//     observation as of the last write; never older than checkedEvery while sweeps
//     run and see the case.
//   - the newest observation this instance applied (seenTimes, in memory): exact,
//     shown by the case API as last_seen_at; after a restart, views of one account
//     read it from RW_FINDINGS (api.go). The notifier shows the same newest
//     observation in Slack (notifier/lastcheck.go).
//
// The guard against out-of-order observations (machine.go: an observation older than
// what the case knows is ignored) must know the newest observation applied, and that
// is no longer written. seenTimes knows it for this instance only: after a restart, or
// on a second replica, an older "no keys" redelivered after a newer, unwritten "keys
// present" would resolve the case (issue 19 item 5). So the guard is made durable and
// shared where it matters, on the path that changes the case: before a finding's
// decision that would change a case is stored, save (store.go) reads the account's
// newest observation on RW_FINDINGS (bus.NewestObservedAt: at most FindingsPerAccount
// message gets) and decides again with it as Seen. Every observation on the stream has
// been or will be applied, so skipping one older than another there loses nothing:
// the newer one carries the account's state. The steady state, where nothing changes,
// reads nothing; seenTimes still answers last_seen_at and spares the read when this
// instance has seen the newer observation itself. Seeding seenTimes at start-up
// instead would cost a read of every account at each start and still miss what the
// other replica applies while both run. Not covered: an observation that left the
// stream (older than FindingsMaxAge, or more than FindingsPerAccount newer ones): the
// case's own LastCheckedAt, written at least every checkedEvery, guards those.

import (
	"sync"
	"time"

	"github.com/rootwarden/rootwarden/internal/wait"
)

// DefaultCheckedEvery is how far Case.LastCheckedAt may lag (at least) before an
// unchanged observation writes it.
const DefaultCheckedEvery = 6 * time.Hour

// checkedEvery is the lag allowed for account: base (0 → DefaultCheckedEvery) plus a
// per-account share of base, so that rewrites spread over [base, 2·base).
func checkedEvery(base time.Duration, account string) time.Duration {
	if base <= 0 {
		base = DefaultCheckedEvery
	}
	return wait.Spread(base, account)
}

// latest is the later of two times.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// earliest is the earlier of two times.
func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// seenTimes remembers, per account, the newest observation this instance applied.
// One entry per account: bounded by the organization's size.
type seenTimes struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func (s *seenTimes) get(account string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[account]
}

func (s *seenTimes) note(account string, at time.Time) {
	if at.IsZero() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]time.Time{}
	}
	if at.After(s.m[account]) {
		s.m[account] = at
	}
}
