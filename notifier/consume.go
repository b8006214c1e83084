package notifier

// The projection: case events from RW_CASES → one Slack message per case, edited in
// place, with one thread reply per event.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/model"
)

// record is what the notifier keeps per case in KV rw_slack (key = case id). It is a
// superset of model.SlackRef (the remediator reads those fields and ignores the rest)
// and carries the last rendered event and the reminder/escalation timers, so both
// survive restarts.
type record struct {
	model.SlackRef
	AccountID      string      `json:"account_id,omitempty"`
	RenderedSeq    int         `json:"rendered_seq"` // last case event fully rendered
	State          model.State `json:"state,omitempty"`
	OpenSince      *time.Time  `json:"open_since,omitempty"`
	Reminders      int         `json:"reminders"`
	LastReminderAt *time.Time  `json:"last_reminder_at,omitempty"`
	TicketedSince  *time.Time  `json:"ticketed_since,omitempty"`
	EscalatedAt    *time.Time  `json:"escalated_at,omitempty"`
}

// applyState moves the timers along with the case's state.
func (r *record) applyState(ev model.CaseEvent) {
	to := ev.Case.State
	if to == "" {
		to = ev.To
	}
	if to == "" || to == r.State {
		return
	}
	at := ev.At
	switch to {
	case model.StateOpen:
		r.OpenSince, r.Reminders, r.LastReminderAt = &at, 0, nil
	case model.StateTicketed:
		// Back from verifying ("still present") keeps the ticket's clock.
		if r.State != model.StateVerifying || r.TicketedSince == nil {
			r.TicketedSince, r.EscalatedAt = &at, nil
		}
	}
	r.State = to
}

// class of a failure, for the ack decision.
type class int

const (
	classOK class = iota
	classTransient
	classRateLimited
	classPermanent
)

func (c class) String() string {
	return [...]string{"ok", "transient", "rate_limited", "permanent"}[c]
}

// permanentSlackErrors stop retrying: a human must fix configuration.
var permanentSlackErrors = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "invalid_auth": true,
	"not_authed": true, "account_inactive": true, "token_revoked": true, "token_expired": true,
	"no_permission": true, "missing_scope": true, "org_login_required": true, "ekm_access_denied": true,
	"invalid_blocks": true, "invalid_blocks_format": true, "msg_too_long": true, "no_text": true,
	"invalid_metadata_format": true, "invalid_metadata_schema": true, "restricted_action": true,
	"team_access_not_granted": true, "access_denied": true, "invalid_arguments": true,
	"message_not_found": true, "cant_update_message": true, "edit_window_closed": true,
	"thread_not_found": true, "channel_is_archived": true,
}

// classify decides what a failure means for the message being handled.
func classify(err error) (class, time.Duration) {
	if err == nil {
		return classOK, 0
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return classRateLimited, rl.RetryAfter
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		if permanentSlackErrors[se.Err] {
			return classPermanent, 0
		}
		return classTransient, 0 // ratelimited, internal_error, fatal_error, service_unavailable, …
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code == 429 || sc.Code == 408 || sc.Code >= 500 {
			return classTransient, 0
		}
		return classPermanent, 0
	}
	var me *model.Error
	if errors.As(err, &me) && me.Code == model.CodeInvalid {
		return classPermanent, 0
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return classTransient, 0
	}
	return classTransient, 0 // NATS hiccups, timeouts, unexpected answers: retry
}

// backoff is the redelivery delay after the n-th failed delivery.
func (n *Notifier) backoff(delivered uint64) time.Duration {
	d := n.cfg.RetryBase
	for i := uint64(1); i < delivered && d < n.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, n.cfg.RetryMax)
}

func (n *Notifier) handleCaseMsg(ctx context.Context, msg jetstream.Msg) {
	var ev model.CaseEvent
	if err := json.Unmarshal(msg.Data(), &ev); err != nil || ev.CaseID == "" {
		n.log.Error("malformed case event: dropped", "subject", msg.Subject(), "err", err)
		n.m.events.WithLabelValues("malformed").Inc()
		_ = msg.TermWithReason("malformed case event")
		return
	}
	var delivered uint64 = 1
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
	}
	log := n.log.With("case", ev.CaseID, "account", ev.AccountID, "seq", ev.Seq, "event", ev.Type)
	err := n.project(ctx, ev, delivered > 1)
	cl, after := classify(err)
	n.m.events.WithLabelValues(cl.String()).Inc()
	switch cl {
	case classOK:
		_ = msg.Ack()
	case classRateLimited:
		n.m.slackErrors.WithLabelValues(cl.String()).Inc()
		log.Warn("Slack rate limit: retrying after Retry-After", "retry_after", after, "delivery", delivered)
		_ = msg.NakWithDelay(after)
	case classTransient:
		if ctx.Err() != nil {
			_ = msg.Nak()
			return
		}
		n.m.slackErrors.WithLabelValues(cl.String()).Inc()
		d := n.backoff(delivered)
		log.Warn("case event not projected yet: retrying", "err", err, "retry_in", d, "delivery", delivered)
		_ = msg.NakWithDelay(d)
	case classPermanent:
		n.m.slackErrors.WithLabelValues(cl.String()).Inc()
		log.Error("SLACK PROJECTION FAILED PERMANENTLY: this case event will not reach Slack until the configuration is fixed",
			"err", err, "slack_error", slackErrText(err), "channel", n.cfg.Channel)
		_ = msg.TermWithReason("slack: " + slackErrText(err))
	}
}

