package notifier

// The notifier's side of root activity questions is the ask package (notifier/ask):
// this file only wires it to the notifier's Slack pacing, owners, approvers, bus and
// PagerDuty. Case events with an Activity go to the asker instead of the case
// projection; its buttons and modal go to it instead of the case gateway.

import (
	"context"
	"net/http"
	"sort"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/bus"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/notifier/ask"
)

func (n *Notifier) newAsker() ask.Asker {
	var pager ask.Pager
	if n.cfg.Pager != nil {
		pager = n.cfg.Pager
	}
	return ask.New(ask.Deps{
		API:   n.api,
		KV:    n.b.Sched,
		Route: n.routeFor,
		Owner: func(ctx context.Context, c model.Case) ask.Owner {
			o := n.OwnerOf(ctx, c)
			return ask.Owner{SlackID: o.SlackID, Email: o.Email, Note: o.Note}
		},
		OnCall:     n.askOnCall,
		IsApprover: n.isApprover,
		Publish: func(ctx context.Context, a model.Action) error {
			dup, err := n.b.PublishJSON(ctx, bus.ActionSubject(a.AccountID), a.ID, a)
			if err == nil && !dup {
				n.m.interactions.WithLabelValues("action", string(a.Kind)).Inc()
				n.log.Info("action published", "action", a.ID, "kind", a.Kind, "actor", a.Actor.String())
			}
			return err
		},
		Ephemeral:   func(ctx context.Context, channel, user, text string) { n.ephemeral(ctx, channel, user, "", text) },
		Post:        n.postMsg,
		Update:      n.updateMsg,
		Pager:       pager,
		CallTimeout: n.cfg.CallTimeout,
		Now:         n.now,
		Log:         n.log.With("part", "ask"),
	})
}

// askOnCall is who to ask without an owner: whoever is on call (PagerDuty), else
// the approvers listed by user id.
func (n *Notifier) askOnCall(ctx context.Context) []string {
	if n.cfg.OnCall != nil {
		if ids, err := n.onCallNow(ctx); err == nil && len(ids) > 0 {
			return ids
		}
	}
	ids := make([]string, 0, len(n.users))
	for u := range n.users {
		ids = append(ids, u)
	}
	sort.Strings(ids)
	return ids
}

func fromAsk(r ask.Reply) reply { return reply{status: r.Status, msg: r.Msg, body: r.Body} }

// askHandles reports whether an interaction is the asker's.
func (n *Notifier) askBlockAction(ctx context.Context, ic slack.InteractionCallback) (reply, bool) {
	acts := ic.ActionCallback.BlockActions
	if len(acts) != 1 || acts[0] == nil || !n.ask.Handles(acts[0].ActionID) {
		return reply{}, false
	}
	if ic.User.ID == "" {
		return reply{status: http.StatusBadRequest, msg: "malformed payload: no user"}, true
	}
	return fromAsk(n.ask.BlockAction(ctx, ic)), true
}
