package notifier

// PagerDuty incidents for critical cases (a root key in use or used recently). Its own
// durable consumer on RW_CASES (notifier-pagerduty) reads the case events, so a slow
// PagerDuty never delays Slack and the other way round. A critical active case
// triggers an incident with dedup_key = case id (once: a marker in KV rw_sched
// remembers it; a crash before the marker is saved triggers again, which PagerDuty
// folds into the same incident); the case's resolution or accepted risk resolves it.
// The consumer starts at the events after start-up: turning PagerDuty on does not page
// for history.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/pagerduty"
)

func pagedKey(caseID string) string { return "pagerduty." + caseID }

func (n *Notifier) incidentLoop(ctx context.Context) {
	for ctx.Err() == nil {
		err := n.consumeIncidents(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		n.log.Warn("PagerDuty incident consumer: retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (n *Notifier) consumeIncidents(ctx context.Context) error {
	cons, err := n.b.JS.CreateConsumer(ctx, bus.StreamCases, jetstream.ConsumerConfig{
		Durable:       bus.ConsumerNotifierPager,
		Description:   "notifier: critical cases → PagerDuty incidents",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
		MaxAckPending: 1, // a case's trigger comes before its resolve
		// On first creation: the events from this process's start on (stream times are
		// wall-clock), never the history. An existing consumer keeps its position.
		DeliverPolicy: jetstream.DeliverByStartTimePolicy,
		OptStartTime:  &n.startedAt,
		FilterSubject: bus.SubjectCases + ">",
	})
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// A restart: keep its position (its start time cannot change).
		cons, err = n.b.JS.Consumer(ctx, bus.StreamCases, bus.ConsumerNotifierPager)
	}
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", bus.ConsumerNotifierPager, bus.StreamCases, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { n.handleIncidentMsg(ctx, msg) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if ctx.Err() == nil {
				n.log.Warn("PagerDuty incident consumer", "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("consume %s for PagerDuty: %w", bus.StreamCases, err)
	}
	<-ctx.Done()
	cc.Stop()
	return nil
}

func (n *Notifier) handleIncidentMsg(ctx context.Context, msg jetstream.Msg) {
	var ev model.CaseEvent
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.CaseID == "" {
		_ = msg.TermWithReason("malformed case event")
		return
	}
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	err := n.pageFor(ctx, ev)
	var pe *pagerduty.Error
	switch {
	case err == nil:
		_ = msg.Ack()
	case ctx.Err() != nil:
		_ = msg.Nak()
	case errors.As(err, &pe) && !pe.Transient:
		n.log.Error("PAGERDUTY EVENT REFUSED: no incident for this case event; check ROOTWARDEN_PAGERDUTY_ROUTING_KEY",
			"case", ev.CaseID, "seq", ev.Seq, "err", err)
		_ = msg.TermWithReason("pagerduty: " + pe.Message)
	default:
		d := min(time.Second<<min(delivered-1, 8), 5*time.Minute) // 1s, 2s, … 256s
		n.log.Warn("PagerDuty event not sent yet: retrying", "case", ev.CaseID, "err", err, "retry_in", d)
		_ = msg.NakWithDelay(d)
	}
}

// pageFor sends what one case event means for PagerDuty, if anything.
func (n *Notifier) pageFor(ctx context.Context, ev model.CaseEvent) error {
	if ev.Activity != nil {
		return n.ask.Page(ctx, ev) // a root activity question (activity.go)
	}
	c := ev.Case
	if c.Severity != model.SeverityCritical {
		return nil
	}
	switch {
	case c.State == model.StateResolved || c.State == model.StateRiskAccepted:
		if _, err := n.b.Sched.Get(ctx, pagedKey(c.ID)); errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil // never paged (or resolved already)
		} else if err != nil {
			return fmt.Errorf("read PagerDuty marker of case %s: %w", c.ID, err)
		}
		if err := n.cfg.Pager.Resolve(ctx, c.ID); err != nil {
			return err
		}
		if err := n.b.Sched.Delete(ctx, pagedKey(c.ID)); err != nil {
			return fmt.Errorf("drop PagerDuty marker of case %s: %w", c.ID, err)
		}
		n.log.Info("PagerDuty incident resolved", "case", c.ID, "state", c.State)
		return nil
	case c.State.Active():
		if _, err := n.b.Sched.Get(ctx, pagedKey(c.ID)); err == nil {
			return nil // paged already
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("read PagerDuty marker of case %s: %w", c.ID, err)
		}
		link := ""
		if rec, _, err := n.loadRecord(ctx, c.ID); err == nil && rec != nil {
			link = rec.Permalink
		}
		in := pagerduty.Incident{DedupKey: c.ID, Severity: "critical", Source: "aws:" + c.AccountID, Link: link,
			Summary: escape.PagerDuty("Critical: root access key in use in AWS account "+accountLabel(c), 0),
			Details: map[string]any{"case": c.ID, "account": c.AccountID, "account_name": escape.Plain(c.AccountName),
				"ou": escape.Plain(c.OUPath), "state": string(c.State), "found_by": string(c.FoundBy)}}
		if err := n.cfg.Pager.Trigger(ctx, in); err != nil {
			return err
		}
		if _, err := n.b.Sched.Put(ctx, pagedKey(c.ID), []byte(n.now().UTC().Format(time.RFC3339))); err != nil {
			return fmt.Errorf("save PagerDuty marker of case %s: %w", c.ID, err)
		}
		n.log.Info("PagerDuty incident triggered", "case", c.ID, "account", c.AccountID)
	}
	return nil
}
