package remediator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
)

// BenchmarkClickToResolved is the remediator's share of "I deleted the keys" →
// resolved: a confirm-deleted action on RW_ACTIONS of a ticketed case until its
// resolved case event is on RW_CASES, the check answered at once over NATS (no AWS),
// the store fsyncing every write as `run`'s does (a data directory). It reports p50
// and p99 beside ns/op; the floor is the store's own write (one KV update, measured
// in the same run).
//
//	go test -run '^$' -bench ClickToResolved -benchtime 200x ./remediator
func BenchmarkClickToResolved(b *testing.B) {
	bb := bustest.New(b)
	clk := newClock()
	ctx := context.Background()
	sub, err := bb.NC.QueueSubscribe(bus.SubjectCheck, bus.QueueCheck, func(m *nats.Msg) {
		var req model.CheckRequest
		if json.Unmarshal(m.Data, &req) != nil {
			return
		}
		o := observation(req.AccountID, false, model.SourceCheck, clk.Now())
		o.RequestID = req.RequestID
		data, _ := json.Marshal(o)
		_ = m.Respond(data)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	resolved := make(chan string, 16)
	evs, err := bb.NC.Subscribe(bus.SubjectCases+">", func(m *nats.Msg) {
		var ev model.CaseEvent
		if json.Unmarshal(m.Data, &ev) == nil && ev.Type == model.EventResolved {
			resolved <- ev.AccountID
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = evs.Unsubscribe() }()
	r, err := New(Config{Now: clk.Now, TicketPollInterval: time.Hour, ExpiryScanInterval: time.Hour, CheckTimeout: 5 * time.Second},
		nil, bb, bus.Checker{NC: bb.NC}, nil)
	if err != nil {
		b.Fatal(err)
	}
	testutil.Run(b, 10*time.Second, r.Run)

	var floor, got []time.Duration
	rev, err := bb.Cases.Put(ctx, "floor", []byte(`{}`))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		account := fmt.Sprintf("5%011d", i)
		if err := r.HandleFinding(ctx, observation(account, true, model.SourceSweep, clk.Now())); err != nil {
			b.Fatal(err)
		}
		if err := r.HandleAction(ctx, action(model.ActionApprove, account, caseID(account, 1))); err != nil {
			b.Fatal(err)
		}
		r.work(ctx, account)
		if rec, _, err := r.load(ctx, account); err != nil || rec.State != model.StateTicketed {
			b.Fatalf("not ticketed: %v", err)
		}
		t0 := time.Now()
		if rev, err = bb.Cases.Update(ctx, "floor", []byte(`{}`), rev); err != nil {
			b.Fatal(err)
		}
		floor = append(floor, time.Since(t0))
		a := action(model.ActionConfirmDeleted, account, caseID(account, 1))
		b.StartTimer()
		t0 = time.Now()
		if _, err := bb.PublishJSON(ctx, bus.ActionSubject(account), a.ID, a); err != nil {
			b.Fatal(err)
		}
		for done := false; !done; {
			select {
			case acc := <-resolved:
				done = acc == account
			case <-time.After(10 * time.Second):
				b.Fatalf("%s not resolved", account)
			}
		}
		got = append(got, time.Since(t0))
		b.StopTimer()
		time.Sleep(5 * time.Millisecond) // the work's tail (ticket closing, release) ends before the next case
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(got)
	slices.Sort(floor)
	q := func(d []time.Duration, p int) float64 {
		return float64(d[min(len(d)-1, (len(d)*p+99)/100-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(q(got, 50), "p50-ms")
	b.ReportMetric(q(got, 99), "p99-ms")
	b.ReportMetric(q(floor, 50), "kv-write-p50-ms")
}
