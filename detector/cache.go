package detector

import (
	"hash/fnv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rootwarden/rootwarden/internal/model"
)

// What the detector remembers between checks, each for as long as it stays true:
//
//   - session credentials of the organization role, per account, until credMargin
//     before AWS expires them (and forgotten at once when a call with them fails
//     for authentication);
//   - the root row of the account's last credential report, per account, while
//     AWS would hand out the same report (reportMaxAge after it was generated).
//
// Account names, OU paths and tags live in the inventory (inventory.go).

const (
	// sessionDuration of AssumeRole: the default MaxSessionDuration of a role (1 h),
	// which also bounds role chaining.
	sessionDuration = time.Hour
	// credMargin: session credentials are renewed this long before they expire, so
	// a check that starts with them cannot outlive them.
	credMargin = 5 * time.Minute
)

type cachedCreds struct {
	p       aws.CredentialsProvider
	expires time.Time
}

type cachedReport struct {
	keys []model.KeyDetail
	at   time.Time // the report's GeneratedTime
}

type caches struct {
	mu      sync.Mutex
	creds   map[string]cachedCreds
	reports map[string]cachedReport
	unknown map[string]time.Time // account id → when Organizations said it does not know it
}

func newCaches() *caches {
	return &caches{creds: map[string]cachedCreds{}, reports: map[string]cachedReport{}, unknown: map[string]time.Time{}}
}

// The negative cache: an id Organizations does not know (DescribeAccount:
// AccountNotFound) is answered "unknown" without asking again for unknownTTL, so a
// stream of made-up ids (`/rootwarden check <id> force`) costs one call per id per
// unknownTTL at most, and the cache holds at most unknownMax ids (the oldest go).
const (
	unknownTTL = 10 * time.Minute
	unknownMax = 1024
)

// isUnknown reports whether Organizations said account does not exist within unknownTTL.
func (c *caches) isUnknown(account string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.unknown[account]
	if ok && (now.Sub(at) >= unknownTTL || now.Before(at)) {
		delete(c.unknown, account)
		return false
	}
	return ok
}

// markUnknown remembers that Organizations does not know account.
func (c *caches) markUnknown(account string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.unknown) >= unknownMax {
		oldest, oldestAt := "", time.Time{}
		for id, at := range c.unknown {
			if now.Sub(at) >= unknownTTL || now.Before(at) {
				delete(c.unknown, id)
				continue
			}
			if oldest == "" || at.Before(oldestAt) {
				oldest, oldestAt = id, at
			}
		}
		if len(c.unknown) >= unknownMax {
			delete(c.unknown, oldest)
		}
	}
	c.unknown[account] = now
}

func (c *caches) sessionFor(account string, now time.Time) aws.CredentialsProvider {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.creds[account]; ok && now.Before(e.expires.Add(-credMargin-renewSpread(account))) {
		return e.p
	}
	return nil
}

// renewSpread is how much earlier than credMargin before expiry an account's session
// is renewed: up to half a session, fixed per account. Sessions the first sweep
// opened together (all of them) are then renewed over half an hour, a share of them
// per sweep, not all 50,000 AssumeRole calls in one sweep.
func renewSpread(account string) time.Duration {
	h := fnv.New32a()
	_, _ = h.Write([]byte(account))
	return time.Duration(h.Sum32()%1800) * (sessionDuration / 2) / 1800
}

func (c *caches) keepSession(account string, p aws.CredentialsProvider, expires time.Time) {
	c.mu.Lock()
	c.creds[account] = cachedCreds{p: p, expires: expires}
	c.mu.Unlock()
}

func (c *caches) dropSession(account string) {
	c.mu.Lock()
	delete(c.creds, account)
	c.mu.Unlock()
}

func (c *caches) report(account string, now time.Time) (cachedReport, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reports[account]
	if !ok || now.Sub(r.at) >= reportMaxAge {
		return cachedReport{}, false
	}
	return r, true
}

func (c *caches) keepReport(account string, keys []model.KeyDetail, at time.Time) {
	c.mu.Lock()
	c.reports[account] = cachedReport{keys: keys, at: at}
	c.mu.Unlock()
}