// project renders one case event: the message (posted once, then edited) and a
// thread reply. It is idempotent: events at or below the rendered seq are skipped.
func (n *Notifier) project(ctx context.Context, ev model.CaseEvent, redelivered bool) error {
	rec, _, err := n.loadRecord(ctx, ev.CaseID)
	if err != nil {
		return err
	}
	if rec != nil && ev.Seq <= rec.RenderedSeq {
		n.log.Debug("case event already rendered: skipped", "case", ev.CaseID, "seq", ev.Seq, "rendered", rec.RenderedSeq)
		return nil
	}
	blocks := n.renderCase(ctx, ev.Case, &ev)
	text := caseText(ev.Case)
	posted := false
	if rec == nil {
		ch, ts, found, err := n.findPosted(ctx, ev)
		if err != nil {
			return err
		}
		if !found {
			if ch, ts, err = n.postCaseMessage(ctx, ev, text, blocks); err != nil {
				return err
			}
			posted = true
			n.log.Info("case message posted", "case", ev.CaseID, "account", ev.AccountID, "channel", ch, "ts", ts)
		} else {
			n.log.Info("case message found in channel history: adopted", "case", ev.CaseID, "channel", ch, "ts", ts)
		}
		rec = &record{SlackRef: model.SlackRef{CaseID: ev.CaseID, Channel: ch, TS: ts,
			Permalink: n.permalink(ctx, ch, ts)}, AccountID: ev.AccountID}
		data, _ := json.Marshal(rec)
		if _, err := n.b.Slack.Create(ctx, ev.CaseID, data); err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return fmt.Errorf("save Slack ref of case %s: %w", ev.CaseID, err)
			}
			// Someone saved it meanwhile: use theirs.
			if rec, _, err = n.loadRecord(ctx, ev.CaseID); err != nil || rec == nil {
				return fmt.Errorf("reload Slack ref of case %s: %v", ev.CaseID, err)
			}
		}
	}
	if !posted {
		_, _, _, err := n.api.UpdateMessageContext(ctx, rec.Channel, rec.TS,
			slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...))
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "message_not_found" {
			// Someone deleted the case's message in Slack. The case is still active, so
			// it gets a message again: there is no other top-level message for it.
			if rec, err = n.repost(ctx, ev, rec, text, blocks); err != nil {
				return err
			}
		} else if err != nil {
			return fmt.Errorf("chat.update of case %s: %w", ev.CaseID, err)
		}
	}
	if ev.Type != model.EventOpened {
		exists := false
		if redelivered {
			if exists, err = n.replyExists(ctx, rec, ev); err != nil {
				return err
			}
		}
		if !exists {
			if _, _, err := n.api.PostMessageContext(ctx, rec.Channel, slack.MsgOptionTS(rec.TS),
				slack.MsgOptionText(eventText(ev), false),
				slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataCaseEvent,
					EventPayload: map[string]any{"case_id": ev.CaseID, "seq": ev.Seq}})); err != nil {
				return fmt.Errorf("thread reply for case %s event %d: %w", ev.CaseID, ev.Seq, err)
			}
		}
	}
	err = n.updateRecord(ctx, ev.CaseID, func(r *record) bool {
		if ev.Seq <= r.RenderedSeq {
			return false
		}
		r.RenderedSeq = ev.Seq
		r.applyState(ev)
		return true
	})
	if err == nil {
		n.log.Info("case event projected", "case", ev.CaseID, "seq", ev.Seq, "event", ev.Type, "state", ev.Case.State)
	}
	return err
}

