package remediator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

func report(id string, kind model.ActivityKind, at time.Time) model.ActivityReport {
	return model.ActivityReport{SchemaVersion: 1, ID: "activity-" + id, AccountID: acct, AccountName: "prod",
		Tags: map[string]string{"owner": "o@example.com"},
		Item: model.ActivityItem{Kind: kind, EventID: id, EventName: "ConsoleLogin", Source: "signin.amazonaws.com", At: at, SourceIP: "198.51.100.7", MFAUsed: "No"}}
}

func TestActivityQuestionDecisions(t *testing.T) {
	r1 := report("e1", model.ActivityConsoleLogin, t0)
	q, evs, err := ApplyActivity(nil, ActivityInput{At: t0, Report: &r1, RootCaseID: "222222222222-1-x"})
	if err != nil || q == nil || len(evs) != 1 || evs[0].Type != model.EventActivityAsked || !q.Open() ||
		!q.AnswerBy.Equal(t0.Add(DefaultActivityAnswerWithin)) || q.RootCaseID == "" {
		t.Fatalf("new question: %+v %+v %v", q, evs, err)
	}
	t.Run("a redelivered report changes nothing", func(t *testing.T) {
		if n, _, _ := ApplyActivity(q, ActivityInput{At: t0.Add(time.Second), Report: &r1}); n != nil {
			t.Fatal("changed")
		}
	})
	t.Run("activity within the window joins the open question", func(t *testing.T) {
		r2 := report("e2", model.ActivityPasswordChanged, t0.Add(2*time.Minute))
		n, evs, _ := ApplyActivity(q, ActivityInput{At: t0.Add(2 * time.Minute), Report: &r2})
		if n == nil || n.ID != q.ID || len(n.Items) != 2 || evs[0].Type != model.EventActivityAdded {
			t.Fatalf("%+v %+v", n, evs)
		}
	})
	t.Run("activity after the window asks again", func(t *testing.T) {
		r2 := report("e3", model.ActivityConsoleLogin, t0.Add(ActivityWindow))
		n, _, _ := ApplyActivity(q, ActivityInput{At: t0.Add(ActivityWindow), Report: &r2})
		if n == nil || n.ID == q.ID || n.Number != 2 || n.Tags["owner"] == "" {
			t.Fatalf("%+v", n)
		}
	})
	yes := model.Action{ID: "a1", Kind: model.ActionActivityConfirm, AccountID: acct, CaseID: q.ID,
		Actor: model.Actor{Kind: model.ActorSlack, ID: "U0OWNER", Name: "olivia"}}
	t.Run("yes without a reason is refused", func(t *testing.T) {
		n, evs, _ := ApplyActivity(q, ActivityInput{At: t0, Action: &yes})
		if n == nil || n.State != model.ActivityAsked || evs[0].Type != model.EventRefused {
			t.Fatalf("%+v %+v", n, evs)
		}
	})
	t.Run("yes with a reason confirms, with who and why", func(t *testing.T) {
		y := yes
		y.Reason = "billing"
		n, evs, _ := ApplyActivity(q, ActivityInput{At: t0.Add(time.Minute), Action: &y})
		if n.State != model.ActivityConfirmed || n.By.ID != "U0OWNER" || n.Reason != "billing" ||
			evs[0].Type != model.EventActivityConfirmed || !strings.Contains(evs[0].Reason, "olivia") {
			t.Fatalf("%+v %+v", n, evs)
		}
		late := model.Action{ID: "a2", Kind: model.ActionActivityDeny, AccountID: acct, CaseID: q.ID, Actor: y.Actor}
		m, evs, _ := ApplyActivity(n, ActivityInput{At: t0.Add(2 * time.Minute), Action: &late})
		if m.State != model.ActivityConfirmed || evs[0].Type != model.EventRefused {
			t.Fatalf("a later No undid the answer: %+v", m)
		}
	})
	t.Run("an answer for another question is refused", func(t *testing.T) {
		no := model.Action{ID: "a3", Kind: model.ActionActivityDeny, AccountID: acct, CaseID: "222222222222-a9-zz", Actor: yes.Actor}
		n, evs, _ := ApplyActivity(q, ActivityInput{At: t0, Action: &no})
		if n.State != model.ActivityAsked || evs[0].Type != model.EventRefused {
			t.Fatalf("%+v", n)
		}
	})
	t.Run("no answer by the deadline escalates; not before", func(t *testing.T) {
		if n, _, _ := ApplyActivity(q, ActivityInput{At: q.AnswerBy.Add(-time.Second), Expire: true}); n != nil {
			t.Fatal("escalated early")
		}
		n, evs, _ := ApplyActivity(q, ActivityInput{At: q.AnswerBy, Expire: true})
		if n.State != model.ActivityEscalated || n.By.Kind != model.ActorSystem || evs[0].Case.Severity != model.SeverityCritical {
			t.Fatalf("%+v %+v", n, evs)
		}
	})
}

