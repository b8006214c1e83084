package notifier

// The projection: case events from RW_CASES → one Slack message per case, edited in
// place, with one thread reply per event.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
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
	// PostingSince is the intent to post the case's message, saved before
	// chat.postMessage (wall clock, to compare with Slack's ts). A record with an
	// intent and no ts is the only one whose message may be in Slack unrecorded: only
	// then is the channel's history searched.
	PostingSince *time.Time `json:"posting_since,omitempty"`
	// ReplyIntent is the seq of the event whose thread reply is being posted (saved
	// before chat.postMessage): only then is the thread searched for it.
	ReplyIntent int `json:"reply_intent,omitempty"`
	// MessageSeq is the seq of the case snapshot the message shows: above RenderedSeq
	// when an edit showed an event still queued (editCase), whose own edit is then
	// skipped.
	MessageSeq int `json:"message_seq,omitempty"`
	// Severity is the case's severity as last rendered, and Burst the burst summary
	// the case counts in: after a restart, a member's next event moves the summary's
	// figures from what they counted for it (afterProjected).
	Severity model.Severity `json:"severity,omitempty"`
	Burst    string         `json:"burst,omitempty"`
	// RepliedUpTo and Replied say which events are done in the thread (their reply
	// posted, or an opening, which has none): every seq up to RepliedUpTo, and the
	// seqs in Replied above it. The message may show a newer event than one still to
	// come (a click's event projected ahead of an older one behind a flood), so what
	// is rendered says nothing of which replies were posted. Replied holds at most
	// maxReplied seqs: past that, the oldest gap is given up (an event that failed for
	// good).
	RepliedUpTo int   `json:"replied_up_to,omitempty"`
	Replied     []int `json:"replied,omitempty"`
}

// maxReplied bounds record.Replied.
const maxReplied = 32

// replied reports whether the event's thread part is done.
func (r *record) replied(seq int) bool {
	if r.RepliedUpTo == 0 && len(r.Replied) == 0 && r.RenderedSeq > 0 {
		return seq <= r.RenderedSeq // a record from before replies were tracked per event
	}
	return seq <= r.RepliedUpTo || slices.Contains(r.Replied, seq)
}

