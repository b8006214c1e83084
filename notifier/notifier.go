// Package notifier is a projection of cases into Slack and the gateway of Slack's
// clicks. It consumes case events and keeps exactly one Slack message per case, edited
// in place, with the case's history threaded under it; it reminds approvers and
// escalates late tickets; it verifies every request from Slack (signed HTTP or Socket
// Mode), checks that the clicking user may do what they ask, and turns clicks into
// model.Action messages on the bus. It never calls AWS and never opens tickets: the
// remediator owns the case, the notifier only shows it and relays requests.
//
// Files: blocks.go is the whole Slack layout; consume.go the case-event projection;
// workers.go the per-case workers; pace.go and calls.go the pacing, deadlines and
// 429 handling of every Slack call; interact.go the interaction gateway; remind.go
// reminders and escalation.
package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/notifier/ask"
)

// Defaults of Config.
const (
	DefaultRemindAfter       = 30 * time.Minute
	DefaultMaxReminders      = 3
	DefaultSLA               = 24 * time.Hour
	DefaultMaxRiskAcceptance = 90 * 24 * time.Hour
	DefaultMaxBodyBytes      = 1 << 20
	DefaultGroupCacheTTL     = time.Minute
	DefaultTickEvery         = 30 * time.Second
	DefaultRetryBase         = time.Second
	DefaultRetryMax          = 5 * time.Minute
	DefaultCallTimeout       = 10 * time.Second
	DefaultAckWait           = 10 * time.Second
	DefaultMaxInFlight       = 1024
	urgentInFlight           = 64 // the urgent consumer's window (people's events only)
)

// Config of the notifier. Secrets (SigningSecret, AppToken) never appear in logs:
// Config redacts itself when logged or printed.
type Config struct {
	Channel       string   // ROOTWARDEN_SLACK_CHANNEL: channel id (C…) of the case messages
	SigningSecret string   // SLACK_SIGNING_SECRET: verifies POST /slack/interactions
	AppToken      string   // SLACK_APP_TOKEN (xapp-…): Socket Mode when set
	APIURL        string   // ROOTWARDEN_SLACK_API_URL: Web API base for the Socket Mode client; "" → Slack
	Approvers     []string // ROOTWARDEN_APPROVERS: user ids U…/W… and user-group ids S…

	RemindAfter       time.Duration // open case → reminder after this, then at this interval (30m)
	MaxReminders      int           // reminders per open period; 0 (or negative) → none. Callers set the default (DefaultMaxReminders, 3)
	SLA               time.Duration // ticketed longer than this → escalation, once (24h)
	MaxRiskAcceptance time.Duration // longest risk acceptance (90 days)
	MaxBodyBytes      int64         // interaction request limit (1 MiB)
	GroupCacheTTL     time.Duration // user-group membership cache (1m)
	TickEvery         time.Duration // how often the reminder loop looks (30s, wall clock)
	RetryBase         time.Duration // first redelivery delay after a transient Slack failure (1s)
	RetryMax          time.Duration // longest such delay (5m)
	HistoryPages      int           // pages of 200 messages searched after an interrupted post (5)

	PostRate      Rate          // chat.postMessage per channel (DefaultPostRate)
	Tier3Rate     Rate          // chat.update, conversations.history/replies, each (DefaultTier3Rate)
	EphemeralRate Rate          // chat.postEphemeral (DefaultEphemeralRate)
	CallTimeout   time.Duration // deadline of one Slack call (10s)
	AckWait       time.Duration // case events in work are heartbeated; redelivered this long after a crash (10s)
	MaxInFlight   int           // case events held at once, across cases (1024)

	BurstThreshold int           // this many cases opened within BurstWindow → a summary message (10); negative → never
	BurstWindow    time.Duration // (1m)
	SummaryEvery   time.Duration // the summary is edited at most this often (10s)
	// CheckBudget: "Re-check"/"I deleted" requests one person may make per
	// CheckBudgetWindow (5 per 5m; checkbudget.go).
	CheckBudget       int
	CheckBudgetWindow time.Duration
	// CoverageSummaryAt is when in the UTC day the daily summary of unchecked accounts
	// is due (9h; negative: never; coverage.go).
	CoverageSummaryAt time.Duration

	Now     func() time.Time      // clock for reminders, expiries and records; nil → time.Now
	Metrics prometheus.Registerer // nil → no metrics

	OnCallConfig // routing, owners, PagerDuty, App Home, slash command: oncall.go
}

// LogValue keeps secrets out of structured logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("channel", c.Channel),
		slog.Bool("signing_secret_set", c.SigningSecret != ""),
		slog.Bool("socket_mode", c.AppToken != ""),
		slog.Any("approvers", c.Approvers),
		slog.Duration("remind_after", c.RemindAfter),
		slog.Int("max_reminders", c.MaxReminders),
		slog.Duration("sla", c.SLA),
	)
}

