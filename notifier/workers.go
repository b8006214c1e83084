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
	"log/slog"
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
	published time.Time // when the stream stored it
	urgent    bool      // delivered by the urgent consumer (see enqueueUrgent)
}

// heldKey names a held message: the same event can be held twice, once from each
// consumer.
type heldKey struct {
	urgent bool
	sseq   uint64
}

type workers struct {
	mu     sync.Mutex
	queues map[string][]job          // case id → its pending events, the head in work
	held   map[heldKey]jetstream.Msg // consumer and stream seq → message, for heartbeats
	wg     sync.WaitGroup
	// stopped is set when Run ends: a consumer callback still running after the
	// consumer was stopped starts no worker (its message is delivered again).
	stopped bool

	// Gates bound the workers per channel: a thousand cases waiting for one
	// channel's post bucket are a thousand queued jobs (a few KiB each), not a
	// thousand parked goroutines holding rendered messages. perGate workers run per
	// channel (more could not post faster: the channel's bucket is the limit), so
	// one flooded channel still never holds another; an event a person waits for
	// (a click, the API) never waits for a gate.
	perGate int
	gates   map[string]*gate // channel → its gate
	waiting map[string]string
	slot    map[string]string // case id → the gate whose slot its worker holds
}

// gate: the running workers of one channel and the cases waiting for a slot,
// critical ones first, each list in arrival order.
type gate struct {
	running int
	ready   [2][]string
}

func (g *gate) pop() (string, bool) {
	for i := range g.ready {
		if len(g.ready[i]) > 0 {
			id := g.ready[i][0]
			g.ready[i] = g.ready[i][1:]
			if len(g.ready[i]) == 0 {
				g.ready[i] = nil // let a drained backlog's array go
			}
			return id, true
		}
	}
	return "", false
}

func (g *gate) remove(caseID string) {
	for i := range g.ready {
		for k, id := range g.ready[i] {
			if id == caseID {
				g.ready[i] = append(g.ready[i][:k:k], g.ready[i][k+1:]...)
				return
			}
		}
	}
}

// DefaultPerChannelWorkers is how many cases of one channel are projected at once.
const DefaultPerChannelWorkers = 4

// stopAndWait refuses new work and waits for the workers that run. Events still
// waiting for a slot are handed back at once, for the next process.
func (w *workers) stopAndWait() {
	w.mu.Lock()
	w.stopped = true
	for id := range w.waiting {
		for _, j := range w.queues[id] {
			_ = j.msg.Nak()
			delete(w.held, heldKey{j.urgent, j.sseq})
		}
		delete(w.queues, id)
	}
	w.waiting = map[string]string{}
	w.mu.Unlock()
	w.wg.Wait()
}

// backlog: the workers running (cases in projection) and the cases waiting for a
// channel's slot.
func (w *workers) backlog() (running, waiting int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queues) - len(w.waiting), len(w.waiting)
}

func newWorkers() *workers {
	return &workers{queues: map[string][]job{}, held: map[heldKey]jetstream.Msg{},
		perGate: DefaultPerChannelWorkers, gates: map[string]*gate{}, waiting: map[string]string{}, slot: map[string]string{}}
}

// enqueue is the consumer's handler: it never waits for Slack.
func (n *Notifier) enqueue(ctx context.Context, msg jetstream.Msg) { n.enqueueFrom(ctx, msg, false) }

// enqueueUrgent is the handler of the urgent consumer, which reads the same case
// events from the stream's end with a small window of its own: the main consumer
// holds at most MaxInFlight events, so behind a flood of thousands of new cases
// (posted at 1 a second) an approval's event would wait in the stream for as many
// seconds. The urgent consumer lets events a person waits for (clicks, the API, a
// verification's outcome) through at once and acknowledges every other event
// unread. The main consumer still delivers them later; the projection skips an
// event already rendered.
func (n *Notifier) enqueueUrgent(ctx context.Context, msg jetstream.Msg) {
	var ev model.CaseEvent
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.CaseID == "" || eventPrio(ev) != prioHuman {
		_ = msg.Ack() // the main consumer handles it (and reports a malformed one)
		return
	}
	n.enqueueFrom(ctx, msg, true)
}

func (n *Notifier) enqueueFrom(ctx context.Context, msg jetstream.Msg, urgent bool) {
	var ev model.CaseEvent
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.CaseID == "" {
		n.log.Error("malformed case event: dropped", "subject", msg.Subject(), "err", err)
		n.m.events.WithLabelValues("malformed").Inc()
		_ = msg.TermWithReason("malformed case event")
		return
	}
	j := job{msg: msg, ev: ev, delivered: 1, urgent: urgent}
	if md, err := msg.Metadata(); err == nil {
		j.sseq, j.delivered, j.published = md.Sequence.Stream, md.NumDelivered, md.Timestamp
	}
	if ev.Type == model.EventOpened && !urgent {
		n.opened(ev, j.sseq) // redeliveries too: a crash before the summary was saved loses no burst
	}
	w := n.work
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return // Run has ended; the message comes back after AckWait
	}
	if _, dup := w.held[heldKey{urgent, j.sseq}]; dup && j.sseq != 0 {
		return // delivered again while we still work on it: the heartbeat keeps the first
	}
	w.held[heldKey{urgent, j.sseq}] = msg
	q := w.queues[ev.CaseID]
	w.queues[ev.CaseID] = append(q, j)
	human := eventPrio(ev) == prioHuman
	if key, isWaiting := w.waiting[ev.CaseID]; isWaiting {
		if human || eventPrio(ev) == prioCritical { // no gate for what waits behind: see below
			w.gates[key].remove(ev.CaseID)
			delete(w.waiting, ev.CaseID)
			w.wg.Go(func() { n.runCase(ctx, ev.CaseID) })
		}
		return
	}
	if len(q) > 0 {
		return // its worker runs and will come to it
	}
	key := n.routeFor(ev.Case)
	g := w.gates[key]
	if g == nil {
		g = &gate{}
		w.gates[key] = g
	}
	switch {
	case human || eventPrio(ev) == prioCritical:
		// Ungated: a person waits, or a key is in use (rare); the post bucket then
		// serves them before every gated case.
		w.wg.Go(func() { n.runCase(ctx, ev.CaseID) })
	case g.running < w.perGate:
		g.running++
		w.slot[ev.CaseID] = key
		w.wg.Go(func() { n.runCase(ctx, ev.CaseID) })
	default:
		g.ready[1] = append(g.ready[1], ev.CaseID)
		w.waiting[ev.CaseID] = key
	}
}

