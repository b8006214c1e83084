package notifier

// Client-side pacing of Slack Web API calls. Slack allows about one chat.postMessage a
// second per channel (short bursts), Tier 3 (about 50 a minute) for chat.update,
// conversations.history and conversations.replies, Tier 4 for chat.postEphemeral. The
// pacer holds one token bucket per channel for posts and one per method for the
// others, shared by every worker, and hands tokens out by priority: work a person is
// waiting for first, then the burst summary, critical cases, high ones, reminders.
// A 429 that comes anyway blocks its bucket for Retry-After.

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Priorities, most urgent first.
type priority int

const (
	prioHuman    priority = iota // the edit after a click, ephemerals, modal answers
	prioSummary                  // the burst summary: readers should see it first
	prioCritical                 // a case whose key is in use
	prioHigh                     // other cases
	prioBackground
)

type prioKey struct{}

// withPrio marks ctx's Slack calls with p.
func withPrio(ctx context.Context, p priority) context.Context {
	return context.WithValue(ctx, prioKey{}, p)
}

func prioOf(ctx context.Context) priority {
	if p, ok := ctx.Value(prioKey{}).(priority); ok {
		return p
	}
	return prioHigh
}

// Rate is a token bucket: Burst calls at once, then one every Every.
type Rate struct {
	Every time.Duration
	Burst int
}

// Default rates, a little under Slack's so that clock drift does not earn 429s.
var (
	DefaultPostRate      = Rate{Every: 1100 * time.Millisecond, Burst: 2} // chat.postMessage per channel
	DefaultTier3Rate     = Rate{Every: 1300 * time.Millisecond, Burst: 3} // ~46/min
	DefaultEphemeralRate = Rate{Every: 700 * time.Millisecond, Burst: 5}  // ~85/min
)

type pacer struct {
	mu      sync.Mutex
	buckets map[string]*pbucket
	rate    func(key string) Rate
	now     func() time.Time
}

type pbucket struct {
	r       Rate
	tokens  float64
	at      time.Time
	blocked time.Time // no token before this (Retry-After)
	waiters waitHeap
	seq     uint64
	changed chan struct{} // closed and replaced whenever the head may have changed
}

type waiter struct {
	prio  priority
	seq   uint64
	index int
}

type waitHeap []*waiter

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if h[i].prio != h[j].prio {
		return h[i].prio < h[j].prio
	}
	return h[i].seq < h[j].seq
}
func (h waitHeap) Swap(i, j int)    { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *waitHeap) Push(x any)      { w := x.(*waiter); w.index = len(*h); *h = append(*h, w) }
func (h *waitHeap) Pop() any        { old := *h; w := old[len(old)-1]; *h = old[:len(old)-1]; return w }
func (h waitHeap) head() *waiter    { return h[0] }
func (b *pbucket) notify()          { close(b.changed); b.changed = make(chan struct{}) }
func (b *pbucket) remove(w *waiter) { heap.Remove(&b.waiters, w.index); b.notify() }

func newPacer(rate func(string) Rate) *pacer {
	return &pacer{buckets: map[string]*pbucket{}, rate: rate, now: time.Now}
}

func (p *pacer) bucket(key string) *pbucket {
	b := p.buckets[key]
	if b == nil {
		r := p.rate(key)
		b = &pbucket{r: r, tokens: float64(max(r.Burst, 1)), at: p.now(), changed: make(chan struct{})}
		p.buckets[key] = b
	}
	return b
}

// wait takes a token of key's bucket, waiting for its turn by priority; it returns
// ctx's error if ctx ends first.
func (p *pacer) wait(ctx context.Context, key string) error {
	p.mu.Lock()
	b := p.bucket(key)
	if b.r.Every <= 0 {
		p.mu.Unlock()
		return nil
	}
	b.seq++
	w := &waiter{prio: prioOf(ctx), seq: b.seq}
	heap.Push(&b.waiters, w)
	b.notify()
	for {
		now := p.now()
		burst := float64(max(b.r.Burst, 1))
		if now.After(b.at) {
			b.tokens = min(burst, b.tokens+float64(now.Sub(b.at))/float64(b.r.Every))
			b.at = now
		}
		var delay time.Duration
		if b.waiters.head() == w {
			if now.Before(b.blocked) {
				delay = b.blocked.Sub(now)
			} else if b.tokens >= 1 {
				b.tokens--
				b.remove(w)
				p.mu.Unlock()
				return nil
			} else {
				delay = time.Duration((1 - b.tokens) * float64(b.r.Every))
			}
		}
		changed := b.changed
		p.mu.Unlock()
		var t *time.Timer
		var timer <-chan time.Time
		if delay > 0 {
			t = time.NewTimer(delay)
			timer = t.C
		}
		select {
		case <-ctx.Done():
			p.mu.Lock()
			b.remove(w)
			p.mu.Unlock()
			return ctx.Err()
		case <-changed:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		p.mu.Lock()
	}
}

// block keeps key's bucket closed for d (a 429's Retry-After) and drains it.
func (p *pacer) block(key string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bucket(key)
	if until := p.now().Add(d); until.After(b.blocked) {
		b.blocked = until
		b.tokens = 0
		b.at = until
	}
	b.notify()
}
