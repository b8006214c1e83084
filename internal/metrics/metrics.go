// Package metrics owns rootwarden's operating signals that span components: build
// info, time to remediate, cases by state and severity, accounts with root keys, the
// last successful sweep, Slack and tracker call outcomes, and JetStream consumer lag.
// The collectors exist from process start (every label combination that can be known
// in advance is pre-initialised, so a rate() never sees a missing series); components
// feed them through one-line hooks, and Register exposes them on a registry.
package metrics

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/model"
)

// Build identifies the binary in rootwarden_build_info.
type Build struct {
	Version, Commit, Date string
}

// Resolutions label the time-to-remediate histogram.
const (
	ResolvedDeleted      = "deleted"       // a person deleted the key; rootwarden verified it
	ResolvedAssumeRoot   = "assume_root"   // rootwarden deleted it through sts:AssumeRoot after approval
	ResolvedRiskAccepted = "risk_accepted" // someone accepted the risk (the case stays, the key too)
)

// Outcomes of an outbound call.
const (
	OutcomeOK          = "ok"
	OutcomeRateLimited = "rate_limited" // HTTP 429 (Slack, GitHub) or a 403 secondary limit
	OutcomeClientError = "client_error" // other 4xx, or Slack ok:false
	OutcomeServerError = "server_error" // 5xx
	OutcomeNetwork     = "network"      // no answer: connection, TLS, deadline
)

var outcomes = []string{OutcomeOK, OutcomeRateLimited, OutcomeClientError, OutcomeServerError, OutcomeNetwork}

// SlackMethods are the Web API methods rootwarden calls (deploy/slack/manifest.yaml).
var SlackMethods = []string{"auth.test", "conversations.info", "chat.postMessage", "chat.update",
	"chat.postEphemeral", "conversations.history", "conversations.replies", "views.open",
	"usergroups.users.list", "apps.connections.open", "views.publish", "users.lookupByEmail"}

// Trackers are the ticket systems with an HTTP API.
var Trackers = []string{"jira", "github"}

var (
	states     = []model.State{model.StateOpen, model.StateTicketed, model.StateVerifying, model.StateResolved, model.StateRiskAccepted}
	severities = []model.Severity{model.SeverityHigh, model.SeverityCritical}
)

// The collectors; package-level so a hook is one line wherever the event happens.
var (
	buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rootwarden_build_info",
		Help: "Always 1; the labels say which build runs."}, []string{"version", "commit", "date", "goversion"})

	timeToRemediate = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rootwarden_case_time_to_remediate_seconds",
		Help: "From a case opening to its end, by how it ended (deleted, assume_root, risk_accepted).",
		Buckets: []float64{300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600,
			48 * 3600, 72 * 3600, 7 * 24 * 3600, 14 * 24 * 3600, 30 * 24 * 3600}}, []string{"resolution"})

	cases = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rootwarden_cases",
		Help: "Cases by state and severity, as of the remediator's last scan of the store."}, []string{"state", "severity"})
	oldestOpen = &oldestCollector{desc: prometheus.NewDesc("rootwarden_case_oldest_open_age_seconds",
		"Age of the oldest case still open (any state but resolved and risk_accepted), by severity, at scrape time; 0 when none.",
		[]string{"severity"}, nil)}
	accountsWithKeys = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rootwarden_accounts_with_root_keys",
		Help: "Accounts whose case is not resolved: root access keys present, or their deletion not yet verified."})
	casesScanned = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rootwarden_cases_last_scan_timestamp_seconds",
		Help: "When the remediator last scanned the case store (the case gauges are that old)."})

	sweepSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rootwarden_sweep_last_success_timestamp_seconds",
		Help: "When the last sweep finished listing the organization and queued every account for a check; 0 before the first."})
	sweepDuration = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rootwarden_sweep_listing_duration_seconds",
		Help: "How long the last successful sweep took to list and queue the accounts."})
	sweepAccounts = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rootwarden_sweep_accounts",
		Help: "Accounts the last successful sweep queued for a check."})

	slackCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_slack_calls_total",
		Help: "Slack Web API calls by method and outcome."}, []string{"method", "outcome"})
	trackerCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_tracker_calls_total",
		Help: "Ticket tracker HTTP calls by tracker and outcome."}, []string{"tracker", "outcome"})
)

func init() {
	for _, r := range []string{ResolvedDeleted, ResolvedAssumeRoot, ResolvedRiskAccepted} {
		timeToRemediate.WithLabelValues(r)
	}
	for _, s := range states {
		for _, v := range severities {
			cases.WithLabelValues(string(s), string(v))
		}
	}
	for _, o := range outcomes {
		for _, m := range SlackMethods {
			slackCalls.WithLabelValues(m, o)
		}
		for _, t := range Trackers {
			trackerCalls.WithLabelValues(t, o)
		}
	}
}

var buildOnce sync.Once

