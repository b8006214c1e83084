package notifier

// What one person, and everyone together, may spend on `/rootwarden check`. A check
// costs AWS calls (STS, IAM, for an unlisted account Organizations, whose quota the
// sweeps share) and holds a goroutine until the detector answers, so three limits
// apply, all taken at once or none: one check per account per CheckEvery, a token
// bucket per Slack user (CheckPerUser) and one for everyone (CheckGlobal). The maps
// are pruned as time passes: an account slot that has run out and a user's bucket
// that has filled up again say nothing an absent entry would not.

import (
	"fmt"
	"sync"
	"time"
)

// Defaults of the check limits.
var (
	DefaultCheckPerUser = Rate{Every: time.Minute, Burst: 5}      // 5 at once, then 1 a minute
	DefaultCheckGlobal  = Rate{Every: 6 * time.Second, Burst: 20} // 20 at once, then 10 a minute
)

// checkMaxUsers bounds the per-user buckets between prunes (a workspace's people).
const checkMaxUsers = 10_000

type checkLimits struct {
	mu       sync.Mutex
	accounts map[string]time.Time // account → last check
	users    map[string]*bucket   // Slack user → their bucket
	global   *bucket
	pruned   time.Time
}

// bucket is a token bucket: Burst tokens, one more every Every.
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) fill(r Rate, now time.Time) {
	if now.After(b.at) {
		b.tokens = min(float64(r.Burst), b.tokens+float64(now.Sub(b.at))/float64(r.Every))
	}
	b.at = now
}

// wait is how long until the bucket holds a whole token again.
func (b *bucket) wait(r Rate) time.Duration {
	return time.Duration((1 - b.tokens) * float64(r.Every))
}

// checkRefusal says which limit refused a check, and when to retry.
type checkRefusal struct {
	limit string // "account", "user", "global"
	wait  time.Duration
}

// takeCheck takes the account's slot and a token of the user's and of the global
// bucket, all or none.
func (n *Notifier) takeCheck(user, account string) (bool, checkRefusal) {
	now := n.now()
	l := &n.chk
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.accounts == nil {
		l.accounts, l.users = map[string]time.Time{}, map[string]*bucket{}
		l.global = &bucket{tokens: float64(n.cfg.CheckGlobal.Burst), at: now}
	}
	if now.Sub(l.pruned) >= n.cfg.CheckEvery || now.Before(l.pruned) || len(l.users) >= checkMaxUsers {
		n.pruneChecks(now)
	}
	if last, ok := l.accounts[account]; ok && now.Sub(last) < n.cfg.CheckEvery && !now.Before(last) {
		return false, checkRefusal{"account", n.cfg.CheckEvery - now.Sub(last)}
	}
	ub, ok := l.users[user]
	if !ok {
		if len(l.users) >= checkMaxUsers {
			return false, checkRefusal{"global", n.cfg.CheckEvery}
		}
		ub = &bucket{tokens: float64(n.cfg.CheckPerUser.Burst), at: now}
	}
	ub.fill(n.cfg.CheckPerUser, now)
	if ub.tokens < 1 {
		l.users[user] = ub
		return false, checkRefusal{"user", ub.wait(n.cfg.CheckPerUser)}
	}
	l.global.fill(n.cfg.CheckGlobal, now)
	if l.global.tokens < 1 {
		return false, checkRefusal{"global", l.global.wait(n.cfg.CheckGlobal)}
	}
	ub.tokens--
	l.global.tokens--
	l.users[user] = ub
	l.accounts[account] = now
	return true, checkRefusal{}
}

// pruneChecks drops the account slots that have run out and the buckets that are
// full again (l.mu held).
func (n *Notifier) pruneChecks(now time.Time) {
	l := &n.chk
	for a, last := range l.accounts {
		if now.Sub(last) >= n.cfg.CheckEvery || now.Before(last) {
			delete(l.accounts, a)
		}
	}
	for u, b := range l.users {
		b.fill(n.cfg.CheckPerUser, now)
		if b.tokens >= float64(n.cfg.CheckPerUser.Burst) {
			delete(l.users, u)
		}
	}
	l.pruned = now
}

// checkLimitSizes is how many account slots and user buckets are held (tests).
func (n *Notifier) checkLimitSizes() (accounts, users int) {
	n.chk.mu.Lock()
	defer n.chk.mu.Unlock()
	return len(n.chk.accounts), len(n.chk.users)
}

// refusalText tells the person which limit refused their check and when to retry.
func (n *Notifier) refusalText(account string, r checkRefusal) string {
	retry := human(max(r.wait, 0) + time.Minute/2)
	switch r.limit {
	case "account":
		return fmt.Sprintf("Account %s was checked less than %s ago; try again in %s.", account, human(n.cfg.CheckEvery), retry)
	case "user":
		return fmt.Sprintf("You have used your checks for now (%d at once, then one every %s); nothing was checked. Try again in %s.",
			n.cfg.CheckPerUser.Burst, every(n.cfg.CheckPerUser.Every), retry)
	}
	return fmt.Sprintf("rootwarden is answering many checks right now (at most one every %s for everyone); nothing was checked. Try again in %s.",
		every(n.cfg.CheckGlobal.Every), retry)
}

// every renders an interval: seconds under a minute, else as human does.
func every(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	return human(d)
}