// markReplied records the event's thread part as done.
func (r *record) markReplied(seq int) {
	if r.replied(seq) {
		return
	}
	if r.RepliedUpTo == 0 && len(r.Replied) == 0 && r.RenderedSeq > 0 {
		r.RepliedUpTo = r.RenderedSeq
	}
	r.Replied = append(r.Replied, seq)
	slices.Sort(r.Replied)
	for len(r.Replied) > 0 && (r.Replied[0] == r.RepliedUpTo+1 || len(r.Replied) > maxReplied) {
		r.RepliedUpTo, r.Replied = r.Replied[0], r.Replied[1:]
	}
	if len(r.Replied) == 0 {
		r.Replied = nil
	}
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

// historyMargin: how far before a posting intent the history is searched.
const historyMargin = 10 * time.Minute

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
	if errors.Is(err, nats.ErrMaxPayload) {
		return classPermanent, 0 // a value or message over NATS's max_payload never fits
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

// progress is what the attempts at one delivery of an event have done so far.
type progress struct {
	shown int // the seq the message was edited to show: a retry after a failed reply does not edit it again
	// before is the record as it stood before this event was rendered (set once the
	// event is saved as rendered; nil when it was skipped).
	before *record
	// older: the message already showed a newer event when this one came (its reply
	// may still have been owed).
	older bool
}

// project renders one case event: the message (posted once, then edited) and a
// thread reply. It is idempotent: events at or below the rendered seq are skipped.
// The thread reply has its own intent (record.ReplyIntent): the thread is searched
// only when an earlier attempt was posting this event's reply.
//
// chat.update is the scarcest of Slack's limits here (Tier 3, about 50 a minute for
// every case together), so the message is not edited again when an earlier attempt at
// this delivery edited it and only the thread reply failed, nor when an earlier edit
// already showed this state or a newer one (editCase).
func (n *Notifier) project(ctx context.Context, ev model.CaseEvent, p *progress) error {
	if ev.Activity != nil {
		return n.ask.Project(ctx, ev) // a root activity question (activity.go)
	}
	rec, _, err := n.loadRecord(ctx, ev.CaseID)
	if err != nil {
		return err
	}
	if rec != nil && ev.Seq <= rec.RenderedSeq {
		p.older = true
		if rec.replied(ev.Seq) {
			n.log.Debug("case event already rendered: skipped", "case", ev.CaseID, "seq", ev.Seq, "rendered", rec.RenderedSeq)
			return nil
		}
		// Came after a newer event of its case (behind a flood, while the newer one
		// went ahead): the message shows the newer state already; the reply is owed.
		n.log.Info("case event came after a newer one: only its thread reply is posted", "case", ev.CaseID, "seq", ev.Seq, "rendered", rec.RenderedSeq)
	}
	blocks := n.renderCase(ctx, ev.Case, &ev)
	text := caseText(ev.Case)
	posted := false
	if rec == nil || rec.TS == "" {
		if rec, posted, err = n.firstPost(ctx, ev, rec, text, blocks); err != nil {
			return err
		}
	}
	shown := ev.Seq // the snapshot the message shows once this event is projected
	switch {
	case posted:
	case p.older:
		shown = rec.MessageSeq // the message shows a newer event: no edit back
	case p.shown >= ev.Seq:
		shown = p.shown // this delivery's earlier attempt edited it; only the reply failed
	case rec.MessageSeq >= ev.Seq:
		shown = rec.MessageSeq // an earlier edit already showed this state or a newer one
	default:
		err := n.editCase(ctx, rec, ev, text, blocks, &shown)
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
		p.shown = shown
	}
	if ev.Type != model.EventOpened {
		exists := false
		if rec.ReplyIntent == ev.Seq { // an earlier attempt may have posted it
			if exists, err = n.replyExists(ctx, rec, ev); err != nil {
				return err
			}
		} else if err := n.updateRecord(ctx, ev.CaseID, func(r *record) bool { r.ReplyIntent = ev.Seq; return true }); err != nil {
			return err
		}
		if !exists {
			if _, _, err := n.postMsg(ctx, rec.Channel, slack.MsgOptionTS(rec.TS),
				slack.MsgOptionText(eventText(ev), false),
				slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataCaseEvent,
					EventPayload: map[string]any{"case_id": ev.CaseID, "seq": ev.Seq}})); err != nil {
				return fmt.Errorf("thread reply for case %s event %d: %w", ev.CaseID, ev.Seq, err)
			}
		}
	}
	burstID := n.burst.burstOf(ev.CaseID)
	err = n.updateRecord(ctx, ev.CaseID, func(r *record) bool {
		if r.replied(ev.Seq) {
			return false
		}
		r.markReplied(ev.Seq)
		if r.ReplyIntent == ev.Seq {
			r.ReplyIntent = 0
		}
		if ev.Seq <= r.RenderedSeq {
			return true // an older event: its reply is done, the message stays newer
		}
		before := *r
		p.before = &before
		r.RenderedSeq, r.ReplyIntent = ev.Seq, 0
		r.MessageSeq = max(r.MessageSeq, shown)
		r.applyState(ev)
		if ev.Case.Severity != "" {
			r.Severity = ev.Case.Severity
		}
		if burstID != "" {
			r.Burst = burstID
		}
		return true
	})
	if err == nil {
		n.log.Info("case event projected", "case", ev.CaseID, "seq", ev.Seq, "event", ev.Type, "state", ev.Case.State)
	}
	return err
}

// editCase edits the case's message. What it shows is decided once the chat.update
// token is granted: when a newer event of the case is queued by then (the outcome of a
// verification that arrived while the "verifying" edit waited for Slack's budget), the
// message goes straight to the newest state, in one edit instead of a stale one and
// a second wait. shown gets the seq of the snapshot sent; the thread replies still
// tell every event in order.
func (n *Notifier) editCase(ctx context.Context, rec *record, ev model.CaseEvent, text string, blocks []slack.Block, shown *int) error {
	return n.slackCall(ctx, keyUpdate, func(cctx context.Context) error {
		seq := ev.Seq
		if latest := n.newest(ev); latest.Seq > ev.Seq {
			text, blocks, seq = caseText(latest.Case), n.renderCase(cctx, latest.Case, &latest), latest.Seq
		}
		if _, _, _, err := n.api.UpdateMessageContext(cctx, rec.Channel, rec.TS, slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)); err != nil {
			return err
		}
		*shown = seq
		return nil
	})
}