// Register exposes every collector of this package on reg and sets the build info.
// Registering on the same registry twice is fine.
func Register(reg prometheus.Registerer, b Build) error {
	buildOnce.Do(func() { buildInfo.WithLabelValues(b.Version, b.Commit, b.Date, runtime.Version()).Set(1) })
	for _, c := range []prometheus.Collector{buildInfo, timeToRemediate, cases, oldestOpen, accountsWithKeys,
		casesScanned, sweepSuccess, sweepDuration, sweepAccounts, slackCalls, trackerCalls} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// CaseEvent records a case event the remediator saved: a resolution or risk acceptance
// observes the time since the case opened. Call it once per saved event.
func CaseEvent(ev model.CaseEvent) {
	if ev.Case.AccountID != "" {
		viewMu.Lock()
		setLocked(ev.Case.AccountID, viewOf(ev.Case), true)
		publishLocked()
		viewMu.Unlock()
	}
	var how string
	switch ev.Type {
	case model.EventResolved:
		how = ResolvedDeleted
		if len(ev.Case.DeletedKeyIDs) > 0 {
			how = ResolvedAssumeRoot
		}
	case model.EventRiskAccepted:
		how = ResolvedRiskAccepted
	default:
		return
	}
	opened := ev.Case.OpenedAt
	if opened.IsZero() || ev.At.Before(opened) {
		return
	}
	timeToRemediate.WithLabelValues(how).Observe(ev.At.Sub(opened).Seconds())
}

// The remediator's view of the current cases: replaced by each full pass over the store
// (Tally), updated by every case event it saves (CaseEvent) in between. With several
// remediators each sees its full passes and its own transitions: aggregate with max().
type caseView struct {
	state  model.State
	sev    model.Severity
	opened time.Time
}

var (
	viewMu  sync.Mutex
	view    = map[string]caseView{} // account → its current case
	counts  = map[[2]string]int{}   // state, severity → cases
	withKey int
	clock   = time.Now
)

// setLocked replaces an account's entry and keeps the counts in step.
func setLocked(account string, c caseView, ok bool) {
	if old, had := view[account]; had {
		counts[[2]string{string(old.state), string(old.sev)}]--
		if old.state.Active() {
			withKey--
		}
		delete(view, account)
	}
	if !ok {
		return
	}
	view[account] = c
	counts[[2]string{string(c.state), string(c.sev)}]++
	if c.state.Active() {
		withKey++
	}
}

// publishLocked sets the gauges from the counts.
func publishLocked() {
	for _, s := range states {
		for _, v := range severities {
			cases.WithLabelValues(string(s), string(v)).Set(float64(counts[[2]string{string(s), string(v)}]))
		}
	}
	for k, n := range counts { // states or severities this build does not know yet
		cases.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
	accountsWithKeys.Set(float64(withKey))
}

// ActiveCases is the number of cases not resolved in the view.
func ActiveCases() int {
	viewMu.Lock()
	defer viewMu.Unlock()
	return withKey
}

func viewOf(c model.Case) caseView {
	return caseView{state: c.State, sev: c.Severity, opened: c.OpenedAt}
}

// Tally collects the cases of one full pass over the store; Publish makes it the view.
type Tally struct {
	cases map[string]caseView
}

// NewTally starts a pass.
func NewTally() *Tally { return &Tally{cases: map[string]caseView{}} }

// Add records one current case.
func (t *Tally) Add(c model.Case) { t.cases[c.AccountID] = viewOf(c) }

// Publish replaces the view with the pass's cases, as of now.
func (t *Tally) Publish(now time.Time) {
	viewMu.Lock()
	defer viewMu.Unlock()
	clear(view)
	clear(counts)
	withKey = 0
	for a, c := range t.cases {
		setLocked(a, c, true)
	}
	publishLocked()
	casesScanned.Set(float64(now.Unix()))
}

// oldestCollector computes the age of the oldest open case at scrape time, so the
// SLA alert sees it grow between passes.
type oldestCollector struct{ desc *prometheus.Desc }

func (o *oldestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

func (o *oldestCollector) Collect(ch chan<- prometheus.Metric) {
	now := clock()
	oldest := map[model.Severity]time.Time{}
	viewMu.Lock()
	for _, c := range view {
		if !c.state.Active() || c.state == model.StateRiskAccepted || c.opened.IsZero() {
			continue
		}
		if o, ok := oldest[c.sev]; !ok || c.opened.Before(o) {
			oldest[c.sev] = c.opened
		}
	}
	viewMu.Unlock()
	for _, v := range severities {
		age := 0.0
		if t, ok := oldest[v]; ok {
			age = max(0, now.Sub(t).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, age, string(v))
	}
}

// SweepListed records a sweep that listed the organization and queued every account.
func SweepListed(started, finished time.Time, accounts int) {
	sweepSuccess.Set(float64(finished.Unix()))
	sweepDuration.Set(max(0, finished.Sub(started).Seconds()))
	sweepAccounts.Set(float64(accounts))
}
