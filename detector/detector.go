// Package detector owns everything rootwarden knows about AWS root access keys: it
// finds the accounts (the caller's own, or every ACTIVE account of an Organization
// through a role it assumes, with their OU path and tags), keeps them as an inventory
// (KV rw_accounts), checks each one (IAM account summary for presence, the credential
// report for details), sweeps them on an interval as jobs on the RW_SCAN work queue
// shared by every detector process, turns CloudTrail events from SQS into immediate
// checks, answers on-demand checks over request/reply, and publishes
// model.Observations on rootwarden.findings.<account>: one per event and on-demand
// check, as soon as presence is decided (the key details in a second observation
// when the report must first be read), and for a sweep's check only what is new
// against the account's newest observation (unchanged.go).
//
// It calls Organizations and STS at a share (ROOTWARDEN_ORG_API_SHARE, 80 %) of the
// rates AWS publishes for them, per operation (pace.go, internal/awslimits), shared by
// every detector process: the sweep's owner alone lists, and each process paces to
// the share divided by the detectors it sees in rw_sched (replicas.go), so two
// detectors never double the rate; a throttled Organizations call is retried until
// its deadline, never failing a listing. An account's tags and OU path are read first
// for a check that finds root credentials, and for clean accounts only with tokens to
// spare (routing.go).
//
// It never decides a case (opening, resolving or accepting is the remediator's job),
// never deletes or changes a key, never talks to Slack, and never puts a secret in an
// error, a log line or a message.
package detector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// Defaults applied by Config.withDefaults.
const (
	DefaultScanInterval = 15 * time.Minute
	// DefaultConcurrency of account checks per process. What bounds it at AWS, as
	// AWS documents it:
	//   - AssumeRole counts against the detector's own account. AWS STS allows 600
	//     requests a second per account and Region by default, shared by AssumeRole,
	//     GetCallerIdentity and the other STS calls of that account; "for
	//     cross-account AssumeRole requests, only the account making the AssumeRole
	//     request impacts the STS quota" (IAM User Guide, "IAM and AWS STS quotas",
	//     STS request quotas: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
	//   - The IAM calls of a check (GetAccountSummary, the credential report) are made
	//     with the member account's session. AWS publishes no request rate for IAM
	//     APIs: that page lists object quotas only, and IAM throttles with token
	//     buckets whose size and refill "depends on the API" (AWS Security Blog, "How
	//     to monitor and query IAM resources at scale – Part 2").
	//   - Organizations calls (the listing, tags) count against the management
	//     account, which AWS throttles per operation with published token buckets
	//     (ListAccounts 8/s, ListTagsForResource 10/s, …: internal/awslimits). They
	//     do not go through this bound: pace.go keeps them to a share of those rates,
	//     and a check that finds root keys reads its account's tags first (routing.go).
	// Sessions are cached for an hour (renewed over half an hour per account, cache.go)
	// and tags refreshed every 1–2 hours, so only a first sweep calls AssumeRole for
	// every account; AssumeRole is paced to the share of STS's 600/s (pace.go). A
	// first-sweep check is AssumeRole and then GetAccountSummary, so 64 checks in
	// flight make at most 64 ÷ (2 × call latency) AssumeRole calls a second: 640/s at
	// 50 ms per call, 160/s at 200 ms. What IAM refuses (it publishes no rate) is
	// absorbed by the SDK's retries and by the adaptive limit (limit.go), which halves
	// the checks in flight on throttling and grows back by one per round.
	DefaultConcurrency    = 64
	DefaultAccountTimeout = 60 * time.Second
	DefaultMaxAttempts    = 3

	// defaultAckWait of the sweep-job consumer (see Detector.ackWait).
	defaultAckWait = 15 * time.Second

	// reportMaxAge is how long AWS reuses a credential report; an older one is
	// regenerated before its details are used.
	reportMaxAge = 4 * time.Hour
)

