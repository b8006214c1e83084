// Package ask is the asking side of root activity questions ("was this you?",
// docs/activity.md): it asks the account's owner — or, without one, the on-call
// approver — by Slack DM (conversations.open + chat.postMessage), posts at once to
// the account's routed channel who was asked and when the question escalates, turns
// the two answer buttons ("Yes, it was me (reason)" with a modal for the reason, "No,
// I don't recognise this") into actions, and shows the outcome: confirmed, or
// critical with a PagerDuty incident and the console steps.
//
// It never decides: the remediator owns the question and its deadline; ask renders
// the question's events and relays answers. Who may answer is checked here, fail
// closed: the person asked or an approver, nobody else. The notifier calls it through
// the Asker interface; it owns nothing of the notifier's case projection.
package ask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
	"github.com/rootwarden/rootwarden/internal/pagerduty"
)

// Action, block and callback ids of the question's buttons and modal.
const (
	ActionIDYes      = "activity_yes" // opens the reason modal
	ActionIDNo       = "activity_no"
	CallbackReason   = "activity_reason"
	BlockIDReason    = "activity_reason"
	ActionIDReason   = "activity_reason_input"
	MetadataQuestion = "rootwarden_activity"
)

// Asker is what the notifier calls.
type Asker interface {
	// Project renders one event of a question (CaseEvent.Activity set): asks, updates,
	// shows the outcome. Idempotent per event.
	Project(ctx context.Context, ev model.CaseEvent) error
	// Page triggers the PagerDuty incident of an escalated question (once per question).
	Page(ctx context.Context, ev model.CaseEvent) error
	// Handles reports whether a block action or view callback id is the asker's.
	Handles(id string) bool
	// BlockAction and ViewSubmission answer an interaction with one of its ids.
	BlockAction(ctx context.Context, ic slack.InteractionCallback) Reply
	ViewSubmission(ctx context.Context, ic slack.InteractionCallback) Reply
}

// Reply is the answer to an interaction (the notifier writes it to HTTP or Socket Mode).
type Reply struct {
	Status int    // HTTP status
	Msg    string // error text for a non-200 status
	Body   any    // JSON body; nil → empty
}

// Pager opens incidents (PagerDuty's Events API v2).
type Pager interface {
	Trigger(ctx context.Context, in pagerduty.Incident) error
}

// Owner is an account's owner as the notifier resolves it (owner tag → Slack user).
type Owner struct {
	SlackID, Email, Note string
}

// Deps are what the asker needs from the notifier. Post and Update go through the
// notifier's pacing and deadlines.
type Deps struct {
	API        *slack.Client
	KV         jetstream.KeyValue // rw_sched: "ask.<question id>" per question
	Route      func(c model.Case) string
	Owner      func(ctx context.Context, c model.Case) Owner
	OnCall     func(ctx context.Context) []string // Slack ids of the on-call approvers, best first
	IsApprover func(ctx context.Context, user string) (bool, string)
	Publish    func(ctx context.Context, a model.Action) error
	Ephemeral  func(ctx context.Context, channel, user, text string)
	Post       func(ctx context.Context, channel string, opts ...slack.MsgOption) (string, string, error)
	Update     func(ctx context.Context, channel, ts string, opts ...slack.MsgOption) error
	Pager      Pager // nil → no incidents
	// ConsoleSteps says how to remove root credentials by hand (no "Remove all root
	// credentials" flow exists yet: issue 22).
	ConsoleSteps string
	CallTimeout  time.Duration
	Now          func() time.Time
	Log          *slog.Logger
}

// New builds the asker.
func New(d Deps) Asker {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.CallTimeout <= 0 {
		d.CallTimeout = 10 * time.Second
	}
	if d.ConsoleSteps == "" {
		d.ConsoleSteps = DefaultConsoleSteps
	}
	return &asker{d: d}
}

// DefaultConsoleSteps are the manual steps offered when a question escalates.
const DefaultConsoleSteps = "1. Sign in to the account as root (console, MFA) — or, for a member account with centralized root access, take a root session from the management account (IAM → Root access management).\n" +
	"2. Change the root password and check the account's email address and MFA devices.\n" +
	"3. Delete every root access key and signing certificate (Security credentials).\n" +
	"4. Review CloudTrail for what the session did.\n" +
	"_A \"Remove all root credentials\" button (centralized root access) does not exist yet._"

type asker struct{ d Deps }

