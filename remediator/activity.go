package remediator

// Root activity questions ("was this you?", docs/activity.md). The remediator is the
// single writer of a question as it is of a case: it opens one from the detector's
// activity report, folds more activity of the account within ActivityWindow into it,
// records the answer the notifier relays as an action (activity_confirm with a
// reason, activity_deny) and escalates the question when no answer came by its
// AnswerBy. A question is stored per account in KV rw_sched under "activity.<account>"
// (beside the account's root-credential case in rw_cases, never inside it), written
// with compare-and-set, its events published from an outbox on the account's
// RW_CASES subject like every case event. The escalation time is an entry of the
// due-time index ("<minute>.activity.<account>", due.go), so it survives restarts
// and fires once across replicas (the compare-and-set decides).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

const (
	// DefaultActivityAnswerWithin is how long the owner has to answer (ROOTWARDEN_ACTIVITY_ANSWER_WITHIN).
	DefaultActivityAnswerWithin = 15 * time.Minute
	// ActivityWindow: activity of an account within this time of the question's first
	// item joins the open question instead of asking again.
	ActivityWindow = 10 * time.Minute
	// maxActivityItems bounds the items kept on one question (the count still grows).
	maxActivityItems = 50

	activityKeyPrefix = "activity."
	dueActivity       = "activity" // kind of the due-time index entry of a question's AnswerBy
)

// ActivityInput is one thing that happened to an account's root activity question.
// Exactly one of Report, Action or Expire is set.
type ActivityInput struct {
	At     time.Time
	Report *model.ActivityReport
	Action *model.Action
	Expire bool
	// AnswerWithin is the time to answer a new question (0 → DefaultActivityAnswerWithin).
	AnswerWithin time.Duration
	// RootCaseID is the account's active root-credential case, if any (linked).
	RootCaseID   string
	MaxActionIDs int
}