// Config configures a Detector or a Scanner. The environment variable named in each
// comment is the one the operator sets (internal/config maps them).
type Config struct {
	// OrgRoleName (ROOTWARDEN_ORG_ROLE_NAME): when set, every ACTIVE account of the
	// Organization is checked through arn:aws:iam::ACCOUNT:role/<OrgRoleName>; the
	// account of the base credentials is checked with those credentials. Empty → only
	// the caller's own account.
	OrgRoleName string
	// ExternalID (ROOTWARDEN_ORG_EXTERNAL_ID) is passed to AssumeRole; needs OrgRoleName.
	ExternalID string
	// ScanInterval (ROOTWARDEN_SCAN_INTERVAL) between sweeps; 0 → 15m.
	ScanInterval time.Duration
	// Concurrency (ROOTWARDEN_SCAN_CONCURRENCY): accounts checked at once per process (an upper bound: throttling lowers it for a while); 0 → 64.
	Concurrency int
	// AccountTimeout (ROOTWARDEN_ACCOUNT_TIMEOUT) bounds one account's check, retries
	// and credential-report polling included; 0 → 60s.
	AccountTimeout time.Duration
	// SQSQueueURL (ROOTWARDEN_SQS_QUEUE_URL) receives EventBridge events of CloudTrail;
	// empty → no event ingestion.
	SQSQueueURL string
	// MaxAttempts of the SDK's standard retryer (AWS_MAX_ATTEMPTS through the SDK's
	// config); 0 → the aws.Config's RetryMaxAttempts, else 3.
	MaxAttempts int
	// MaxBackoff caps the retryer's delay between attempts; 0 → the SDK's 20s. Tests
	// lower it.
	MaxBackoff time.Duration
	// Now is the clock (credential-report age, observation times, sweep schedule).
	Now func() time.Time
	// Metrics registers the detector's metrics when not nil.
	Metrics prometheus.Registerer
	// Instance names this process in the sweep schedule (default host-pid-random).
	Instance string
	// EventWindow: further calls signed with a root key already checked within this
	// window are folded into one check at its end (coalesce.go); 0 → 30s, negative → off.
	EventWindow time.Duration
	// OrgAPIShare (ROOTWARDEN_ORG_API_SHARE) is the share of AWS's published
	// Organizations and STS request rates the detectors use together (pace.go);
	// 0 → DefaultOrgAPIShare (0.8): Control Tower, AFT and other tools draw on the
	// same buckets.
	OrgAPIShare float64
	// RepublishEvery: a sweep publishes an unchanged observation of an account again
	// once its newest one is this old, spread over [d, 2d) per account (unchanged.go);
	// 0 → DefaultRepublishEvery (6h); negative → every check is published.
	RepublishEvery time.Duration
	// SecurityHubIn (ROOTWARDEN_SECURITYHUB=in|both): Security Hub findings of the
	// root-user controls arriving on the SQS queue are hints to check the account
	// (securityhub.go); off → they are deleted as irrelevant.
	SecurityHubIn bool
}

var roleNameRE = regexp.MustCompile(`^[\w+=,.@/-]+$`)
var externalIDRE = regexp.MustCompile(`^[\w+=,.@:/-]+$`)

