package notifier

// Check requests from people ("Re-check", "I deleted the keys"): each costs AWS calls
// and thread replies, so they are bounded, but never by a fixed cooldown that outlives
// the check (issue 19 item 10: a true "I deleted the keys" right after a false one was
// refused for 30 s with "rootwarden is already checking" although the check had
// finished). Two bounds, each told truthfully:
//   - by state: while a check of the case is owed or running (a re-check not yet
//     answered, or a claim being verified), another request adds nothing; the person
//     is told that the check runs and since when. The remediator refuses the same
//     (remediator/machine.go throttled), so this holds across notifier replicas.
//   - by person: at most CheckBudget requests per person per CheckBudgetWindow over
//     all cases (a sliding window); past it the person is told when to retry.
// A repeated delivery of the same click (Slack's retry) costs nothing: the bus
// deduplicates it by action id.

import (
	"fmt"
	"slices"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// Defaults of the per-person budget of check requests.
const (
	DefaultCheckBudget       = 5
	DefaultCheckBudgetWindow = 5 * time.Minute
)

// pendingRecheck is the remediator's mark of a re-check still owed (remediator.PendingRecheck).
const pendingRecheck = "recheck"

type lastClick struct {
	at time.Time
	id string
}

// checkThrottle says why the check request a on case c is not passed on ("" → pass it
// on), and counts it against the person's budget when it is.
func (n *Notifier) checkThrottle(c model.Case, a model.Action) string {
	if a.Kind != model.ActionRecheck && a.Kind != model.ActionConfirmDeleted {
		return ""
	}
	now := n.now()
	switch {
	case c.State == model.StateVerifying:
		since := ""
		if c.VerifyingSince != nil {
			since = fmt.Sprintf(" (since %s)", c.VerifyingSince.UTC().Format("15:04:05 UTC"))
		}
		return fmt.Sprintf("rootwarden is verifying with AWS that the root keys of case %s are deleted%s; the answer will show on the case. Nothing more was done.",
			esc(c.ID), since)
	case slices.Contains(c.Pending, pendingRecheck):
		since := ""
		if c.CheckRequestedAt != nil {
			since = fmt.Sprintf(" (asked at %s)", c.CheckRequestedAt.UTC().Format("15:04:05 UTC"))
		}
		return fmt.Sprintf("rootwarden is already checking case %s with AWS%s; the answer will show on the case. Nothing more was done.",
			esc(c.ID), since)
	}
	user := a.Actor.ID
	n.tmu.Lock()
	defer n.tmu.Unlock()
	window := n.cfg.CheckBudgetWindow
	for u, cs := range n.clicks { // forget what left the window: the map holds recent clickers only
		cs = slices.DeleteFunc(cs, func(c lastClick) bool { return !now.Before(c.at.Add(window)) })
		if len(cs) == 0 {
			delete(n.clicks, u)
		} else {
			n.clicks[u] = cs
		}
	}
	recent := n.clicks[user]
	if slices.ContainsFunc(recent, func(c lastClick) bool { return c.id == a.ID }) {
		return "" // the same click delivered again
	}
	if len(recent) >= n.cfg.CheckBudget {
		wait := recent[len(recent)-n.cfg.CheckBudget].at.Add(window).Sub(now)
		return fmt.Sprintf("You have asked for %d checks in the last %s, the most rootwarden takes from one person; try again in %d s. Nothing was done.",
			len(recent), spell(window), int((wait+time.Second-1)/time.Second))
	}
	n.clicks[user] = append(recent, lastClick{at: now, id: a.ID})
	return ""
}

// spell says a window as people do: "5 minutes", "1 hour", "90 seconds".
func spell(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	}
	return unit(int64((d+time.Second-1)/time.Second), "second")
}