// ApplyActivity decides the next state of an account's question (cur nil: none
// yet). nil means nothing changes. It never mutates cur.
func ApplyActivity(cur *model.Activity, in ActivityInput) (*model.Activity, []model.CaseEvent, error) {
	var a *model.Activity
	if cur != nil {
		c := cloneActivity(*cur)
		a = &c
	}
	var evs []model.CaseEvent
	emit := func(t model.CaseEventType, from model.ActivityState, actor model.Actor, reason, actionID string) {
		a.Seq++
		snap := cloneActivity(*a)
		snap.ActionIDs = nil
		sev := model.SeverityHigh
		if a.State == model.ActivityEscalated {
			sev = model.SeverityCritical
		}
		evs = append(evs, model.CaseEvent{SchemaVersion: model.SchemaVersion, ID: EventID(a.ID, a.Seq), Type: t,
			CaseID: a.ID, AccountID: a.AccountID, Seq: a.Seq, From: model.State(from), To: model.State(a.State),
			Actor: actor, At: in.At, Reason: reason, ActionID: actionID,
			Case: model.Case{SchemaVersion: model.SchemaVersion, ID: a.ID, AccountID: a.AccountID, AccountName: a.AccountName,
				OUPath: a.OUPath, Tags: maps.Clone(a.Tags), Management: a.Management, Severity: sev,
				OpenedAt: a.OpenedAt, UpdatedAt: in.At, Keys: []model.KeyDetail{}},
			Activity: &snap})
	}
	switch {
	case in.Report != nil:
		rep := *in.Report
		if rep.AccountID == "" || rep.Item.EventID == "" {
			return nil, nil, model.Errorf(model.CodeInvalid, "activity report %q without account or event id", rep.ID)
		}
		if a != nil && slices.ContainsFunc(a.Items, func(it model.ActivityItem) bool { return it.EventID == rep.Item.EventID }) {
			return nil, nil, nil // redelivery
		}
		if a != nil && a.Open() && in.At.Sub(a.OpenedAt) < ActivityWindow {
			if len(a.Items) < maxActivityItems {
				a.Items = append(a.Items, rep.Item)
			}
			refreshAccount(a, rep)
			emit(model.EventActivityAdded, a.State, model.System, "more root activity: "+describeItem(rep.Item), "")
			return a, evs, nil
		}
		n := 1
		var ids []string
		if a != nil {
			n, ids = a.Number+1, a.ActionIDs
		}
		within := in.AnswerWithin
		if within <= 0 {
			within = DefaultActivityAnswerWithin
		}
		prev := a
		a = &model.Activity{ID: ActivityID(rep.AccountID, n, in.At), Number: n, AccountID: rep.AccountID,
			State: model.ActivityAsked, Items: []model.ActivityItem{rep.Item}, OpenedAt: in.At,
			AnswerBy: in.At.Add(within), RootCaseID: in.RootCaseID, ActionIDs: ids}
		if prev != nil { // what the detector did not know this time (name, OU, owner tag) is kept
			a.AccountName, a.OUPath, a.Tags, a.Management = prev.AccountName, prev.OUPath, prev.Tags, prev.Management
		}
		refreshAccount(a, rep)
		emit(model.EventActivityAsked, "", model.System, "root activity: "+describeItem(rep.Item), "")
		return a, evs, nil
	case in.Action != nil:
		act := *in.Action
		if a == nil {
			return nil, nil, model.Errorf(model.CodeNotFound, "action %s: account %s has no root activity question", act.ID, act.AccountID)
		}
		if slices.Contains(a.ActionIDs, act.ID) {
			return nil, nil, nil
		}
		limit := in.MaxActionIDs
		if limit <= 0 {
			limit = DefaultMaxActionIDs
		}
		a.ActionIDs = append(a.ActionIDs, act.ID)
		if len(a.ActionIDs) > limit {
			a.ActionIDs = slices.Clone(a.ActionIDs[len(a.ActionIDs)-limit:])
		}
		from := a.State
		who := act.Actor.String()
		switch {
		case act.CaseID != a.ID:
			emit(model.EventRefused, from, act.Actor, fmt.Sprintf("stale answer: %s is for question %s, the current one is %s", act.Kind, orDash(act.CaseID), a.ID), act.ID)
		case !a.Open():
			emit(model.EventRefused, from, act.Actor, fmt.Sprintf("question %s is already %s; %s by %s not recorded", a.ID, a.State, act.Kind, who), act.ID)
		case act.Kind == model.ActionActivityConfirm && strings.TrimSpace(act.Reason) == "":
			emit(model.EventRefused, from, act.Actor, "a confirmation needs a reason", act.ID)
		case act.Kind == model.ActionActivityConfirm:
			at, by := in.At, act.Actor
			a.State, a.AnsweredAt, a.By, a.Reason = model.ActivityConfirmed, &at, &by, strings.TrimSpace(act.Reason)
			emit(model.EventActivityConfirmed, from, act.Actor, "confirmed by "+who+": "+a.Reason, act.ID)
		case act.Kind == model.ActionActivityDeny:
			at, by := in.At, act.Actor
			a.State, a.AnsweredAt, a.By, a.Reason = model.ActivityEscalated, &at, &by, strings.TrimSpace(act.Reason)
			emit(model.EventActivityEscalated, from, act.Actor, who+" does not recognise this root activity: critical", act.ID)
		default:
			emit(model.EventRefused, from, act.Actor, fmt.Sprintf("unknown answer %q", act.Kind), act.ID)
		}
		return a, evs, nil
	case in.Expire:
		if a == nil || !a.Open() || in.At.Before(a.AnswerBy) {
			return nil, nil, nil
		}
		at, by := in.At, model.System
		a.State, a.AnsweredAt, a.By = model.ActivityEscalated, &at, &by
		a.Reason = fmt.Sprintf("no answer within %s", a.AnswerBy.Sub(a.OpenedAt).Round(time.Second))
		emit(model.EventActivityEscalated, model.ActivityAsked, model.System, a.Reason+": critical", "")
		return a, evs, nil
	}
	return nil, nil, model.Errorf(model.CodeInvalid, "empty activity input")
}

// ActivityID is the id of an account's n-th question: "<account>-a<n>-<opened, base 36>".
func ActivityID(account string, n int, opened time.Time) string {
	return fmt.Sprintf("%s-a%d-%s", account, n, strconv.FormatInt(opened.Unix(), 36))
}

func refreshAccount(a *model.Activity, rep model.ActivityReport) {
	if rep.AccountName != "" {
		a.AccountName = rep.AccountName
	}
	if rep.OUPath != "" {
		a.OUPath = rep.OUPath
	}
	if rep.Tags != nil {
		a.Tags = maps.Clone(rep.Tags)
	}
	a.Management = a.Management || rep.Management
}