// firstPost gives the case its message. The intent to post is saved first; a post
// is looked for in the channel's history only when an intent without a ts shows that
// an earlier attempt may have posted it (a crash or a lost answer between the post
// and the save). So a new case costs no history call, and a crash anywhere still
// leaves exactly one message.
func (n *Notifier) firstPost(ctx context.Context, ev model.CaseEvent, rec *record, text string, blocks []slack.Block) (*record, bool, error) {
	fresh := false // our intent, just saved: nothing can be in Slack yet
	if rec == nil {
		now := time.Now()
		rec = &record{SlackRef: model.SlackRef{CaseID: ev.CaseID}, AccountID: ev.AccountID, PostingSince: &now}
		data, _ := json.Marshal(rec)
		if _, err := n.b.Slack.Create(ctx, ev.CaseID, data); err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return nil, false, fmt.Errorf("save the posting intent of case %s: %w", ev.CaseID, err)
			}
			// Someone else's intent: search as after a crash.
			if rec, _, err = n.loadRecord(ctx, ev.CaseID); err != nil || rec == nil {
				return nil, false, fmt.Errorf("reload Slack ref of case %s: %v", ev.CaseID, err)
			}
		} else {
			fresh = true
		}
	}
	if rec.TS != "" {
		return rec, false, nil
	}
	var ch, ts string
	found, posted := false, false
	if !fresh {
		var err error
		if ch, ts, found, err = n.findPosted(ctx, ev, rec.PostingSince); err != nil {
			return nil, false, err
		}
	}
	if found {
		n.log.Info("case message found in channel history: adopted", "case", ev.CaseID, "channel", ch, "ts", ts)
	} else {
		var err error
		if ch, ts, err = n.postCaseMessage(ctx, ev, text, blocks); err != nil {
			return nil, false, err
		}
		posted = true
		n.log.Info("case message posted", "case", ev.CaseID, "account", ev.AccountID, "channel", ch, "ts", ts)
	}
	link := n.permalink(ctx, ch, ts)
	err := n.updateRecord(ctx, ev.CaseID, func(r *record) bool {
		if r.TS != "" {
			ch, ts, link = r.Channel, r.TS, r.Permalink // saved meanwhile: theirs
			return false
		}
		r.Channel, r.TS, r.Permalink, r.PostingSince = ch, ts, link, nil
		return true
	})
	if err != nil {
		return nil, false, fmt.Errorf("save Slack ref of case %s: %w", ev.CaseID, err)
	}
	out := *rec
	out.Channel, out.TS, out.Permalink, out.PostingSince = ch, ts, link, nil
	return &out, posted, nil
}

// postCaseMessage posts the case's top-level message, its case id in the metadata so
// that it can be found in the history after a crash.
func (n *Notifier) postCaseMessage(ctx context.Context, ev model.CaseEvent, text string, blocks []slack.Block) (channel, ts string, err error) {
	channel, ts, err = n.postMsg(ctx, n.routeFor(ev.Case),
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
	ch, ts, found, err := n.findPosted(ctx, ev, nil)
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
// posted by an earlier attempt whose ts was never saved). since is the wall-clock
// time of the posting intent: the history is searched from a margin before it.
func (n *Notifier) findPosted(ctx context.Context, ev model.CaseEvent, since *time.Time) (channel, ts string, found bool, err error) {
	channel = n.routeFor(ev.Case)
	params := &slack.GetConversationHistoryParameters{ChannelID: channel, Limit: 200, IncludeAllMetadata: true}
	if since != nil {
		// A margin for the difference between our clock and Slack's.
		params.Oldest = fmt.Sprintf("%d.000000", since.Add(-historyMargin).Unix())
	}
	for page := 0; page < n.cfg.HistoryPages; page++ {
		resp, err := n.history(ctx, params)
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
	msgs, err := n.replies(ctx, &slack.GetConversationRepliesParameters{
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
		n.track(caseID, r) // before the write: whoever sees the write finds the index in step
		data, _ := json.Marshal(r)
		nrev, err := n.b.Slack.Update(ctx, caseID, data, rev)
		if err == nil {
			n.due.wrote(caseID, nrev)
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("save Slack ref of case %s: %w", caseID, err)
		}
	}
	return fmt.Errorf("save Slack ref of case %s: too many concurrent updates", caseID)
}