// Validate reports every bad value, each naming the variable the operator sets.
func (c Config) Validate() error {
	var errs []error
	if c.OrgRoleName != "" {
		name := c.OrgRoleName
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		if !roleNameRE.MatchString(c.OrgRoleName) || name == "" || len(name) > 64 || len(c.OrgRoleName) > 512 {
			errs = append(errs, fmt.Errorf("ROOTWARDEN_ORG_ROLE_NAME: %q is not an IAM role name", c.OrgRoleName))
		}
	}
	if c.ExternalID != "" {
		if c.OrgRoleName == "" {
			errs = append(errs, errors.New("ROOTWARDEN_ORG_EXTERNAL_ID: set, but ROOTWARDEN_ORG_ROLE_NAME is empty (no role to assume)"))
		} else if !externalIDRE.MatchString(c.ExternalID) || len(c.ExternalID) < 2 || len(c.ExternalID) > 1224 {
			errs = append(errs, errors.New("ROOTWARDEN_ORG_EXTERNAL_ID: must be 2 to 1224 characters of letters, digits and +=,.@:/-"))
		}
	}
	if c.ScanInterval < 0 || (c.ScanInterval > 0 && c.ScanInterval < time.Second) {
		errs = append(errs, fmt.Errorf("ROOTWARDEN_SCAN_INTERVAL: %s is too short (at least 1s)", c.ScanInterval))
	}
	if c.Concurrency < 0 || c.Concurrency > 4096 {
		errs = append(errs, fmt.Errorf("ROOTWARDEN_SCAN_CONCURRENCY: %d is out of range 1..4096", c.Concurrency))
	}
	if c.AccountTimeout < 0 || (c.AccountTimeout > 0 && c.AccountTimeout < 100*time.Millisecond) {
		errs = append(errs, fmt.Errorf("ROOTWARDEN_ACCOUNT_TIMEOUT: %s is too short (at least 100ms)", c.AccountTimeout))
	}
	if c.MaxAttempts < 0 || c.MaxAttempts > 20 {
		errs = append(errs, fmt.Errorf("AWS_MAX_ATTEMPTS: %d is out of range 1..20", c.MaxAttempts))
	}
	if c.OrgAPIShare < 0 || c.OrgAPIShare > 1 {
		errs = append(errs, fmt.Errorf("ROOTWARDEN_ORG_API_SHARE: %g is out of range (0, 1]", c.OrgAPIShare))
	}
	if c.MaxBackoff < 0 {
		errs = append(errs, fmt.Errorf("detector max backoff: %s is negative", c.MaxBackoff))
	}
	if c.SQSQueueURL != "" {
		if err := validateQueueURL(c.SQSQueueURL); err != nil {
			errs = append(errs, fmt.Errorf("ROOTWARDEN_SQS_QUEUE_URL: %w", err))
		}
	}
	return errors.Join(errs...)
}

// validateQueueURL accepts https://sqs.REGION.amazonaws.com/ACCOUNT/NAME and any
// http(s) endpoint with a path (simulators, VPC endpoints).
func validateQueueURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.User != nil {
		return errors.New("must not carry user information")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("scheme %q: want https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host: want https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE")
	}
	if strings.Trim(u.Path, "/") == "" {
		return errors.New("no queue path: want https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must not have a query or fragment")
	}
	return nil
}

