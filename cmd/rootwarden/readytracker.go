package main

import (
	"context"

	"github.com/rootwarden/rootwarden/internal/model"
)

// readyTracker reports the health of an external tracker (Jira, GitHub) into the
// readiness registry from the outcome of the calls the remediator makes anyway: a
// transient or unauthorized failure makes /readyz name the tracker until a call works
// again; any answer from the tracker (found, not found, refused input) means it works.
type readyTracker struct {
	model.Tracker
	report func(error)
}

var _ model.Tracker = readyTracker{}

func (t readyTracker) observe(err error) error {
	switch model.ErrorCode(err) {
	case model.CodeTransient, model.CodeUnauthorized, model.CodeInternal:
		if err != nil {
			t.report(err)
			return err
		}
	}
	t.report(nil)
	return err
}

func (t readyTracker) Open(ctx context.Context, c model.Case, slackLink string) (model.TicketRef, error) {
	ref, err := t.Tracker.Open(ctx, c, slackLink)
	return ref, t.observe(err)
}

func (t readyTracker) Comment(ctx context.Context, ref model.TicketRef, text string) error {
	return t.observe(t.Tracker.Comment(ctx, ref, text))
}

func (t readyTracker) Close(ctx context.Context, ref model.TicketRef, resolution string) error {
	return t.observe(t.Tracker.Close(ctx, ref, resolution))
}

func (t readyTracker) Reopen(ctx context.Context, ref model.TicketRef, text string) error {
	return t.observe(t.Tracker.Reopen(ctx, ref, text))
}

func (t readyTracker) Status(ctx context.Context, ref model.TicketRef) (model.TicketStatus, error) {
	st, err := t.Tracker.Status(ctx, ref)
	return st, t.observe(err)
}
