package remediator

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// Reading a case's history must leave nothing behind on the server: each read used to
// create an ordered consumer that lingered for 5 minutes, so about 1,000 reads within
// 5 minutes reached the stream's consumer limit and every further audit-log read
// answered 503 (issue 19 item 9). Here the limit is 100 and 1,000 reads must all work.
func TestCaseHistoryReadsLeaveNoConsumers(t *testing.T) {
	b := bustest.New(t)
	ctx := ctxT(t)
	s, err := b.JS.Stream(ctx, bus.StreamCases)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxConsumers = 100
	if _, err := b.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	r := newRem(t, b, clk, nil)
	for _, present := range []bool{true, false, true} {
		clk.Add(time.Minute)
		if err := r.HandleFinding(ctx, observation(acct, present, model.SourceEvent, clk.Now())); err != nil {
			t.Fatal(err)
		}
	}
	r.work(ctx, acct)
	id := CaseID(acct, 2, t0.Add(3*time.Minute))
	h := r.APIHandler()
	for i := range 1000 {
		code, body := apiGetT(t, h, "/api/v1/cases/"+id, testTk)
		if code != http.StatusOK {
			t.Fatalf("read %d of the case's history: %d %s", i+1, code, body)
		}
		if i == 0 {
			var v CaseView
			if err := json.Unmarshal(body, &v); err != nil || len(v.History) != 1 || v.History[0].Type != model.EventOpened {
				t.Fatalf("history: %v %s", err, body)
			}
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left on %s after 1,000 reads", info.State.Consumers, bus.StreamCases)
	}
}