// describeItem is one line about an item for the audit log (plain text; renderers escape).
func describeItem(it model.ActivityItem) string {
	s := string(it.Kind) + " (" + it.EventName
	if it.SourceIP != "" {
		s += " from " + it.SourceIP
	}
	if it.MFAUsed != "" {
		s += ", MFA " + it.MFAUsed
	}
	if it.Failures > 0 {
		s += fmt.Sprintf(", %d failures this hour", it.Failures)
	}
	return s + ")"
}

func cloneActivity(a model.Activity) model.Activity {
	a.Items = slices.Clone(a.Items)
	a.Tags = maps.Clone(a.Tags)
	a.ActionIDs = slices.Clone(a.ActionIDs)
	a.AnsweredAt = clonePtr(a.AnsweredAt)
	a.By = clonePtr(a.By)
	return a
}

// activityRecord is the value under "activity.<account>" in rw_sched.
type activityRecord struct {
	model.Activity
	Outbox []model.CaseEvent `json:"outbox,omitempty"`
}

// activityMetrics count questions by outcome and time to an answer.
type activityMetrics struct {
	questions *prometheus.CounterVec
	answer    *prometheus.HistogramVec
}

func newActivityMetrics(reg prometheus.Registerer) (activityMetrics, error) {
	m := activityMetrics{
		questions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rootwarden_activity_questions_total",
			Help: "Root activity questions by outcome: asked, confirmed, denied, expired (no answer in time)."}, []string{"outcome"}),
		answer: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rootwarden_activity_answer_seconds",
			Help:    "Time from a root activity question to its answer (confirmed or denied).",
			Buckets: []float64{30, 60, 120, 300, 600, 900, 1800, 3600}}, []string{"outcome"}),
	}
	for _, o := range []string{"asked", "confirmed", "denied", "expired"} {
		m.questions.WithLabelValues(o)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.questions, m.answer} {
			if err := reg.Register(c); err != nil {
				return m, fmt.Errorf("remediator: register activity metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m activityMetrics) observe(ev model.CaseEvent) {
	a := ev.Activity
	if a == nil || m.questions == nil {
		return
	}
	outcome := ""
	switch ev.Type {
	case model.EventActivityAsked:
		outcome = "asked"
	case model.EventActivityConfirmed:
		outcome = "confirmed"
	case model.EventActivityEscalated:
		outcome = "denied"
		if ev.Actor.Kind == model.ActorSystem {
			outcome = "expired"
		}
	}
	if outcome == "" {
		return
	}
	m.questions.WithLabelValues(outcome).Inc()
	if outcome == "confirmed" || outcome == "denied" {
		m.answer.WithLabelValues(outcome).Observe(ev.At.Sub(a.OpenedAt).Seconds())
	}
}

func activityKey(account string) string { return activityKeyPrefix + account }

func (r *Remediator) loadActivity(ctx context.Context, account string) (*activityRecord, uint64, error) {
	e, err := r.b.Sched.Get(ctx, activityKey(account))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, model.Wrap(model.CodeTransient, err, "read root activity question of %s", account)
	}
	var rec activityRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return nil, 0, model.Wrap(model.CodeInternal, err, "decode root activity question of %s", account)
	}
	return &rec, e.Revision(), nil
}

// putActivity writes with compare-and-set (Create when rev is 0); conflict reports a lost race.
func (r *Remediator) putActivity(ctx context.Context, account string, rec *activityRecord, rev uint64) (conflict bool, err error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return false, model.Wrap(model.CodeInternal, err, "encode root activity question of %s", account)
	}
	if rev == 0 {
		_, err = r.b.Sched.Create(ctx, activityKey(account), data)
	} else {
		_, err = r.b.Sched.Update(ctx, activityKey(account), data, rev)
	}
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch), rev == 0 && errors.Is(err, jetstream.ErrKeyExists):
		return true, nil
	}
	return false, model.Wrap(model.CodeTransient, err, "save root activity question of %s", account)
}

