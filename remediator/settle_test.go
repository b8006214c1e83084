package remediator

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// settledMsg is a jetstream.Msg that records how it was settled.
type settledMsg struct {
	jetstream.Msg
	delivered uint64
	how       string
	delay     time.Duration
	reason    string
}

func (m *settledMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.delivered}, nil
}
func (m *settledMsg) Ack() error { m.how = "ack"; return nil }
func (m *settledMsg) NakWithDelay(d time.Duration) error {
	m.how, m.delay = "nak", d
	return nil
}
func (m *settledMsg) TermWithReason(r string) error { m.how, m.reason = "term", r; return nil }

func TestTransientFailuresBackOffAndTheLastDeliveryIsNotDroppedSilently(t *testing.T) {
	b := bustest.New(t)
	r := newRem(t, b, newClock(), nil)
	ctx := ctxT(t)
	if err := r.HandleFinding(ctx, observation(acct, true, model.SourceSweep, t0)); err != nil {
		t.Fatal(err)
	}
	cause := model.Errorf(model.CodeTransient, "save case of %s: nats: timeout", acct)

	for _, tc := range []struct {
		delivered uint64
		want      time.Duration
	}{{1, 50 * time.Millisecond}, {2, 100 * time.Millisecond}, {4, 400 * time.Millisecond}, {19, maxRetryDelay}} {
		m := &settledMsg{delivered: tc.delivered}
		r.settle(ctx, m, acct, "action act-x", cause)
		if m.how != "nak" || m.delay != tc.want {
			t.Errorf("delivery %d: %s after %v, want nak after %v", tc.delivered, m.how, m.delay, tc.want)
		}
	}

	// The last delivery JetStream allows: a Nak would drop the action without a trace.
	m := &settledMsg{delivered: maxDeliver}
	r.settle(ctx, m, acct, "action act-x", cause)
	if m.how != "term" || !strings.Contains(m.reason, "gave up") {
		t.Fatalf("last delivery settled with %s %q, want term saying it gave up", m.how, m.reason)
	}
	evs := allEvents(t, b, acct)
	last := evs[len(evs)-1]
	if last.Type != model.EventRefused || !strings.Contains(last.Reason, "act-x") || !strings.Contains(last.Reason, "gave up") {
		t.Fatalf("no case event says the action was given up: %v %q", last.Type, last.Reason)
	}
}