func (c Config) withDefaults(awsCfg aws.Config) Config {
	if c.ScanInterval == 0 {
		c.ScanInterval = DefaultScanInterval
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.AccountTimeout == 0 {
		c.AccountTimeout = DefaultAccountTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = awsCfg.RetryMaxAttempts
		if c.MaxAttempts == 0 {
			c.MaxAttempts = DefaultMaxAttempts
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Instance == "" {
		c.Instance = instanceName()
	}
	return c
}

// Detector runs the sweeps, the SQS event loop and the check responder of one
// process. Several Detectors (processes) share the sweeps through the bus.
type Detector struct {
	e   *engine
	b   *bus.Bus
	log *slog.Logger

	// ackWait of the shared scan consumer: short, because a job in progress is
	// renewed every ackWait/4 (msg.InProgress); a job whose detector died goes to
	// another within ackWait.
	ackWait    time.Duration
	maxDeliver int

	checkSem chan struct{} // bounds concurrent on-demand checks
	wg       sync.WaitGroup
	mu       sync.Mutex
	closing  bool // set before wg.Wait: no goroutine may start after it

	coal *coalescer // CloudTrail events per account (coalesce.go)
	// failed counts failed root console sign-ins per account and hour (activity.go).
	failed failedLogins

	sweeps *sweepTally // one log line per sweep (sweeplog.go)

	newest newest // each account's newest observation (unchanged.go)
}

// track runs f in a goroutine Run waits for, unless Run is already stopping.
func (d *Detector) track(f func()) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return false
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
	return true
}

var _ model.Checker = (*Detector)(nil)

// New builds a Detector. It validates cfg (errors name the variable) and creates no
// connection until Run.
func New(cfg Config, log *slog.Logger, b *bus.Bus, awsCfg aws.Config) (*Detector, error) {
	if b == nil {
		return nil, errors.New("detector: no bus")
	}
	e, err := newEngine(cfg, log, awsCfg)
	if err != nil {
		return nil, err
	}
	d := &Detector{
		e:          e,
		b:          b,
		log:        e.log,
		ackWait:    defaultAckWait,
		maxDeliver: 5,
		checkSem:   make(chan struct{}, max(8, e.cfg.Concurrency)),
		coal:       newCoalescer(cfg.EventWindow),
		sweeps:     newSweepTally(time.Now),
	}
	// Routing facts read for a check are kept in the inventory, so every detector
	// (and the next sweep) has them without reading them again.
	e.rt.onRead = func(a accountInfo) {
		d.track(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := d.keepTags(ctx, a); err != nil {
				d.log.Warn("keep account tags", "account", a.ID, "err", safeError(err))
			}
		})
	}
	return d, nil
}

// Config returns the configuration in effect (defaults applied).
func (d *Detector) Config() Config { return d.e.cfg }

// Run starts the check responder, the sweep-job consumer, the sweep scheduler and,
// when a queue is configured, the SQS event loop. It returns nil when ctx ends, or
// the first set-up error.
func (d *Detector) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	cons, err := d.scanConsumer(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.closing = false
	d.mu.Unlock()
	sub, err := d.b.NC.QueueSubscribe(bus.SubjectCheck, bus.QueueCheck, func(m *nats.Msg) { d.onCheck(ctx, m) })
	if err != nil {
		return fmt.Errorf("detector: subscribe %s: %w", bus.SubjectCheck, err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	errc := make(chan error, 7)
	run := func(name string, f func(context.Context) error) {
		d.track(func() {
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("detector %s: %w", name, err)
			}
		})
	}
	run("detector count", d.countReplicas) // before the first sweep: the rates are shared
	ready := make(chan struct{})
	run("account inventory", func(ctx context.Context) error { return d.watchInventory(ctx, ready) })
	select { // events and checks take accounts from the inventory
	case <-ready:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		d.log.Warn("account inventory not loaded within 10s; going on without it")
	}
	seen := make(chan struct{})
	run("findings", func(ctx context.Context) error { return d.followFindings(ctx, seen) })
	select { // a sweep compares its checks with the newest observations (unchanged.go)
	case <-seen:
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		d.log.Warn("newest observations not read within 10s; sweeps publish every check until they are")
	}
	run("sweep jobs", func(ctx context.Context) error { return d.consumeJobs(ctx, cons) })
	run("sweep schedule", d.schedule)
	run("sweep summary", d.logSweeps)
	if d.e.cfg.SQSQueueURL != "" {
		run("events", d.pollEvents)
	}
	d.log.Info("detector started", "instance", d.e.cfg.Instance, "org_role", d.e.cfg.OrgRoleName != "",
		"scan_interval", d.e.cfg.ScanInterval.String(), "concurrency", d.e.cfg.Concurrency,
		"events", d.e.cfg.SQSQueueURL != "")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	_ = sub.Unsubscribe()
	d.mu.Lock()
	d.closing = true
	d.mu.Unlock()
	d.wg.Wait()
	d.log.Info("detector stopped", "instance", d.e.cfg.Instance)
	return runErr
}

// Check checks one account now, publishes the observation as a finding and returns
// it (model.Checker for in-process wiring; the bus path is bus.Checker).
func (d *Detector) Check(ctx context.Context, accountID, reason string) (model.Observation, error) {
	obs, details := d.checkRequest(ctx, model.CheckRequest{SchemaVersion: model.SchemaVersion, RequestID: newID(), AccountID: accountID, Reason: reason}, nil)
	if details != nil {
		d.track(details) // the details finding follows; the answer needs presence only
	}
	return obs, nil
}