// applyActivity decides and stores one input for the account's question, then
// publishes its events (outbox). It reports whether anything changed.
func (r *Remediator) applyActivity(ctx context.Context, account string, input func(now time.Time) ActivityInput) (bool, error) {
	defer r.applying.lock(activityKey(account))()
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		rec, rev, err := r.loadActivity(ctx, account)
		if err != nil {
			return false, err
		}
		in := input(r.cfg.Now())
		in.AnswerWithin, in.MaxActionIDs = r.cfg.ActivityAnswerWithin, r.cfg.MaxActionIDs
		var cur *model.Activity
		if rec != nil {
			cur = &rec.Activity
		}
		next, evs, err := ApplyActivity(cur, in)
		if err != nil {
			return false, err
		}
		if next == nil {
			if rec != nil && len(rec.Outbox) > 0 {
				return false, r.flushActivity(ctx, account, rec, rev)
			}
			return false, nil
		}
		nrec := &activityRecord{Activity: *next}
		if rec != nil {
			nrec.Outbox = slices.Clone(rec.Outbox)
		}
		nrec.Outbox = append(nrec.Outbox, evs...)
		if next.Open() {
			// The escalation time goes into the due-time index before the question.
			if err := r.scheduleActivity(ctx, next, in.At); err != nil {
				return false, err
			}
		}
		conflict, err := r.putActivity(ctx, account, nrec, rev)
		if err != nil {
			return false, err
		}
		if conflict {
			continue
		}
		for _, ev := range evs {
			r.transitions.WithLabelValues(string(ev.Type), string(ev.To)).Inc()
			r.act.observe(ev)
			r.log.Info("root activity event", "account", account, "question", ev.CaseID, "event", ev.Type,
				"from", ev.From, "to", ev.To, "actor", ev.Actor.String(), "reason", ev.Reason)
		}
		_, nrev, _ := r.activityRev(ctx, account)
		return true, r.flushActivity(ctx, account, nrec, nrev)
	}
	return false, model.Errorf(model.CodeConflict, "root activity question of %s kept changing", account)
}

func (r *Remediator) activityRev(ctx context.Context, account string) (*activityRecord, uint64, error) {
	return r.loadActivity(ctx, account)
}

// flushActivity publishes the outbox (Nats-Msg-Id = event id) and empties it with
// compare-and-set; a failure leaves it for the next touch of the question.
func (r *Remediator) flushActivity(ctx context.Context, account string, rec *activityRecord, rev uint64) error {
	if len(rec.Outbox) == 0 {
		return nil
	}
	done := map[string]bool{}
	for _, ev := range rec.Outbox {
		if _, err := r.b.PublishJSON(ctx, bus.CaseSubject(ev.AccountID), ev.ID, ev); err != nil {
			return model.Wrap(model.CodeTransient, err, "publish root activity event %s", ev.ID)
		}
		done[ev.ID] = true
	}
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		if rec == nil {
			return nil
		}
		n := len(rec.Outbox)
		rec.Outbox = slices.DeleteFunc(rec.Outbox, func(ev model.CaseEvent) bool { return done[ev.ID] })
		if len(rec.Outbox) == n {
			return nil
		}
		conflict, err := r.putActivity(ctx, account, rec, rev)
		if err != nil || !conflict {
			return err
		}
		var lerr error
		if rec, rev, lerr = r.loadActivity(ctx, account); lerr != nil {
			return lerr
		}
	}
	return nil
}

// scheduleActivity puts the due-time index entry of the question's AnswerBy (the
// minute after it, so the entry never fires before the deadline).
func (r *Remediator) scheduleActivity(ctx context.Context, a *model.Activity, now time.Time) error {
	slot := max(slotOf(a.AnswerBy)+1, slotOf(now)+1)
	if _, err := r.b.Due.Put(ctx, dueKey(slot, dueActivity, a.AccountID), []byte(a.ID)); err != nil {
		return model.Wrap(model.CodeTransient, err, "schedule the answer deadline of %s", a.ID)
	}
	return nil
}

// onActivityReport handles a root activity report from RW_FINDINGS.
func (r *Remediator) onActivityReport(ctx context.Context, m jetstream.Msg) {
	var rep model.ActivityReport
	if err := json.Unmarshal(m.Data(), &rep); err != nil || rep.AccountID == "" || m.Subject() != bus.ActivitySubject(rep.AccountID) {
		r.log.Warn("malformed root activity report dropped", "subject", m.Subject(), "err", errOr(err, "no account id, or not the subject's account"))
		_ = m.TermWithReason("malformed activity report")
		return
	}
	stop := r.heartbeat(m)
	root := ""
	if rec, _, err := r.load(ctx, rep.AccountID); err == nil && rec != nil && rec.State.Active() {
		root = rec.ID
	}
	asked := ""
	_, err := r.applyActivity(ctx, rep.AccountID, func(now time.Time) ActivityInput {
		return ActivityInput{At: now, Report: &rep, RootCaseID: root}
	})
	if err == nil && root != "" {
		if rec, _, lerr := r.loadActivity(ctx, rep.AccountID); lerr == nil && rec != nil && rec.RootCaseID == root {
			asked = rec.ID
		}
	}
	if asked != "" {
		// The case links back to the question (an updated event in its thread).
		_, err = r.apply(ctx, rep.AccountID, func(now time.Time) Input { return Input{At: now, ActivityAsked: asked} })
	}
	stop()
	r.settleActivity(m, rep.AccountID, "activity report "+rep.ID, err)
}

