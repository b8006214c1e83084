package remediator

// Messages that used up MaxDeliver. settle terms a message whose last delivery
// failed and records why on the case, but when the process dies during every
// delivery, nothing settles the last one and JetStream stops delivering it without a
// word. JetStream then publishes a max-deliveries advisory; the remediator listens
// for it (one replica, through a queue group), reads the message from the stream and
// applies it one last time; when that fails too, the case gets an event saying so.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
)

// maxDeliveriesAdvisory is the part of io.nats.jetstream.advisory.v1.max_deliver we read.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

func (r *Remediator) watchMaxDeliveries(ctx context.Context) (*nats.Subscription, error) {
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.*.*"
	sub, err := r.b.NC.QueueSubscribe(subject, "rootwarden-remediator-max-deliveries", func(m *nats.Msg) {
		var a maxDeliveriesAdvisory
		if json.Unmarshal(m.Data, &a) != nil {
			return
		}
		if a.Consumer != bus.ConsumerRemediatorFind && a.Consumer != bus.ConsumerRemediatorAction {
			return
		}
		r.goTracked(ctx, func() { r.lastDelivery(ctx, a) })
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to max-deliveries advisories: %w", err)
	}
	return sub, nil
}

// lastDelivery applies a message JetStream gave up on, once more.
func (r *Remediator) lastDelivery(ctx context.Context, a maxDeliveriesAdvisory) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	log := r.log.With("stream", a.Stream, "stream_seq", a.StreamSeq, "delivered", a.Deliveries)
	s, err := r.b.JS.Stream(ctx, a.Stream)
	if err != nil {
		log.Error("message given up by JetStream could not be read", "err", err)
		return
	}
	raw, err := s.GetMsg(ctx, a.StreamSeq)
	if err != nil {
		log.Error("message given up by JetStream could not be read", "err", err)
		return
	}
	var account, what string
	switch a.Consumer {
	case bus.ConsumerRemediatorFind:
		var o model.Observation
		if json.Unmarshal(raw.Data, &o) != nil || o.AccountID == "" {
			return
		}
		account, what = o.AccountID, "finding "+o.ID
		err = r.HandleFinding(ctx, o)
	default:
		var act model.Action
		if json.Unmarshal(raw.Data, &act) != nil || act.AccountID == "" || act.ID == "" {
			return
		}
		account, what = act.AccountID, "action "+act.ID
		err = r.HandleAction(ctx, act)
	}
	if err == nil {
		log.Warn("message JetStream gave up on was applied on its last chance", "account", account, "message", what)
		r.workAsync(ctx, account)
		return
	}
	log.Error("message given up after its last delivery", "account", account, "message", what, "err", err)
	r.recordRefusal(ctx, account, what, fmt.Errorf("gave up after %d deliveries: %w", a.Deliveries, err))
}
