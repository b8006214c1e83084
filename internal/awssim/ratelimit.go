package awssim

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/rootwarden/rootwarden/internal/awslimits"
)

// AWS's published request rates (internal/awslimits), as AWS applies them: one token
// bucket per calling account and Organizations operation, one per calling account for
// STS. They run on real time (a test's fake clock does not refill them).

type bucketKey struct{ account, op string }

// rateLimitedLocked answers the throttling error when the call is beyond its
// published rate. The lock is held.
func (s *Sim) rateLimitedLocked(req *request, c *cred) *apiError {
	if !s.rateLimits {
		return nil
	}
	var b awslimits.Bucket
	key := bucketKey{account: c.acct.ID}
	switch req.service {
	case "Organizations":
		b, key.op = awslimits.OrganizationsBucket(req.action), "Organizations."+req.action
	case "STS":
		b, key.op = awslimits.STS, "STS"
	default:
		return nil
	}
	l := s.buckets[key]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(b.Rate), b.Burst)
		s.buckets[key] = l
	}
	if l.AllowN(time.Now(), 1) {
		return nil
	}
	s.throttled++
	s.throttledOp[req.service+"."+req.action]++
	if req.service == "STS" {
		return errf(400, "Throttling", "Rate exceeded")
	}
	return &apiError{status: 400, code: "TooManyRequestsException", typ: "TooManyRequestsException",
		message: "You have sent too many requests in too short a period of time. The quota helps protect against denial-of-service attacks. Try again later."}
}

// SetRateLimits turns AWS's published request rates on or off (see
// Options.NoRateLimits); turning them on starts every bucket full.
func (s *Sim) SetRateLimits(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimits = on
	clear(s.buckets)
}

// RateLimited returns, per "Service.Action", how many calls were refused for going
// beyond the published rate since the simulator started (ThrottledCalls counts them
// too, with the injected throttling).
func (s *Sim) RateLimited() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.throttledOp))
	for k, v := range s.throttledOp {
		out[k] = v
	}
	return out
}