// releaseSlot gives up the gate slot of a case whose worker is about to back off
// after a failure, so that a case Slack keeps refusing does not hold its channel:
// the next waiting case starts now, and this one carries on without a slot.
func (n *Notifier) releaseSlot(ctx context.Context, caseID string) {
	w := n.work
	w.mu.Lock()
	defer w.mu.Unlock()
	key, holds := w.slot[caseID]
	if !holds {
		return
	}
	delete(w.slot, caseID)
	g := w.gates[key]
	next, ok := g.pop()
	if !ok || w.stopped {
		g.running--
		return
	}
	delete(w.waiting, next)
	w.slot[next] = key
	w.wg.Go(func() { n.runCase(ctx, next) })
}

// runCase projects the case's events in order until its queue is empty; a worker
// holding a gate's slot then takes the next case waiting at that gate.
func (n *Notifier) runCase(ctx context.Context, caseID string) {
	w := n.work
	for {
		w.mu.Lock()
		q := w.queues[caseID]
		if len(q) == 0 {
			delete(w.queues, caseID)
			key, holds := w.slot[caseID]
			delete(w.slot, caseID)
			if !holds {
				w.mu.Unlock()
				return
			}
			g := w.gates[key]
			next, ok := g.pop()
			if !ok || w.stopped {
				g.running--
				if g.running == 0 && len(g.ready[0])+len(g.ready[1]) == 0 {
					delete(w.gates, key)
				}
				w.mu.Unlock()
				return
			}
			delete(w.waiting, next)
			w.slot[next] = key
			caseID = next
			w.mu.Unlock()
			continue
		}
		j := q[0]
		w.mu.Unlock()
		n.handle(ctx, j)
		w.mu.Lock()
		w.queues[caseID] = w.queues[caseID][1:]
		delete(w.held, heldKey{j.urgent, j.sseq})
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
	if n.waitsForOlder(ctx, j, log) {
		return
	}
	pctx := withPrio(ctx, eventPrio(ev))
	var p progress
	for attempt := 1; ; attempt++ {
		err := n.project(pctx, ev, &p)
		cl, _ := classify(err)
		if ctx.Err() != nil && cl != classOK {
			_ = j.msg.Nak() // shutting down: the next process takes it
			return
		}
		n.m.events.WithLabelValues(cl.String()).Inc()
		switch cl {
		case classOK:
			_ = j.msg.Ack()
			if !p.older {
				n.afterProjected(ctx, ev, p.before)
			}
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
		n.releaseSlot(ctx, ev.CaseID)
		log.Warn("case event not projected yet: retrying", "err", err, "retry_in", d, "attempt", attempt)
		select {
		case <-ctx.Done():
			_ = j.msg.Nak()
			return
		case <-time.After(d):
		}
	}
}

// waitsForOlder keeps a case's events in their order. After a crash, the events the
// dead process held come back one AckWait later, while an event published after the
// restart is delivered at once: projected first, it would make the older one look
// rendered (its thread reply never posted) or, if it had not finished, lose its reply
// intent to the older one (its reply posted twice). An event that finds older events
// of its case unrendered goes back with a short delay, so that they come first. It
// waits at most 2×AckWait after it was published or this process started, whichever
// is later (an older event held by a dead process is back within AckWait of the
// restart; one that keeps being held by processes that die keeps its place): an older
// event that failed for good does not hold its case for ever.
// The urgent consumer's events wait too (a click's event after a restart is exactly
// the newer one); behind a flood, an urgent event whose case has an older event still
// in the main consumer's backlog is projected at the latest 2×AckWait after it.
func (n *Notifier) waitsForOlder(ctx context.Context, j job, log *slog.Logger) bool {
	if j.ev.Seq <= 1 || j.ev.Activity != nil {
		// An opening has nothing older; a root activity event carries the whole
		// question, and the asker skips what is older than it rendered (notifier/ask).
		return false
	}
	rec, _, err := n.loadRecord(ctx, j.ev.CaseID)
	if err != nil {
		return false // the projection meets the same error and retries
	}
	rendered := 0
	if rec != nil {
		rendered = rec.RenderedSeq
	}
	if j.ev.Seq <= rendered+1 {
		return false
	}
	if j.published.IsZero() || time.Since(later(j.published, n.started)) >= 2*n.cfg.AckWait {
		log.Warn("case event projected without older events of its case that never came", "rendered", rendered)
		return false
	}
	log.Info("case event waits for an older event of its case", "rendered", rendered)
	_ = j.msg.NakWithDelay(max(n.cfg.AckWait/10, 10*time.Millisecond))
	return true
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

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
