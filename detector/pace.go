package detector

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/rootwarden/rootwarden/internal/awslimits"
)

// Pacing to AWS's published rates.
//
// Organizations throttles with a token bucket per operation and calling account
// (internal/awslimits holds the published table and its source: ListAccounts 8/s
// burst 12, ListAccountsForParent 5/s burst 8, ListTagsForResource 10/s burst 15, …),
// and STS allows 600 calls a second per calling account. Every call the detector makes
// to them first takes a token from its operation's bucket here (x/time/rate), each
// attempt of it included, so:
//
//   - the detector keeps below the published rates instead of finding them by being
//     refused; with rootwarden the only caller, a steady state draws no
//     TooManyRequestsException;
//   - it uses Share of each rate (ROOTWARDEN_ORG_API_SHARE, default 0.8): Control
//     Tower, AFT and the organization's other tools draw on the same buckets (the
//     per-organization bucket is only slightly larger than the per-account one);
//   - one operation's bucket never slows another's, and member-account checks
//     (IAM in each member account, adaptive in limit.go) never wait for
//     Organizations;
//   - a call that is still refused (another tool took the tokens) backs off and is
//     tried again, as often as it takes within its context's deadline (the listing's
//     listTimeout, a routing read's routingWait): a throttled page never fails the
//     listing, the sweep or `scan`. Other errors keep the SDK's MaxAttempts.
//
// Replicas. The buckets are AWS's per calling account, so every detector of one
// deployment shares them. Of the Organizations calls, the listing is made only by the
// sweep's owner (sweep.go: the process that won the sweep's compare-and-set), while
// routing reads (tags, OU path, DescribeAccount) follow the jobs and events onto
// every replica. Each detector announces itself in rw_sched (replicas.go) and paces
// to Share ÷ (detectors seen) of every rate: the replicas together never exceed
// Share, whatever the spread of the work. A budget held in NATS (a token per call
// through the KV) was rejected: it puts a round trip to the bus, and the bus's
// availability, in front of every AWS call, for no gain at the handful of replicas a
// deployment runs; dividing wastes at most the idle replicas' shares, and a lost
// replica's share returns within replicaStale.
type pacer struct {
	share float64

	mu       sync.Mutex
	replicas int
	lims     map[string]*rate.Limiter // "Organizations.<op>", "STS"
}

// DefaultOrgAPIShare is the share of AWS's published rates the detectors use together.
const DefaultOrgAPIShare = 0.8

func newPacer(share float64) *pacer {
	if share <= 0 || share > 1 {
		share = DefaultOrgAPIShare
	}
	return &pacer{share: share, replicas: 1, lims: map[string]*rate.Limiter{}}
}

// bucket is the published bucket behind a pacing key.
func bucketOf(key string) awslimits.Bucket {
	if key == "STS" {
		return awslimits.STS
	}
	return awslimits.OrganizationsBucket(key[len("Organizations."):])
}

// scaled is the share of b this process may use.
func (p *pacer) scaled(b awslimits.Bucket) (rate.Limit, int) {
	f := p.share / float64(max(1, p.replicas))
	return rate.Limit(b.Rate * f), max(1, int(math.Floor(float64(b.Burst)*f)))
}

func (p *pacer) limiter(key string) *rate.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lims[key]
	if l == nil {
		r, burst := p.scaled(bucketOf(key))
		l = rate.NewLimiter(r, burst)
		p.lims[key] = l
	}
	return l
}

// setReplicas divides every rate by n detectors and reports whether n changed.
func (p *pacer) setReplicas(n int) bool {
	n = max(1, n)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n == p.replicas {
		return false
	}
	p.replicas = n
	for key, l := range p.lims {
		r, burst := p.scaled(bucketOf(key))
		l.SetLimit(r)
		l.SetBurst(burst)
	}
	return true
}

// rateOf is the rate (calls a second) this process uses for an Organizations operation.
func (p *pacer) rateOf(op string) float64 {
	return float64(p.limiter("Organizations." + op).Limit())
}

// wait takes a token for one attempt of a call.
func (p *pacer) wait(ctx context.Context, key string) error {
	if err := p.limiter(key).Wait(ctx); err != nil {
		return fmt.Errorf("wait for the %s rate: %w", key, err)
	}
	return nil
}

// spare takes a token for background work when the bucket has tokens to spare (at
// least half its burst stays for calls somebody waits for) and returns ctx carrying
// it, for the call's first attempt; ok is false, and nothing taken, otherwise.
func (p *pacer) spare(ctx context.Context, key string) (context.Context, bool) {
	l := p.limiter(key)
	p.mu.Lock() // one taker at a time: Tokens then Allow
	defer p.mu.Unlock()
	if l.Tokens() < float64(max(1, l.Burst()/2)) || !l.Allow() {
		return ctx, false
	}
	return context.WithValue(ctx, prepaidKey{}, &prepaid{key: key}), true
}

// spareNow reports whether the bucket has tokens to spare, taking none.
func (p *pacer) spareNow(key string) bool {
	l := p.limiter(key)
	return l.Tokens() >= float64(max(1, l.Burst()/2))
}

type prepaidKey struct{}

// prepaid is a token spare took: the first attempt of a call of key uses it.
type prepaid struct {
	key  string
	used atomic.Bool
}

// apiOption adds the pacing to a client of service ("Organizations" or "STS"): a
// token before every attempt, the retries included.
func (p *pacer) apiOption(service string) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("rootwarden/pace",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				key := service
				if service == "Organizations" {
					key += "." + awsmiddleware.GetOperationName(ctx)
				}
				if pp, ok := ctx.Value(prepaidKey{}).(*prepaid); ok && pp.key == key && pp.used.CompareAndSwap(false, true) {
					return next.HandleFinalize(ctx, in)
				}
				if err := p.wait(ctx, key); err != nil {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, err
				}
				return next.HandleFinalize(ctx, in)
			}), "Retry", middleware.After)
	}
}

// patientRetryer retries throttling as often as it takes (the context's deadline
// bounds it; the pacer spaces the attempts) and every other retryable error up to
// attempts times.
type patientRetryer struct {
	aws.RetryerV2
	attempts int
}

func newPatientRetryer(attempts int, maxBackoff time.Duration) patientRetryer {
	return patientRetryer{attempts: attempts, RetryerV2: retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		if maxBackoff > 0 {
			o.MaxBackoff = maxBackoff
		}
		o.RateLimiter = ratelimit.None
	})}
}

// MaxAttempts 0: no count stops a throttled call (RetryDelay stops the others).
func (r patientRetryer) MaxAttempts() int { return 0 }

func (r patientRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	if throttles.IsErrorThrottle(err) != aws.TrueTernary && attempt >= r.attempts {
		return 0, &retry.MaxAttemptsError{Attempt: attempt, Err: err}
	}
	return r.RetryerV2.RetryDelay(attempt, err)
}