// The deadline lives in the due-time index: a question asked by one remediator is
// escalated by the next one after a restart, once.
func TestActivityDeadlineSurvivesRestart(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	fast := func(c *Config) { c.ExpiryScanInterval = 20 * time.Millisecond }
	ctx, stop := context.WithCancel(context.Background())
	r1 := newRem(t, b, clk, nil, fast)
	done := make(chan error, 1)
	go func() { done <- r1.Run(ctx) }()
	rep := report("e1", model.ActivityConsoleLogin, clk.Now())
	if _, err := b.PublishJSON(ctxT(t), bus.ActivitySubject(acct), rep.ID, rep); err != nil {
		t.Fatal(err)
	}
	var id string
	testutil.Eventually(t, "question asked", func() bool {
		rec, _, _ := r1.loadActivity(context.Background(), acct)
		if rec != nil && rec.Open() && len(rec.Outbox) == 0 {
			id = rec.ID
			return true
		}
		return false
	})
	stop()
	<-done

	clk.Add(DefaultActivityAnswerWithin + 2*time.Minute)
	r2 := newRem(t, b, clk, nil, fast)
	runRem(t, r2)
	testutil.Eventually(t, "escalated by the new instance", func() bool {
		rec, _, _ := r2.loadActivity(context.Background(), acct)
		return rec != nil && rec.State == model.ActivityEscalated && len(rec.Outbox) == 0
	})
	time.Sleep(100 * time.Millisecond)
	var types []string
	for _, ev := range allEvents(t, b, acct) {
		if ev.CaseID == id {
			types = append(types, string(ev.Type))
		}
	}
	if strings.Join(types, ",") != "activity_asked,activity_escalated" {
		t.Fatalf("events %v", types)
	}
}

// Upgrades keep the past: a case record and a case event as today's release writes
// them decode with the activity fields absent, and the question's additions stay out
// of what old readers see.
func TestRecordsOfThePreviousReleaseStillDecode(t *testing.T) {
	const oldRecord = `{"schema_version":1,"id":"222222222222-1-smx4g0","number":1,"account_id":"222222222222","account_name":"prod","management":false,"org_member":true,"state":"ticketed","severity":"critical","keys":[{"slot":1,"active":true}],"found_by":"event","last_checked_at":"2026-11-27T12:00:00Z","ticket":{"system":"builtin","id":"RW-1","url":""},"opened_at":"2026-11-27T12:00:00Z","updated_at":"2026-11-27T12:00:00Z","seq":2,"outbox":[],"ticket_ops":[]}`
	const oldEvent = `{"schema_version":1,"id":"222222222222-1-smx4g0/2","type":"ticketed","case_id":"222222222222-1-smx4g0","account_id":"222222222222","seq":2,"from":"open","to":"ticketed","actor":{"kind":"slack","id":"U1","name":"alice"},"at":"2026-11-27T12:00:00Z","reason":"remediation approved by alice (U1); opening a ticket","case":{"schema_version":1,"id":"222222222222-1-smx4g0","number":1,"account_id":"222222222222","state":"ticketed","severity":"critical","keys":[],"found_by":"event","last_checked_at":"2026-11-27T12:00:00Z","opened_at":"2026-11-27T12:00:00Z","updated_at":"2026-11-27T12:00:00Z","seq":2}}`
	var rec record
	if err := json.Unmarshal([]byte(oldRecord), &rec); err != nil || rec.State != model.StateTicketed || rec.Ticket == nil {
		t.Fatalf("old record: %+v %v", rec, err)
	}
	var ev model.CaseEvent
	if err := json.Unmarshal([]byte(oldEvent), &ev); err != nil || ev.Activity != nil || ev.Case.State != model.StateTicketed {
		t.Fatalf("old event: %+v %v", ev, err)
	}
	// Written again by this release, an event without a question has no "activity" key.
	out, _ := json.Marshal(ev)
	if strings.Contains(string(out), `"activity"`) {
		t.Fatalf("a root-key case event gained an activity field: %s", out)
	}
	// And the case still applies inputs as before.
	a := action(model.ActionConfirmDeleted, acct, rec.ID)
	d, err := Apply(&rec.Case, Input{At: t0.Add(time.Hour), Action: &a})
	if err != nil || d.Case == nil || d.Case.State != model.StateVerifying {
		t.Fatalf("old case no longer moves: %+v %v", d.Case, err)
	}
}

