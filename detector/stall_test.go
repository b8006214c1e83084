package detector_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/awssim"
	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

// stallingJS is the real JetStream client, except that some asynchronous publications
// give up as the client does when it already holds its maximum of unacknowledged
// ones and the server is slow to answer (seen with 10,000 accounts on a busy host).
type stallingJS struct {
	jetstream.JetStream
	calls atomic.Int64
}

func (s *stallingJS) PublishAsync(subject string, data []byte, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if s.calls.Add(1)%4 == 0 {
		return nil, jetstream.ErrTooManyStalledMsgs
	}
	return s.JetStream.PublishAsync(subject, data, opts...)
}

func (s *stallingJS) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if s.calls.Add(1)%4 == 0 {
		return nil, jetstream.ErrTooManyStalledMsgs
	}
	return s.JetStream.PublishMsgAsync(m, opts...)
}

// A client stalled by unacknowledged publications slows a sweep down; it does not
// fail it (which left most accounts unchecked until a retry a minute later).
func TestASweepWaitsOutAStalledPublisher(t *testing.T) {
	const members = 30
	w := newWorld(t, members, true, awssim.Options{})
	w.sim.CreateRootKey(member(7), w.clock.Now().Add(-time.Hour))
	b := bustest.New(t)
	b.JS = &stallingJS{JetStream: b.JS}
	cfg := w.config("OrganizationAccountAccessRole")
	cfg.ScanInterval = 24 * time.Hour
	d := newDetector(t, w, cfg, b)
	runDetector(t, d)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(w.logs.String())
		}
	})
	got := perAccount(t, waitFindings(t, b, members+1, bySource(model.SourceSweep)))
	if len(got) != members+1 {
		t.Errorf("%d accounts checked by the sweep, want %d (members and the management account)", len(got), members+1)
	}
	if !got[member(7)].RootKeysPresent {
		t.Errorf("the member's root key was not seen")
	}
	if logs := w.logs.String(); strings.Contains(logs, "sweep enumeration failed") {
		t.Errorf("the sweep failed on a stalled publisher")
	}
}
