package remediator

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/testutil"
	"github.com/rootwarden/rootwarden/remediator/tracker"
)

const (
	acct   = "222222222222"
	mgmt   = "111111111111"
	testTk = "s3cret-api-token"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// newClock is a test clock standing at t0.
func newClock() *testutil.Clock { return testutil.NewClock(t0) }

// responder answers the detector's on-demand check over real NATS request/reply.
type responder struct {
	mu      sync.Mutex
	present map[string]bool
	calls   atomic.Int32
	clock   *testutil.Clock
	fn      func(account string) bool // when set, decides presence (e.g. from the AWS simulator)
}

func startResponder(t *testing.T, b *bus.Bus, clk *testutil.Clock) *responder {
	t.Helper()
	r := &responder{present: map[string]bool{}, clock: clk}
	sub, err := b.NC.QueueSubscribe(bus.SubjectCheck, bus.QueueCheck, func(m *nats.Msg) {
		var req model.CheckRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			return
		}
		r.calls.Add(1)
		r.mu.Lock()
		present := r.present[req.AccountID]
		if r.fn != nil {
			present = r.fn(req.AccountID)
		}
		r.mu.Unlock()
		o := observation(req.AccountID, present, model.SourceCheck, clk.Now())
		o.RequestID = req.RequestID
		data, _ := json.Marshal(o)
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return r
}

func (r *responder) set(account string, present bool) {
	r.mu.Lock()
	r.present[account] = present
	r.mu.Unlock()
}

var obsSeq atomic.Int64

func observation(account string, present bool, src model.Source, at time.Time) model.Observation {
	o := model.Observation{SchemaVersion: 1, ID: fmt.Sprintf("obs-%d", obsSeq.Add(1)), AccountID: account,
		AccountName: "prod", OrgMember: account != mgmt, Management: account == mgmt, Source: src,
		ObservedAt: at, RootKeysPresent: present}
	if present {
		o.Keys = []model.KeyDetail{{Slot: 1, Active: true}}
	}
	return o
}

var actSeq atomic.Int64

func action(kind model.ActionKind, account, caseID string) model.Action {
	return model.Action{SchemaVersion: 1, ID: fmt.Sprintf("act-%d", actSeq.Add(1)), Kind: kind, AccountID: account,
		CaseID: caseID, Actor: model.Actor{Kind: model.ActorSlack, ID: "U123", Name: "alice"}, Origin: "slack"}
}

type opt func(*Config)

func newRem(t *testing.T, b *bus.Bus, clk *testutil.Clock, tr model.Tracker, opts ...opt) *Remediator {
	t.Helper()
	cfg := Config{APIToken: testTk, Now: clk.Now, RetryDelay: 50 * time.Millisecond, TicketPollInterval: time.Hour,
		ExpiryScanInterval: time.Hour, CheckTimeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := New(cfg, nil, b, bus.Checker{NC: b.NC}, tr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runRem(t *testing.T, r *Remediator) {
	t.Helper()
	testutil.Run(t, 10*time.Second, r.Run)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func getCase(t *testing.T, r *Remediator, account string) *record {
	t.Helper()
	rec, _, err := r.load(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func waitState(t *testing.T, r *Remediator, account string, want model.State) *record {
	t.Helper()
	var rec *record
	testutil.Eventually(t, "state "+string(want), func() bool {
		rec = getCase(t, r, account)
		return rec != nil && rec.State == want && len(rec.Outbox) == 0
	})
	return rec
}

// allEvents reads every case event of an account from RW_CASES (all cases), without
// dropping repeats: tests assert that there are none.
func allEvents(t *testing.T, b *bus.Bus, account string) []model.CaseEvent {
	t.Helper()
	ctx := ctxT(t)
	s, err := b.JS.Stream(ctx, bus.StreamCases)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.CaseSubject(account)}})
	if err != nil {
		t.Fatal(err)
	}
	n := cons.CachedInfo().NumPending
	var out []model.CaseEvent
	for uint64(len(out)) < n {
		batch, err := cons.Fetch(int(n)-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var ev model.CaseEvent
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		if got == 0 {
			t.Fatalf("audit log: read %d of %d events", len(out), n)
		}
	}
	return out
}

func eventTypes(evs []model.CaseEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Type))
	}
	return out
}

// assertEventsUnique checks each event id appears once and seqs of a case increase by one.
func assertEventsUnique(t *testing.T, evs []model.CaseEvent) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int{}
	for _, e := range evs {
		if seen[e.ID] {
			t.Errorf("event %s published twice", e.ID)
		}
		seen[e.ID] = true
		if e.Seq != last[e.CaseID]+1 {
			t.Errorf("case %s: event seq %d after %d", e.CaseID, e.Seq, last[e.CaseID])
		}
		last[e.CaseID] = e.Seq
	}
}

func builtinTickets(t *testing.T, b *bus.Bus) []tracker.BuiltinTicket {
	t.Helper()
	ts, err := tracker.NewBuiltin(b).List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// caseID is the id of the account's n-th case when it was opened at t0 (the tests'
// clock start).
func caseID(account string, n int) string { return CaseID(account, n, t0) }