// record is what the asker keeps per question in rw_sched ("ask.<id>").
type record struct {
	ID          string `json:"id"`
	AccountID   string `json:"account_id"`
	AskedUser   string `json:"asked_user,omitempty"` // the Slack user asked; "" → nobody could be asked by DM
	AskedVia    string `json:"asked_via,omitempty"`  // owner | on-call | none
	DMChannel   string `json:"dm_channel,omitempty"`
	DMTS        string `json:"dm_ts,omitempty"`
	Channel     string `json:"channel,omitempty"`
	TS          string `json:"ts,omitempty"` // the channel notice
	EscalatedTS string `json:"escalated_ts,omitempty"`
	DMError     string `json:"dm_error,omitempty"` // Slack's refusal of the DM (the notice says it)
	RenderedSeq int    `json:"rendered_seq"`
}

func key(id string) string { return "ask." + id }

func (a *asker) load(ctx context.Context, id string) (*record, uint64, error) {
	e, err := a.d.KV.Get(ctx, key(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read question %s: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, 0, fmt.Errorf("decode question %s: %w", id, err)
	}
	return &r, e.Revision(), nil
}

// save writes r with compare-and-set (Create when rev is 0) and returns the new revision.
func (a *asker) save(ctx context.Context, r *record, rev uint64) (uint64, error) {
	data, _ := json.Marshal(r)
	var err error
	var n uint64
	if rev == 0 {
		n, err = a.d.KV.Create(ctx, key(r.ID), data)
	} else {
		n, err = a.d.KV.Update(ctx, key(r.ID), data, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("save question %s: %w", r.ID, err)
	}
	return n, nil
}

func (a *asker) Handles(id string) bool {
	return id == ActionIDYes || id == ActionIDNo || id == CallbackReason
}

// Project implements Asker. Every step saves what it did before the next, so a retry
// after a failure continues where it stopped (a crash between a post and its save
// may post that one message twice).
func (a *asker) Project(ctx context.Context, ev model.CaseEvent) error {
	q := ev.Activity
	if q == nil {
		return nil
	}
	rec, rev, err := a.load(ctx, q.ID)
	if err != nil {
		return err
	}
	if rec != nil && ev.Seq <= rec.RenderedSeq {
		return nil
	}
	if rec == nil {
		rec = &record{ID: q.ID, AccountID: q.AccountID}
		who, via := a.whom(ctx, ev.Case)
		rec.AskedUser, rec.AskedVia = who, via
		if rev, err = a.save(ctx, rec, 0); err != nil {
			return err
		}
	}
	step := func(f func() error) error {
		if err := f(); err != nil {
			return err
		}
		var err error
		rev, err = a.save(ctx, rec, rev)
		return err
	}
	// The DM to the person asked (while the question is open), then the channel notice.
	if rec.AskedUser != "" && rec.DMTS == "" && rec.DMError == "" && q.Open() {
		if err := step(func() error {
			cctx, cancel := context.WithTimeout(ctx, a.d.CallTimeout)
			ch, _, _, err := a.d.API.OpenConversationContext(cctx, &slack.OpenConversationParameters{Users: []string{rec.AskedUser}})
			cancel()
			var se slack.SlackErrorResponse
			if errors.As(err, &se) && se.Err != "ratelimited" && se.Err != "internal_error" && se.Err != "service_unavailable" && se.Err != "fatal_error" {
				// Slack refuses the DM for good (missing_scope until the workspace
				// re-approves im:write, user_not_found, cannot_dm_bot, …): the channel
				// notice still goes out, saying so, and the deadline still escalates.
				a.d.Log.Warn("cannot DM the person asked: the channel notice says so", "question", q.ID, "user", rec.AskedUser, "slack_error", se.Err)
				rec.DMError = se.Err
				return nil
			}
			if err != nil {
				return fmt.Errorf("conversations.open with %s for question %s: %w", rec.AskedUser, q.ID, err)
			}
			_, ts, err := a.d.Post(ctx, ch.ID, slack.MsgOptionText(dmText(*q), false), slack.MsgOptionBlocks(a.dmBlocks(ev, rec)...),
				slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataQuestion, EventPayload: map[string]any{"question": q.ID}}))
			if err != nil {
				return fmt.Errorf("DM for question %s: %w", q.ID, err)
			}
			rec.DMChannel, rec.DMTS = ch.ID, ts
			return nil
		}); err != nil {
			return err
		}
	}
	if rec.TS == "" {
		if err := step(func() error {
			ch, ts, err := a.d.Post(ctx, a.d.Route(ev.Case), slack.MsgOptionText(noticeText(*q, rec), false),
				slack.MsgOptionBlocks(a.noticeBlocks(ev, rec)...),
				slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataQuestion, EventPayload: map[string]any{"question": q.ID}}))
			if err != nil {
				return fmt.Errorf("channel notice for question %s: %w", q.ID, err)
			}
			rec.Channel, rec.TS = ch, ts
			return nil
		}); err != nil {
			return err
		}
	} else if ev.Type != model.EventActivityAsked {
		if err := a.d.Update(ctx, rec.Channel, rec.TS, slack.MsgOptionText(noticeText(*q, rec), false), slack.MsgOptionBlocks(a.noticeBlocks(ev, rec)...)); err != nil {
			return fmt.Errorf("update the notice of question %s: %w", q.ID, err)
		}
	}
	if rec.DMTS != "" && ev.Type != model.EventActivityAsked {
		if err := a.d.Update(ctx, rec.DMChannel, rec.DMTS, slack.MsgOptionText(dmText(*q), false), slack.MsgOptionBlocks(a.dmBlocks(ev, rec)...)); err != nil {
			return fmt.Errorf("update the DM of question %s: %w", q.ID, err)
		}
	}
	if q.State == model.ActivityEscalated && rec.EscalatedTS == "" {
		if err := step(func() error {
			_, ts, err := a.d.Post(ctx, rec.Channel, slack.MsgOptionText(escalatedText(*q), false),
				slack.MsgOptionBlocks(escalatedBlocks(ev, a.d.ConsoleSteps)...), slack.MsgOptionTS(rec.TS), slack.MsgOptionBroadcast())
			if err != nil {
				return fmt.Errorf("escalation of question %s: %w", q.ID, err)
			}
			rec.EscalatedTS = ts
			return nil
		}); err != nil {
			return err
		}
	}
	if ev.Type == model.EventRefused || ev.Type == model.EventActivityConfirmed {
		if _, _, err := a.d.Post(ctx, rec.Channel, slack.MsgOptionTS(rec.TS), slack.MsgOptionText(escape.Slack(ev.Reason), false)); err != nil {
			return fmt.Errorf("thread reply of question %s: %w", q.ID, err)
		}
	}
	rec.RenderedSeq = ev.Seq
	if _, err := a.save(ctx, rec, rev); err != nil {
		return err
	}
	a.d.Log.Info("root activity question projected", "question", q.ID, "account", q.AccountID, "seq", ev.Seq, "event", ev.Type)
	return nil
}