// onActivityAction applies an answer (activity_confirm, activity_deny).
func (r *Remediator) onActivityAction(ctx context.Context, m jetstream.Msg, a model.Action) {
	stop := r.heartbeat(m)
	_, err := r.applyActivity(ctx, a.AccountID, func(now time.Time) ActivityInput { return ActivityInput{At: now, Action: &a} })
	stop()
	r.settleActivity(m, a.AccountID, "action "+a.ID, err)
}

func (r *Remediator) settleActivity(m jetstream.Msg, account, what string, err error) {
	if err == nil {
		_ = m.Ack()
		return
	}
	switch model.ErrorCode(err) {
	case model.CodeInvalid, model.CodeNotFound, model.CodeUnauthorized:
		r.log.Warn("message refused", "account", account, "message", what, "err", err)
		_ = m.TermWithReason(truncate(err.Error(), 200))
		return
	}
	var delivered uint64 = 1
	if md, merr := m.Metadata(); merr == nil {
		delivered = md.NumDelivered
	}
	r.log.Warn("root activity message will be retried", "account", account, "message", what, "delivered", delivered, "err", err)
	_ = m.NakWithDelay(retryDelay(r.cfg.RetryDelay, delivered))
}

// isActivityAction reports whether an action answers a root activity question.
func isActivityAction(k model.ActionKind) bool {
	return k == model.ActionActivityConfirm || k == model.ActionActivityDeny
}

// expireActivity is the timer of the questions' deadlines: it lists the due-time
// index entries of kind activity that have come (full: every question's record, to
// put entries a crash left unwritten), escalates what is overdue, and puts the entry
// again for a question still open.
func (r *Remediator) expireActivity(ctx context.Context, full bool) {
	now := r.cfg.Now()
	cur := slotOf(now)
	accounts := map[string][]string{}
	keys, err := r.dueKeys(ctx, "*."+dueActivity+".*")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		r.log.Warn("list root activity deadlines", "err", err)
		return
	}
	for _, k := range keys {
		slot, _, account, ok := parseDueKey(k)
		if ok && slot <= cur {
			accounts[account] = append(accounts[account], k)
		}
	}
	if full {
		if lister, err := r.b.Sched.ListKeysFiltered(ctx, activityKeyPrefix+"*"); err == nil {
			for k := range lister.Keys() {
				if a := strings.TrimPrefix(k, activityKeyPrefix); accounts[a] == nil {
					accounts[a] = []string{}
				}
			}
		}
	}
	for account, fired := range accounts {
		if _, err := r.applyActivity(ctx, account, func(now time.Time) ActivityInput { return ActivityInput{At: now, Expire: true} }); err != nil {
			r.log.Warn("root activity deadline: will retry", "account", account, "err", err)
			continue
		}
		rec, _, err := r.loadActivity(ctx, account)
		if err != nil {
			continue
		}
		if rec != nil && rec.Open() {
			if err := r.scheduleActivity(ctx, &rec.Activity, now); err != nil {
				continue
			}
			fired = slices.DeleteFunc(fired, func(k string) bool {
				s, _, _, _ := parseDueKey(k)
				return s == max(slotOf(rec.AnswerBy)+1, cur+1)
			})
		}
		if err := r.purgeDue(ctx, fired...); err != nil {
			r.log.Warn("remove fired root activity deadline", "account", account, "err", err)
		}
	}
}

const activitySubjectSuffix = ".activity"

// activityTimer runs expireActivity every ExpiryScanInterval, a full pass at start-up
// and every fullPassEvery.
func (r *Remediator) activityTimer(ctx context.Context) {
	r.expireActivity(ctx, true)
	last := r.cfg.Now()
	r.every(ctx, r.cfg.ExpiryScanInterval, func() {
		full := r.cfg.Now().Sub(last) >= fullPassEvery
		if full {
			last = r.cfg.Now()
		}
		r.expireActivity(ctx, full)
	})
}