// String keeps secrets out of fmt output.
func (c Config) String() string { return c.LogValue().String() }

// GoString keeps secrets out of %#v.
func (c Config) GoString() string { return "notifier.Config" + c.String() }

func (c *Config) defaults() {
	if c.RemindAfter <= 0 {
		c.RemindAfter = DefaultRemindAfter
	}
	if c.SLA <= 0 {
		c.SLA = DefaultSLA
	}
	if c.MaxRiskAcceptance <= 0 {
		c.MaxRiskAcceptance = DefaultMaxRiskAcceptance
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.GroupCacheTTL <= 0 {
		c.GroupCacheTTL = DefaultGroupCacheTTL
	}
	if c.TickEvery <= 0 {
		c.TickEvery = DefaultTickEvery
	}
	if c.RetryBase <= 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.HistoryPages <= 0 {
		c.HistoryPages = 5
	}
	if c.PostRate.Every <= 0 {
		c.PostRate = DefaultPostRate
	}
	if c.Tier3Rate.Every <= 0 {
		c.Tier3Rate = DefaultTier3Rate
	}
	if c.EphemeralRate.Every <= 0 {
		c.EphemeralRate = DefaultEphemeralRate
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.BurstThreshold == 0 {
		c.BurstThreshold = DefaultBurstThreshold
	}
	if c.BurstWindow <= 0 {
		c.BurstWindow = DefaultBurstWindow
	}
	if c.CheckBudget <= 0 {
		c.CheckBudget = DefaultCheckBudget
	}
	if c.CheckBudgetWindow <= 0 {
		c.CheckBudgetWindow = DefaultCheckBudgetWindow
	}
	if c.CoverageSummaryAt == 0 {
		c.CoverageSummaryAt = DefaultCoverageSummaryAt
	}
	if c.SummaryEvery <= 0 {
		c.SummaryEvery = DefaultSummaryEvery
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Notifier projects cases into Slack and relays Slack's clicks to the bus.
type Notifier struct {
	cfg Config
	log *slog.Logger
	b   *bus.Bus
	api *slack.Client
	// started is when Run began: events held by an earlier process come back within
	// AckWait of it (waitsForOlder).
	started time.Time

	ask ask.Asker // root activity questions (activity.go, notifier/ask)

	users  map[string]bool // approver user ids
	groups []string        // approver user-group ids

	gmu    sync.Mutex
	gcache map[string]groupMembers

	wmu          sync.Mutex
	workspaceURL string // from auth.test, e.g. https://acme.slack.com/: makes permalinks

	onCallState // oncall.go

	m *metrics

	pace  *pacer
	work  *workers
	burst *burst
	due   *dueIndex

	streams streams // lastcheck.go

	rmu      sync.Mutex
	readyErr error // the last Slack check's failure; nil → ready

	tmu         sync.Mutex
	clicks      map[string][]lastClick       // person → their recent check requests (checkbudget.go)
	coverage    atomic.Pointer[bus.Coverage] // live copy of the unchecked accounts (coverage.go)
	coverageDay coverageDayState             // the daily coverage summary's day (coverage.go)
	rateLimited atomic.Int64
	tickReads   atomic.Int64 // cases read by the reminder loop
}

type groupMembers struct {
	members map[string]bool
	at      time.Time
}

// New checks cfg and returns a notifier. It does not call Slack: CheckSlack does.
func New(cfg Config, log *slog.Logger, b *bus.Bus, api *slack.Client) (*Notifier, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if b == nil {
		return nil, errors.New("notifier: bus is required")
	}
	if api == nil {
		return nil, errors.New("SLACK_BOT_TOKEN: a Slack client is required")
	}
	cfg.Channel = strings.TrimSpace(cfg.Channel)
	if cfg.Channel == "" {
		return nil, errors.New("ROOTWARDEN_SLACK_CHANNEL: not set (the id of the channel for case messages, C…)")
	}
	if cfg.SigningSecret == "" && cfg.AppToken == "" {
		return nil, errors.New("SLACK_SIGNING_SECRET: not set (required unless SLACK_APP_TOKEN enables Socket Mode)")
	}
	if cfg.AppToken != "" && !strings.HasPrefix(cfg.AppToken, "xapp-") {
		return nil, errors.New("SLACK_APP_TOKEN: not an app-level token (expected xapp-…)")
	}
	cfg.defaults()
	n := &Notifier{cfg: cfg, log: log.With("component", "notifier"), b: b, api: api,
		users: map[string]bool{}, gcache: map[string]groupMembers{}, work: newWorkers(), burst: newBurst(), due: newDueIndex(), clicks: map[string][]lastClick{}}
	n.pace = newPacer(n.rateOf)
	for _, a := range cfg.Approvers {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
		case strings.HasPrefix(a, "U") || strings.HasPrefix(a, "W"):
			n.users[a] = true
		case strings.HasPrefix(a, "S"):
			n.groups = append(n.groups, a)
		default:
			return nil, fmt.Errorf("ROOTWARDEN_APPROVERS: %q is neither a user id (U…, W…) nor a user-group id (S…)", a)
		}
	}
	if err := n.initOnCall(); err != nil {
		return nil, err
	}
	if len(n.users) == 0 && len(n.groups) == 0 && n.cfg.OnCall == nil {
		n.log.Warn("no approvers configured (ROOTWARDEN_APPROVERS): every approval, risk acceptance and revocation will be refused")
	}
	m, err := newMetrics(cfg.Metrics, n.work)
	if err != nil {
		return nil, err
	}
	n.m = m
	n.ask = n.newAsker()
	return n, nil
}

// Run consumes case events, drives reminders and escalations, and runs Socket Mode
// when an app token is configured. It returns when ctx ends, or on a fatal error.
func (n *Notifier) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n.started = time.Now()
	if len(n.users) == 0 && len(n.groups) == 0 && n.cfg.OnCall == nil {
		n.log.Warn("no approvers configured: approvals are refused (fail closed)")
	}
	// Many at once, each case's in order: a worker per case (workers.go). AckWait is
	// short: messages in work are heartbeated; nothing is lost: transient failures
	// retry for ever.
	primary := jetstream.ConsumerConfig{Durable: bus.ConsumerNotifierCases, Description: "notifier: case events → Slack",
		MaxAckPending: n.cfg.MaxInFlight}
	urgent := jetstream.ConsumerConfig{Durable: bus.ConsumerNotifierUrgent,
		Description:   "notifier: case events a person waits for, ahead of any backlog",
		DeliverPolicy: jetstream.DeliverNewPolicy, // older events are the main consumer's
		MaxAckPending: urgentInFlight}
	var wg sync.WaitGroup
	defer n.work.stopAndWait()
	started := false
	var stops []func()
	for _, c := range []struct {
		cfg    jetstream.ConsumerConfig
		handle func(context.Context, jetstream.Msg)
	}{{urgent, n.enqueueUrgent}, {primary, n.enqueue}} {
		c.cfg.AckPolicy, c.cfg.AckWait, c.cfg.MaxDeliver = jetstream.AckExplicitPolicy, n.cfg.AckWait, -1
		c.cfg.FilterSubject = bus.SubjectCases + ">"
		cons, err := n.b.JS.CreateOrUpdateConsumer(ctx, bus.StreamCases, c.cfg)
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped while starting
			}
			return fmt.Errorf("create consumer %s on %s: %w", c.cfg.Durable, bus.StreamCases, err)
		}
		if !started {
			started = true
			wg.Go(func() { n.heartbeat(ctx) })
			wg.Go(func() { n.summaryLoop(ctx) })
			wg.Go(func() { n.recheckSlack(ctx) })
			wg.Go(func() { n.watchDue(ctx) })
			wg.Go(func() { n.coverageLoop(ctx) })
		}
		name, handle := c.cfg.Durable, c.handle
		cc, err := cons.Consume(func(msg jetstream.Msg) { handle(ctx, msg) },
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if ctx.Err() == nil {
					n.log.Warn("case event consumer", "consumer", name, "err", err)
				}
			}))
		if err != nil {
			return fmt.Errorf("consume %s: %w", bus.StreamCases, err)
		}
		defer cc.Stop()
		stops = append(stops, cc.Stop)
	}
	n.log.Info("notifier running", "config", n.cfg)

	errc := make(chan error, 1)
	wg.Go(func() { n.remindLoop(ctx) })
	wg.Go(func() { n.runOnCall(ctx) })
	if n.cfg.AppToken != "" {
		wg.Go(func() {
			if err := n.runSocketMode(ctx); err != nil {
				errc <- err
			}
		})
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	for _, stop := range stops {
		stop()
	}
	wg.Wait()
	return runErr
}

