package notifier

// Per-case workers. One consumer with MaxAckPending > 1 hands each case event to the
// worker of its case: a case's events are projected one after another, in order, and
// different cases proceed independently (one case waiting for Slack never holds
// another). A worker retries a failed event in place until it succeeds or fails
// for good, so the next event of the case waits behind it. Every message held in
// the process is kept alive with InProgress heartbeats, so AckWait can be short: after
// a crash, the work in flight is delivered again within seconds.

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/model"
)

type job struct {
	msg       jetstream.Msg
	ev        model.CaseEvent
	sseq      uint64 // stream sequence
	delivered uint64
}

type workers struct {
	mu     sync.Mutex
	queues map[string][]job         // case id → its pending events, the head in work
	held   map[uint64]jetstream.Msg // stream seq → message, for heartbeats
	wg     sync.WaitGroup
	// stopped is set when Run ends: a consumer callback still running after the
	// consumer was stopped starts no worker (its message is delivered again).
	stopped bool
}

// stopAndWait refuses new work and waits for the workers that run.
func (w *workers) stopAndWait() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.wg.Wait()
}

func newWorkers() *workers {
	return &workers{queues: map[string][]job{}, held: map[uint64]jetstream.Msg{}}
}

// enqueue is the consumer's handler: it never waits for Slack.
func (n *Notifier) enqueue(ctx context.Context, msg jetstream.Msg) {
	var ev model.CaseEvent
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.CaseID == "" {
		n.log.Error("malformed case event: dropped", "subject", msg.Subject(), "err", err)
		n.m.events.WithLabelValues("malformed").Inc()
		_ = msg.TermWithReason("malformed case event")
		return
	}
	j := job{msg: msg, ev: ev, delivered: 1}
	if md, err := msg.Metadata(); err == nil {
		j.sseq, j.delivered = md.Sequence.Stream, md.NumDelivered
	}
	if ev.Type == model.EventOpened {
		n.opened(ev) // redeliveries too: a crash before the summary was saved loses no burst
	}
	w := n.work
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return // Run has ended; the message comes back after AckWait
	}
	if _, dup := w.held[j.sseq]; dup && j.sseq != 0 {
		return // delivered again while we still work on it: the heartbeat keeps the first
	}
	w.held[j.sseq] = msg
	q := w.queues[ev.CaseID]
	w.queues[ev.CaseID] = append(q, j)
	if len(q) == 0 {
		w.wg.Go(func() { n.runCase(ctx, ev.CaseID) })
	}
}

// runCase projects the case's events in order until its queue is empty.
func (n *Notifier) runCase(ctx context.Context, caseID string) {
	w := n.work
	for {
		w.mu.Lock()
		q := w.queues[caseID]
		if len(q) == 0 {
			delete(w.queues, caseID)
			w.mu.Unlock()
			return
		}
		j := q[0]
		w.mu.Unlock()
		n.handle(ctx, j)
		w.mu.Lock()
		w.queues[caseID] = w.queues[caseID][1:]
		delete(w.held, j.sseq)
		w.mu.Unlock()
	}
}

// heartbeat tells the server every third of AckWait that held messages are in work.
func (n *Notifier) heartbeat(ctx context.Context) {
	t := time.NewTicker(max(n.cfg.AckWait/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w := n.work
		w.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(w.held))
		for _, m := range w.held {
			msgs = append(msgs, m)
		}
		w.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress()
		}
	}
}

// handle projects one event, retrying in place, and acks, terms or (at shutdown)
// naks it.
func (n *Notifier) handle(ctx context.Context, j job) {
	ev := j.ev
	log := n.log.With("case", ev.CaseID, "account", ev.AccountID, "seq", ev.Seq, "event", ev.Type)
	pctx := withPrio(ctx, eventPrio(ev))
	for attempt := 1; ; attempt++ {
		err := n.project(pctx, ev)
		cl, _ := classify(err)
		if ctx.Err() != nil && cl != classOK {
			_ = j.msg.Nak() // shutting down: the next process takes it
			return
		}
		n.m.events.WithLabelValues(cl.String()).Inc()
		switch cl {
		case classOK:
			_ = j.msg.Ack()
			n.afterProjected(ctx, ev)
			return
		case classPermanent:
			n.m.slackErrors.WithLabelValues(cl.String()).Inc()
			log.Error("SLACK PROJECTION FAILED PERMANENTLY: this case event will not reach Slack until the configuration is fixed",
				"err", err, "slack_error", slackErrText(err), "channel", n.cfg.Channel)
			_ = j.msg.TermWithReason("slack: " + slackErrText(err))
			return
		}
		n.m.slackErrors.WithLabelValues(cl.String()).Inc()
		d := n.backoff(uint64(attempt))
		log.Warn("case event not projected yet: retrying", "err", err, "retry_in", d, "attempt", attempt)
		select {
		case <-ctx.Done():
			_ = j.msg.Nak()
			return
		case <-time.After(d):
		}
	}
}

// eventPrio: an event caused by a person (a click, the API) is awaited by them, and so
// is the outcome of a verification (resolved, still present: the system's events, but
// someone said the keys are gone and watches the message for the answer).
func eventPrio(ev model.CaseEvent) priority {
	switch {
	case ev.Actor.Kind == model.ActorSlack || ev.Actor.Kind == model.ActorAPI:
		return prioHuman
	case ev.From == model.StateVerifying:
		return prioHuman
	case ev.Case.Severity == model.SeverityCritical:
		return prioCritical
	}
	return prioHigh
}

// newest is the latest event of ev's case held in the process (queued behind ev), or
// ev itself: what the case's message should show when it is edited now.
func (n *Notifier) newest(ev model.CaseEvent) model.CaseEvent {
	w := n.work
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queues[ev.CaseID]
	for i := len(q) - 1; i >= 0; i-- {
		if q[i].ev.Seq > ev.Seq {
			return q[i].ev
		}
	}
	return ev
}