func TestActivityMetricsCountOutcomesAndTimeToAnswer(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newActivityMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r1 := report("e1", model.ActivityConsoleLogin, t0)
	q, evs, _ := ApplyActivity(nil, ActivityInput{At: t0, Report: &r1})
	m.observe(evs[0])
	no := model.Action{ID: "n", Kind: model.ActionActivityDeny, AccountID: acct, CaseID: q.ID, Actor: model.Actor{Kind: model.ActorSlack, ID: "U1"}}
	_, evs, _ = ApplyActivity(q, ActivityInput{At: t0.Add(90 * time.Second), Action: &no})
	m.observe(evs[0])
	_, evs, _ = ApplyActivity(q, ActivityInput{At: q.AnswerBy, Expire: true})
	m.observe(evs[0])
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			label := mt.GetLabel()[0].GetValue()
			switch mf.GetName() {
			case "rootwarden_activity_questions_total":
				got[label] = mt.GetCounter().GetValue()
			case "rootwarden_activity_answer_seconds":
				got["answer/"+label] = mt.GetHistogram().GetSampleSum()
			}
		}
	}
	want := map[string]float64{"asked": 1, "denied": 1, "expired": 1, "confirmed": 0, "answer/denied": 90}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
}

// A root credential case and a question of the same account name each other.
func TestActivityQuestionAndRootCaseLinkEachOther(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	r := newRem(t, b, clk, nil)
	runRem(t, r)
	if err := r.HandleFinding(ctxT(t), observation(acct, true, model.SourceSweep, clk.Now())); err != nil {
		t.Fatal(err)
	}
	c := waitState(t, r, acct, model.StateOpen)
	rep := report("e1", model.ActivityConsoleLogin, clk.Now())
	if _, err := b.PublishJSON(ctxT(t), bus.ActivitySubject(acct), rep.ID, rep); err != nil {
		t.Fatal(err)
	}
	var q *activityRecord
	testutil.Eventually(t, "question linked to the case, and the case to the question", func() bool {
		q, _, _ = r.loadActivity(context.Background(), acct)
		cur := getCase(t, r, acct)
		return q != nil && q.RootCaseID == c.ID && cur.ActivityID == q.ID && len(cur.Outbox) == 0
	})
	var said bool
	for _, ev := range allEvents(t, b, acct) {
		if ev.CaseID == c.ID && ev.Type == model.EventUpdated && strings.Contains(ev.Reason, q.ID) {
			said = true
		}
	}
	if !said {
		t.Fatal("the case's history does not name the question")
	}
}

// Two replicas both run the deadline timer: the question escalates once.
func TestActivityDeadlineFiresOnceAcrossReplicas(t *testing.T) {
	b := bustest.New(t)
	clk := newClock()
	fast := func(c *Config) { c.ExpiryScanInterval = 10 * time.Millisecond }
	r1, r2 := newRem(t, b, clk, nil, fast), newRem(t, b, clk, nil, fast)
	runRem(t, r1)
	runRem(t, r2)
	rep := report("e1", model.ActivityConsoleLogin, clk.Now())
	if _, err := b.PublishJSON(ctxT(t), bus.ActivitySubject(acct), rep.ID, rep); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "question asked", func() bool {
		rec, _, _ := r1.loadActivity(context.Background(), acct)
		return rec != nil && rec.Open() && len(rec.Outbox) == 0
	})
	clk.Add(DefaultActivityAnswerWithin + 2*time.Minute)
	testutil.Eventually(t, "escalated", func() bool {
		rec, _, _ := r2.loadActivity(context.Background(), acct)
		return rec != nil && rec.State == model.ActivityEscalated && len(rec.Outbox) == 0
	})
	time.Sleep(200 * time.Millisecond) // both timers have run many times meanwhile
	evs := allEvents(t, b, acct)
	assertEventsUnique(t, evs)
	if got := strings.Join(eventTypes(evs), ","); got != "activity_asked,activity_escalated" {
		t.Fatalf("events %s", got)
	}
}