// CheckSlack verifies at start-up that the bot token works and that the channel
// exists and the bot is in it, naming the problem in one line, with a deadline on
// every call. Its result is also the notifier's readiness (Ready) until a later check
// passes: when Run starts after a failed check, it re-checks in the background. The
// caller tells a configuration mistake (stop the start) from Slack being down or slow
// (start, not ready) with SlackDown.
func (n *Notifier) CheckSlack(ctx context.Context) error {
	err := n.checkSlack(ctx)
	n.setReady(err)
	return err
}

// SlackDown reports whether a CheckSlack error is Slack being unreachable, slow or
// failing (timeouts, 5xx, 429), not a configuration mistake.
func SlackDown(err error) bool {
	if err == nil {
		return false
	}
	cl, _ := classify(err)
	return cl != classPermanent
}

// checkSlack is one check; errors name the variable and wrap Slack's error.
func (n *Notifier) checkSlack(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
	defer cancel()
	at, err := n.api.AuthTestContext(cctx)
	if err != nil {
		return checkErr{"SLACK_BOT_TOKEN: " + slackErrText(err), err}
	}
	n.wmu.Lock()
	n.workspaceURL = at.URL
	n.wmu.Unlock()
	ch, err := n.api.GetConversationInfoContext(cctx, &slack.GetConversationInfoInput{ChannelID: n.cfg.Channel})
	if err != nil {
		return checkErr{fmt.Sprintf("ROOTWARDEN_SLACK_CHANNEL: %s (channel %s)", slackErrText(err), n.cfg.Channel), err}
	}
	if !ch.IsMember {
		return checkErr{fmt.Sprintf("ROOTWARDEN_SLACK_CHANNEL: not_in_channel: the bot is not a member of %s; invite it there (/invite @rootwarden)",
			n.cfg.Channel), slack.SlackErrorResponse{Err: "not_in_channel"}}
	}
	return n.checkRoutes(cctx)
}

