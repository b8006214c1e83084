package notifier

// On-call approvers: whoever is on call now on the PagerDuty schedules may approve, in
// addition to ROOTWARDEN_APPROVERS. PagerDuty's answer (emails) is turned into Slack
// users with users.lookupByEmail and trusted for OnCallCacheTTL; one lookup runs at a
// time, so a burst of clicks makes one PagerDuty call. When PagerDuty cannot be asked,
// on-call approval fails closed and the refusal says why; static approvers still work.
//
// This file also holds the settings and state of the other on-call flows (route.go,
// owner.go, incident.go, home.go, events.go, slash.go) and runOnCall, which runs their
// loops beside the projection.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/pagerduty"
)

// Defaults of OnCallConfig.
const (
	DefaultOnCallCacheTTL = time.Minute
	DefaultCheckEvery     = time.Minute
	DefaultHomeDebounce   = 2 * time.Second

	onCallErrTTL = 5 * time.Second // a PagerDuty failure is remembered this long
)

// OnCallSource says who is on call at a time (PagerDuty's GET /oncalls).
type OnCallSource interface {
	OnCallEmails(ctx context.Context, at time.Time) ([]string, error)
}

// Pager opens and resolves incidents (PagerDuty's Events API v2); both are idempotent
// per dedup key.
type Pager interface {
	Trigger(ctx context.Context, in pagerduty.Incident) error
	Resolve(ctx context.Context, dedupKey string) error
}

var (
	_ OnCallSource = (*pagerduty.Client)(nil)
	_ Pager        = (*pagerduty.Client)(nil)
)

// OnCallConfig are the notifier's on-call settings.
type OnCallConfig struct {
	Routes         []Route       // ROOTWARDEN_SLACK_ROUTES: first match wins; Channel catches the rest
	OwnerTag       string        // ROOTWARDEN_OWNER_TAG: account tag holding the owner's email; "" → no owners
	OnCall         OnCallSource  // ROOTWARDEN_PAGERDUTY_TOKEN/_SCHEDULES; nil → no on-call approvers
	OnCallCacheTTL time.Duration // ROOTWARDEN_ONCALL_CACHE_TTL (1m)
	Pager          Pager         // ROOTWARDEN_PAGERDUTY_ROUTING_KEY; nil → no incidents
	Checker        model.Checker // `/rootwarden check` of an account without a case; nil → refused
	CheckEvery     time.Duration // one `/rootwarden check` per account per this (1m)
	CheckPerUser   Rate          // `/rootwarden check`s one person may start (DefaultCheckPerUser: 5, then 1/min)
	CheckGlobal    Rate          // `/rootwarden check`s everyone together may start (DefaultCheckGlobal: 20, then 10/min)
	SweepEvery     time.Duration // the detector's ROOTWARDEN_SCAN_INTERVAL, to say when the next sweep is due; 0 → not said
	HomeDebounce   time.Duration // App Home refresh after cases move (2s)
}

type onCallState struct {
	lookups lookupCache // owner.go

	ocFetch sync.Mutex // one PagerDuty lookup at a time
	ocMu    sync.Mutex
	ocAt    time.Time
	ocUsers []string // Slack ids on call at ocAt
	ocErr   error    // the last failure, trusted for onCallErrTTL (a hanging PagerDuty costs one wait, not one per click)
	ocErrAt time.Time

	home    homeState  // home.go
	members membership // visible.go

	chk checkLimits // `/rootwarden check` limits (checklimit.go)

	startedAt time.Time // wall clock at New: where the PagerDuty consumer starts
}

func (n *Notifier) initOnCall() error {
	if err := n.checkRouteConfig(); err != nil {
		return err
	}
	if n.cfg.OnCallCacheTTL <= 0 {
		n.cfg.OnCallCacheTTL = DefaultOnCallCacheTTL
	}
	if n.cfg.CheckEvery <= 0 {
		n.cfg.CheckEvery = DefaultCheckEvery
	}
	if n.cfg.HomeDebounce <= 0 {
		n.cfg.HomeDebounce = DefaultHomeDebounce
	}
	if n.cfg.CheckPerUser.Every <= 0 || n.cfg.CheckPerUser.Burst <= 0 {
		n.cfg.CheckPerUser = DefaultCheckPerUser
	}
	if n.cfg.CheckGlobal.Every <= 0 || n.cfg.CheckGlobal.Burst <= 0 {
		n.cfg.CheckGlobal = DefaultCheckGlobal
	}
	n.startedAt = time.Now()
	n.home.viewers = map[string]time.Time{}
	n.home.notices = map[string]string{}
	n.home.opening = map[string]bool{}
	n.home.sem = make(chan struct{}, homeMaxConcurrent)
	return nil
}

