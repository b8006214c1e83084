package detector

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// limiter bounds the account checks running at once and adapts the bound to AWS:
// every throttled attempt the SDK sees (Throttling, TooManyRequestsException, …)
// halves it (at most once per cutEvery, so one burst counts once), and every check
// that ends adds 1/limit, so the bound grows back by about one per round of checks,
// up to the configured Concurrency (additive increase, multiplicative decrease, as
// TCP and the SDK's own adaptive retry mode do).
type limiter struct {
	mu       sync.Mutex
	max      float64
	limit    float64
	inflight int
	wake     chan struct{} // closed and replaced whenever a slot may have freed
	lastCut  time.Time
	cuts     int
}

const cutEvery = time.Second

func newLimiter(n int) *limiter {
	return &limiter{max: float64(n), limit: float64(n), wake: make(chan struct{})}
}

// acquire waits for a slot.
func (l *limiter) acquire(ctx context.Context) error {
	for {
		l.mu.Lock()
		if l.inflight < max(1, int(l.limit)) {
			l.inflight++
			l.mu.Unlock()
			return nil
		}
		w := l.wake
		l.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release frees a slot and grows the bound a little.
func (l *limiter) release() {
	l.mu.Lock()
	l.inflight--
	l.limit = min(l.max, l.limit+1/l.limit)
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}

// throttled halves the bound (once per cutEvery).
func (l *limiter) throttled() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.lastCut) >= cutEvery {
		l.limit = max(1, l.limit/2)
		l.lastCut = now
		l.cuts++
	}
}

// current is the bound in effect and how often it was cut.
func (l *limiter) current() (limit float64, cuts int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit, l.cuts
}

// throttleSignal is the standard retryer that tells the limiter about every
// throttled attempt (the SDK retries them, so the final error often never shows).
type throttleSignal struct {
	aws.RetryerV2
	onThrottle func()
}

var throttles = retry.IsErrorThrottles(retry.DefaultThrottles)

func (r throttleSignal) IsErrorRetryable(err error) bool {
	if throttles.IsErrorThrottle(err) == aws.TrueTernary {
		r.onThrottle()
	}
	return r.RetryerV2.IsErrorRetryable(err)
}