// whom is the person to ask: the owner, else the first on-call approver.
func (a *asker) whom(ctx context.Context, c model.Case) (string, string) {
	if o := a.d.Owner(ctx, c); o.SlackID != "" {
		return o.SlackID, "owner"
	}
	if a.d.OnCall != nil {
		if ids := a.d.OnCall(ctx); len(ids) > 0 {
			return ids[0], "on-call"
		}
	}
	return "", "none"
}

// Page implements Asker.
func (a *asker) Page(ctx context.Context, ev model.CaseEvent) error {
	q := ev.Activity
	if a.d.Pager == nil || q == nil || ev.Type != model.EventActivityEscalated {
		return nil
	}
	// Its own marker, apart from the question's record (which Project writes meanwhile).
	if _, err := a.d.KV.Get(ctx, key(q.ID)+".paged"); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("read the PagerDuty marker of question %s: %w", q.ID, err)
	}
	in := pagerduty.Incident{DedupKey: q.ID, Severity: "critical", Source: "aws:" + q.AccountID,
		Summary: escape.PagerDuty("Critical: unrecognised root activity in AWS account "+label(*q)+" ("+q.Reason+")", 0),
		Details: map[string]any{"question": q.ID, "account": q.AccountID, "account_name": escape.Plain(q.AccountName),
			"activity": escape.Plain(itemsLine(q.Items)), "root_case": q.RootCaseID}}
	if err := a.d.Pager.Trigger(ctx, in); err != nil {
		return err
	}
	// A crash before the marker pages again: PagerDuty folds it by dedup key.
	if _, err := a.d.KV.Put(ctx, key(q.ID)+".paged", []byte(a.d.Now().UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("save the PagerDuty marker of question %s: %w", q.ID, err)
	}
	a.d.Log.Info("PagerDuty incident triggered for root activity", "question", q.ID, "account", q.AccountID)
	return nil
}

