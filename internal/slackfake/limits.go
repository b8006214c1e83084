package slackfake

// Slack's rate limits, enforced when asked (WithLimits): chat.postMessage about one
// message a second per channel with a short burst, Tier 3 methods (chat.update,
// conversations.history, conversations.replies) about 50 a minute, Tier 4
// (chat.postEphemeral) about 100 a minute. A call over the limit is answered 429 with
// Retry-After, as Slack does, and counted. Off by default so that tests stay fast.

import (
	"math"
	"time"
)

// Rate is a token bucket: Burst calls at once, then one every Every.
type Rate struct {
	Every time.Duration
	Burst int
}

// Limits are the rates the fake enforces. A zero Rate is not enforced.
type Limits struct {
	PostPerChannel Rate            // chat.postMessage, per channel
	Methods        map[string]Rate // per method, workspace-wide
}

// SlackLimits are Slack's documented rates: chat.postMessage 1/s per channel (burst
// 3), Tier 3 50/min (burst 5), chat.postEphemeral Tier 4 100/min (burst 10).
func SlackLimits() Limits {
	t3 := Rate{Every: time.Minute / 50, Burst: 5}
	return Limits{
		PostPerChannel: Rate{Every: time.Second, Burst: 3},
		Methods: map[string]Rate{
			"chat.update": t3, "conversations.history": t3, "conversations.replies": t3,
			"usergroups.users.list": t3,
			"chat.postEphemeral":    {Every: time.Minute / 100, Burst: 10},
		},
	}
}

// WithLimits makes the fake enforce l (see SlackLimits).
func WithLimits(l Limits) Option { return func(s *Server) { s.limits = &l } }

// WithClock sets the fake's clock for rate limits; nil → time.Now.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

type bucket struct {
	tokens float64
	at     time.Time
}

// admit takes a token for the call, or says how long until one is free. Callers
// hold s.mu.
func (s *Server) admit(method string, req request) (time.Duration, bool) {
	if s.limits == nil {
		return 0, true
	}
	var r Rate
	key := method
	if method == "chat.postMessage" {
		r, key = s.limits.PostPerChannel, method+"/"+req.get("channel")
	} else {
		r = s.limits.Methods[method]
	}
	if r.Every <= 0 {
		return 0, true
	}
	burst := float64(max(r.Burst, 1))
	now := s.clock()
	b := s.buckets[key]
	if b == nil {
		b = &bucket{tokens: burst, at: now}
		s.buckets[key] = b
	}
	if now.After(b.at) {
		b.tokens = math.Min(burst, b.tokens+float64(now.Sub(b.at))/float64(r.Every))
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) * float64(r.Every)), false
}

func (s *Server) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// RateLimitedCalls is how many calls of method the enforced limits answered 429
// ("" → all methods). Injected RateLimited failures are not counted.
func (s *Server) RateLimitedCalls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if method != "" {
		return s.limited[method]
	}
	n := 0
	for _, v := range s.limited {
		n += v
	}
	return n
}