// checkErr is a start-up check's one-line message around Slack's error.
type checkErr struct {
	msg string
	err error
}

func (e checkErr) Error() string { return e.msg }
func (e checkErr) Unwrap() error { return e.err }

// Ready reports whether the last check of Slack passed (for /readyz).
func (n *Notifier) Ready(context.Context) error {
	n.rmu.Lock()
	defer n.rmu.Unlock()
	if n.readyErr != nil {
		return fmt.Errorf("slack not reachable: %w", n.readyErr)
	}
	return nil
}

func (n *Notifier) setReady(err error) {
	n.rmu.Lock()
	n.readyErr = err
	n.rmu.Unlock()
}

// recheckSlack repeats CheckSlack's check until it passes, while the notifier
// is not ready.
func (n *Notifier) recheckSlack(ctx context.Context) {
	d := n.cfg.RetryBase
	for n.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		err := n.checkSlack(ctx)
		n.setReady(err)
		if err == nil {
			n.log.Info("Slack reachable again: ready")
			return
		}
		n.log.Warn("Slack still not reachable", "err", err, "retry_in", d)
		d = min(2*d, n.cfg.RetryMax)
	}
}

func (n *Notifier) now() time.Time { return n.cfg.Now() }

// permalink is the link to a message, https://WORKSPACE.slack.com/archives/C…/p<ts
// without the dot>, as Slack builds it; tickets link back to the case with it. It asks
// auth.test for the workspace address once when CheckSlack has not.
func (n *Notifier) permalink(ctx context.Context, channel, ts string) string {
	n.wmu.Lock()
	url := n.workspaceURL
	n.wmu.Unlock()
	if url == "" { // asked without holding the lock: a slow Slack holds no other worker
		cctx, cancel := context.WithTimeout(ctx, n.cfg.CallTimeout)
		at, err := n.api.AuthTestContext(cctx)
		cancel()
		if err == nil {
			url = at.URL
			n.wmu.Lock()
			n.workspaceURL = url
			n.wmu.Unlock()
		}
	}
	if url == "" || channel == "" || ts == "" {
		return ""
	}
	return strings.TrimSuffix(url, "/") + "/archives/" + channel + "/p" + strings.ReplaceAll(ts, ".", "")
}

// slackErrText is the short reason of a Slack error: its code when Slack gave one.
func slackErrText(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return "rate limited (retry after " + rl.RetryAfter.String() + ")"
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return fmt.Sprintf("HTTP %d", sc.Code)
	}
	return err.Error()
}

type metrics struct {
	events       *prometheus.CounterVec
	interactions *prometheus.CounterVec
	slackErrors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, w *workers) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_notifier_case_events_total",
			Help: "Case events handled by the notifier, by result."}, []string{"result"}),
		interactions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_notifier_interactions_total",
			Help: "Slack interactions, by kind and result."}, []string{"kind", "result"}),
		slackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_notifier_slack_errors_total",
			Help: "Failed Slack Web API calls, by class."}, []string{"class"}),
	}
	if reg == nil {
		return m, nil
	}
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rootwarden_notifier_cases_waiting",
		Help: "Cases with case events held for a channel's turn (a flood waiting for Slack's posting rate)."},
		func() float64 { _, waiting := w.backlog(); return float64(waiting) })
	for _, c := range []prometheus.Collector{m.events, m.interactions, m.slackErrors, waiting} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register notifier metrics: %w", err)
		}
	}
	return m, nil
}