// postCaseMessage posts the case's top-level message, its case id in the metadata so
// that it can be found in the history after a crash.
func (n *Notifier) postCaseMessage(ctx context.Context, ev model.CaseEvent, text string, blocks []slack.Block) (channel, ts string, err error) {
	channel, ts, err = n.api.PostMessageContext(ctx, n.routeFor(ev.Case),
		slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataCase,
			EventPayload: map[string]any{"case_id": ev.CaseID, "account_id": ev.AccountID}}))
	if err != nil {
		return "", "", fmt.Errorf("chat.postMessage for case %s: %w", ev.CaseID, err)
	}
	return channel, ts, nil
}

// repost replaces a case message that was deleted in Slack. A message posted by an
// earlier attempt whose new ts was not saved is found in the history and adopted, so a
// crash here does not post twice.
func (n *Notifier) repost(ctx context.Context, ev model.CaseEvent, rec *record, text string, blocks []slack.Block) (*record, error) {
	ch, ts, found, err := n.findPosted(ctx, ev)
	if err != nil {
		return nil, err
	}
	if !found || ts == rec.TS {
		if ch, ts, err = n.postCaseMessage(ctx, ev, text, blocks); err != nil {
			return nil, err
		}
	}
	n.log.Warn("the case's Slack message was deleted: posted it again", "case", ev.CaseID, "old_ts", rec.TS, "ts", ts)
	link := n.permalink(ctx, ch, ts)
	err = n.updateRecord(ctx, ev.CaseID, func(r *record) bool {
		r.Channel, r.TS, r.Permalink = ch, ts, link
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("save the new Slack ref of case %s: %w", ev.CaseID, err)
	}
	out := *rec
	out.Channel, out.TS, out.Permalink = ch, ts, link
	return &out, nil
}

// findPosted looks in the channel's recent history for the case's message (one
// posted by an earlier attempt whose SlackRef was never saved).
func (n *Notifier) findPosted(ctx context.Context, ev model.CaseEvent) (channel, ts string, found bool, err error) {
	channel = n.routeFor(ev.Case)
	params := &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: 200, IncludeAllMetadata: true}
	// No "oldest" bound: the case's clock and Slack's may differ. The message of an
	// interrupted post is among the newest, and HistoryPages bounds the search.
	for page := 0; page < n.cfg.HistoryPages; page++ {
		resp, err := n.api.GetConversationHistoryContext(ctx, params)
		if err != nil {
			return "", "", false, fmt.Errorf("conversations.history of %s for case %s: %w", channel, ev.CaseID, err)
		}
		for _, m := range resp.Messages {
			if m.Metadata.EventType != MetadataCase || (m.ThreadTimestamp != "" && m.ThreadTimestamp != m.Timestamp) {
				continue
			}
			if id, _ := m.Metadata.EventPayload["case_id"].(string); id == ev.CaseID {
				return channel, m.Timestamp, true, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			break
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	return "", "", false, nil
}

// replyExists reports whether the thread already has the reply of this event (posted
// by a delivery that failed before saving the record).
func (n *Notifier) replyExists(ctx context.Context, rec *record, ev model.CaseEvent) (bool, error) {
	msgs, _, _, err := n.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
		ChannelID: rec.Channel, Timestamp: rec.TS, Limit: 200, IncludeAllMetadata: true})
	if err != nil {
		return false, fmt.Errorf("conversations.replies of case %s: %w", ev.CaseID, err)
	}
	for _, m := range msgs {
		if m.Metadata.EventType != MetadataCaseEvent {
			continue
		}
		id, _ := m.Metadata.EventPayload["case_id"].(string)
		seq, _ := m.Metadata.EventPayload["seq"].(float64)
		if id == ev.CaseID && int(seq) == ev.Seq {
			return true, nil
		}
	}
	return false, nil
}

// loadRecord reads the case's record; nil when there is none.
func (n *Notifier) loadRecord(ctx context.Context, caseID string) (*record, uint64, error) {
	e, err := n.b.Slack.Get(ctx, caseID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read Slack ref of case %s: %w", caseID, err)
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("decode Slack ref of case %s: %w", caseID, err)
	}
	return &r, e.Revision(), nil
}

// updateRecord applies f to the stored record with compare-and-set, retrying on
// conflicts; f returns false when there is nothing to change.
func (n *Notifier) updateRecord(ctx context.Context, caseID string, f func(*record) bool) error {
	for attempt := 0; attempt < 10; attempt++ {
		r, rev, err := n.loadRecord(ctx, caseID)
		if err != nil {
			return err
		}
		if r == nil {
			return fmt.Errorf("update Slack ref of case %s: not found", caseID)
		}
		if !f(r) {
			return nil
		}
		data, _ := json.Marshal(r)
		_, err = n.b.Slack.Update(ctx, caseID, data, rev)
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("save Slack ref of case %s: %w", caseID, err)
		}
	}
	return fmt.Errorf("save Slack ref of case %s: too many concurrent updates", caseID)
}