// BlockAction implements Asker: "Yes" opens the reason modal, "No" is relayed.
func (a *asker) BlockAction(ctx context.Context, ic slack.InteractionCallback) Reply {
	act := ic.ActionCallback.BlockActions[0]
	channel := ic.Container.ChannelID
	if channel == "" {
		channel = ic.Channel.ID
	}
	account, id, ok := cutValue(act.Value)
	if !ok {
		return Reply{Status: http.StatusBadRequest, Msg: "malformed action value: want <account>|<question id>"}
	}
	rec, why := a.mayAnswer(ctx, ic.User.ID, id)
	if why != "" {
		a.d.Log.Warn("root activity answer refused", "user", ic.User.ID, "question", id, "reason", why)
		a.d.Ephemeral(ctx, channel, ic.User.ID, why)
		return Reply{Status: http.StatusOK}
	}
	if rec.AccountID != account {
		return Reply{Status: http.StatusBadRequest, Msg: "action value names another account"}
	}
	if act.ActionID == ActionIDYes {
		if _, err := a.d.API.OpenViewContext(ctx, ic.TriggerID, reasonModal(account, id)); err != nil {
			a.d.Ephemeral(ctx, channel, ic.User.ID, "rootwarden could not open the form; nothing was recorded. Please try again.")
		}
		return Reply{Status: http.StatusOK}
	}
	ts := act.ActionTs
	if ts == "" {
		ts = ic.TriggerID
	}
	action := model.Action{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("slack:%s:%s:%s", ic.User.ID, act.ActionID, ts),
		Kind: model.ActionActivityDeny, AccountID: account, CaseID: id, Actor: actorOf(ic), At: a.d.Now(), Origin: "slack"}
	if err := a.d.Publish(ctx, action); err != nil {
		a.d.Ephemeral(ctx, channel, ic.User.ID, "rootwarden could not record your answer; please try again.")
		return Reply{Status: http.StatusServiceUnavailable, Msg: "cannot publish the answer; try again"}
	}
	return Reply{Status: http.StatusOK}
}

// ViewSubmission implements Asker: the reason of a "Yes".
func (a *asker) ViewSubmission(ctx context.Context, ic slack.InteractionCallback) Reply {
	inModal := func(msg string) Reply {
		return Reply{Status: http.StatusOK, Body: slack.NewErrorsViewSubmissionResponse(map[string]string{BlockIDReason: msg})}
	}
	account, id, ok := cutValue(ic.View.PrivateMetadata)
	if !ok || ic.User.ID == "" || ic.View.ID == "" {
		return Reply{Status: http.StatusBadRequest, Msg: "malformed view submission"}
	}
	rec, why := a.mayAnswer(ctx, ic.User.ID, id)
	if why != "" {
		return inModal(why)
	}
	if rec.AccountID != account {
		return Reply{Status: http.StatusBadRequest, Msg: "view names another account"}
	}
	var reason string
	if ic.View.State != nil {
		reason = strings.TrimSpace(ic.View.State.Values[BlockIDReason][ActionIDReason].Value)
	}
	switch {
	case reason == "":
		return inModal("Say what you did as root, and why.")
	case utf8.RuneCountInString(reason) > 3000:
		return inModal("Keep the reason under 3000 characters.")
	}
	action := model.Action{SchemaVersion: model.SchemaVersion, ID: fmt.Sprintf("slack:%s:%s:%s", ic.User.ID, ActionIDYes, ic.View.ID),
		Kind: model.ActionActivityConfirm, AccountID: account, CaseID: id, Actor: actorOf(ic), At: a.d.Now(), Reason: reason, Origin: "slack"}
	if err := a.d.Publish(ctx, action); err != nil {
		return inModal("rootwarden could not record your answer; please try again.")
	}
	return Reply{Status: http.StatusOK}
}

// mayAnswer decides, fail closed, whether user may answer question id: the person
// asked, or an approver. why is the refusal to show.
func (a *asker) mayAnswer(ctx context.Context, user, id string) (*record, string) {
	rec, _, err := a.load(ctx, id)
	if err != nil {
		return nil, "rootwarden could not read the question right now; nothing was recorded. Please try again."
	}
	if rec == nil {
		return nil, "rootwarden does not know this question; nothing was recorded."
	}
	if user != "" && user == rec.AskedUser {
		return rec, ""
	}
	if ok, whyNot := a.d.IsApprover(ctx, user); ok {
		return rec, ""
	} else if whyNot != "" {
		return nil, "Only the person asked or an on-call approver may answer: " + whyNot + " Nothing was recorded."
	}
	return nil, "Only the person asked or an on-call approver may answer. Nothing was recorded."
}

func actorOf(ic slack.InteractionCallback) model.Actor {
	name := ic.User.Name
	if name == "" {
		name = ic.User.Profile.DisplayName
	}
	return model.Actor{Kind: model.ActorSlack, ID: ic.User.ID, Name: name}
}

func cutValue(v string) (account, id string, ok bool) {
	account, id, ok = strings.Cut(v, "|")
	if !ok || account == "" || id == "" || strings.Contains(id, "|") || len(v) > 200 {
		return "", "", false
	}
	return account, id, true
}