// runOnCall runs the loops of the on-call flows until ctx ends: PagerDuty incidents
// (when a Pager is configured) and App Home refreshes.
func (n *Notifier) runOnCall(ctx context.Context) {
	var wg sync.WaitGroup
	if n.cfg.Pager != nil {
		wg.Go(func() { n.incidentLoop(ctx) })
	}
	wg.Go(func() { n.homeLoop(ctx) })
	wg.Wait()
}

// onCallNow is the Slack ids of whoever is on call now, cached for OnCallCacheTTL.
func (n *Notifier) onCallNow(ctx context.Context) ([]string, error) {
	n.ocFetch.Lock()
	defer n.ocFetch.Unlock()
	now := n.now()
	n.ocMu.Lock()
	at, users := n.ocAt, n.ocUsers
	n.ocMu.Unlock()
	if !at.IsZero() && now.Sub(at) < n.cfg.OnCallCacheTTL && !now.Before(at) {
		return users, nil
	}
	n.ocMu.Lock()
	lastErr, errAt := n.ocErr, n.ocErrAt
	n.ocMu.Unlock()
	if lastErr != nil && now.Sub(errAt) < onCallErrTTL && !now.Before(errAt) {
		return nil, lastErr
	}
	fail := func(err error) ([]string, error) {
		n.ocMu.Lock()
		n.ocErr, n.ocErrAt = err, now
		n.ocMu.Unlock()
		return nil, err
	}
	emails, err := n.cfg.OnCall.OnCallEmails(ctx, now)
	if err != nil {
		return fail(err)
	}
	ids := make([]string, 0, len(emails))
	for _, e := range emails {
		id, err := n.slackUserByEmail(ctx, e)
		if err != nil {
			return fail(fmt.Errorf("users.lookupByEmail for an on-call person: %s", slackErrText(err)))
		}
		if id == "" {
			n.log.Warn("on-call person has no Slack user with their PagerDuty email: they cannot approve", "email_domain", domainOf(e))
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	n.ocMu.Lock()
	n.ocAt, n.ocUsers, n.ocErr = now, ids, nil
	n.ocMu.Unlock()
	return ids, nil
}

func domainOf(email string) string {
	_, d, _ := strings.Cut(email, "@")
	return d
}

// isOnCall reports whether user is on call now. why is the refusal text when
// PagerDuty could not be asked ("" otherwise, and when no PagerDuty is configured).
func (n *Notifier) isOnCall(ctx context.Context, user string) (on bool, why string) {
	if n.cfg.OnCall == nil {
		return false, ""
	}
	ids, err := n.onCallNow(ctx)
	if err != nil {
		reason := err.Error()
		var pe *pagerduty.Error
		if errors.As(err, &pe) {
			reason = pe.Error()
		}
		n.log.Warn("cannot tell who is on call: on-call approval refused (fail closed)", "err", reason)
		return false, "rootwarden could not ask PagerDuty who is on call (" + esc(reason) + "), so on-call approval is refused for now; try again, or ask an approver listed in ROOTWARDEN_APPROVERS."
	}
	for _, id := range ids {
		if id == user {
			return true, ""
		}
	}
	return false, ""
}

// approverMentions names everyone who may approve, for refusals and reminders. It
// asks PagerDuty (cached) when on-call approvers are configured.
func (n *Notifier) approverMentions(ctx context.Context) string {
	var parts []string
	if len(n.users) > 0 || len(n.groups) > 0 || n.cfg.OnCall == nil {
		parts = append(parts, n.mentions())
	}
	if n.cfg.OnCall != nil {
		ids, err := n.onCallNow(ctx)
		switch {
		case err != nil:
			parts = append(parts, "the PagerDuty on-call (unknown right now: PagerDuty could not be asked)")
		case len(ids) == 0:
			parts = append(parts, "the PagerDuty on-call (nobody with a Slack user is on call now)")
		default:
			m := make([]string, len(ids))
			for i, id := range ids {
				m[i] = "<@" + id + ">"
			}
			parts = append(parts, "on call now: "+strings.Join(m, " "))
		}
	}
	return strings.Join(parts, " · ")
}
