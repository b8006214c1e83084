package remediator

// The case state machine: every transition of a case is decided here and nowhere
// else. Apply is a pure function of the current case and one input; the side effects
// it asks for (open a ticket, delete keys through AssumeRoot, check AWS, comment on or
// close a ticket) are recorded on the case (Case.Pending) or in the decision
// (TicketOps) and carried out by the remediator after the compare-and-set.
//
//	finding keys present, no active case  → open (new case <account>-<n+1>)
//	finding keys absent, active case      → resolved "no root access keys (seen by <source>)"
//	approve            open               → ticketed (pending open_ticket, or delete_keys for an
//	                                         Organization member when AssumeRoot is enabled)
//	accept_risk        open, ticketed     → risk_accepted (reason and future expiry required)
//	revoke_acceptance  risk_accepted      → open
//	confirm_deleted    ticketed           → verifying
//	check result       verifying          → resolved (no keys) | ticketed (still_present; pending
//	                                         open_ticket when the case has no ticket yet)
//	recheck            any active state   → same state; check runs; no keys → resolved
//	expiry             risk_accepted      → open "risk acceptance expired"
//	keys deleted       ticketed           → verifying (keys_deleted); failure → ticket path
//
// Anything else is refused with a refused event and changes nothing but the event
// sequence and the remembered action ids. accept_risk is allowed from ticketed too: an
// approver may decide after approval that the key must stay (e.g. a legacy integration);
// the ticket gets a comment and stays as it is.

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rootwarden/rootwarden/internal/model"
)

// Pending work recorded on a case before it runs.
const (
	PendingOpenTicket = "open_ticket" // open (or find) the case's ticket, then save its ref
	PendingDeleteKeys = "delete_keys" // delete the root keys through sts:AssumeRoot
	PendingRecheck    = "recheck"     // check AWS now and refresh the case
)

// DefaultMaxActionIDs bounds the action ids remembered on a case.
const DefaultMaxActionIDs = 64

// Input is one thing that happened to an account. Exactly one of Finding, Action,
// Check, CheckError, TicketOpened, TicketError, Deleted, Expire or Refusal is set.
type Input struct {
	At time.Time // the remediator's clock

	// Finding is an observation from RW_FINDINGS.
	Finding *model.Observation
	// Action is a human request (Slack, API, or a ticket closed by its assignee).
	Action *model.Action
	// Check is the answer of an on-demand check the remediator asked for; Verify is
	// true when it verifies a deletion (the case is verifying). CheckError is set
	// instead when the check could not be made.
	Check      *model.Observation
	Verify     bool
	CheckError string
	// TicketOpened is the ticket opened for the case; TicketError says why opening failed.
	TicketOpened *model.TicketRef
	TicketError  string
	// TicketOpFailed says that a ticket operation (comment, close, reopen) failed for
	// good, and why (e.g. "could not reopen ticket SEC-1: …").
	TicketOpFailed string
	// SecurityHub records what was changed in Security Hub for case SecurityHubCase
	// (securityhub.go), as an updated event.
	SecurityHub     string
	SecurityHubCase string
	// Deleted is the outcome of the AssumeRoot deletion.
	Deleted *Deletion
	// Expire asks whether a risk acceptance has expired at At.
	Expire bool
	// Refusal records on the case that a message was refused for good (Term), and why.
	Refusal string
	// ActivityAsked links a root activity question just asked for the account to its
	// active case (activity.go): an updated event names it.
	ActivityAsked string

	// Policy.
	AssumeRoot   bool // deletion through AssumeRoot is enabled (ROOTWARDEN_ASSUME_ROOT)
	MaxActionIDs int  // 0 → DefaultMaxActionIDs
	// VerifyTimeout time-boxes verifying: a case verifying longer goes back to
	// ticketed with the reason (0 → DefaultVerifyTimeout).
	VerifyTimeout time.Duration
	// Steady state (steady.go): an observation that changes nothing a reader sees is
	// not stored; LastCheckedAt alone is written once it lags by CheckedEvery (0 →
	// DefaultCheckedEvery, spread per account). Seen is the newest observation time
	// known for the account (this instance's, and before a change is stored the
	// newest on RW_FINDINGS), so that the stale-observation guard still knows what was
	// not written.
	CheckedEvery time.Duration
	Seen         time.Time
}

// Defaults of the policy inputs.
const (
	DefaultVerifyTimeout = 30 * time.Minute
)

// Deletion is what the AssumeRoot path did.
type Deletion struct {
	KeyIDs []string
	Err    string
}

// TicketOp is a ticket side effect owed after a transition; it is stored with the
// case (crash-safe) and removed once done.
type TicketOp struct {
	ID     string          `json:"id"` // the id of the event that caused it
	Op     string          `json:"op"` // close | reopen | comment
	Ticket model.TicketRef `json:"ticket"`
	Text   string          `json:"text"`
}

// Ticket operations.
const (
	TicketClose   = "close"
	TicketReopen  = "reopen" // reopen when the tracker says done, otherwise comment
	TicketComment = "comment"
)

// Decision is what Apply decided.
type Decision struct {
	// Case is the next value of the case; nil means nothing changes (nothing to store).
	Case      *model.Case
	Events    []model.CaseEvent
	TicketOps []TicketOp
	// Refused is the reason an action was refused (a refused event is in Events).
	Refused string
}

// Changed reports whether the decision stores anything.
func (d Decision) Changed() bool { return d.Case != nil }

// Apply decides the next state of c (nil when the account has no case yet) for one
// input. It never mutates c. An error means the input is malformed or cannot apply to
// any case (for example an action for an account without a case): it is permanent.
func Apply(c *model.Case, in Input) (Decision, error) {
	d := &decider{in: in}
	if c != nil {
		n := cloneCase(*c)
		d.c = &n
	}
	var err error
	switch {
	case in.Finding != nil:
		err = d.finding(*in.Finding, false)
	case in.Check != nil:
		err = d.finding(*in.Check, true)
	case in.CheckError != "":
		d.checkError(in.CheckError)
	case in.Action != nil:
		err = d.action(*in.Action)
	case in.TicketOpened != nil:
		d.ticketOpened(*in.TicketOpened)
	case in.TicketError != "":
		d.ticketError(in.TicketError)
	case in.TicketOpFailed != "":
		d.ticketProblem(in.TicketOpFailed)
	case in.SecurityHub != "":
		if d.c != nil && d.c.ID == in.SecurityHubCase {
			d.emit(model.EventUpdated, d.c.State, model.System, in.SecurityHub, "")
		}
	case in.Deleted != nil:
		d.deleted(*in.Deleted)
	case in.Expire:
		d.expire()
	case in.Refusal != "":
		if d.c != nil {
			d.emit(model.EventRefused, d.c.State, model.System, in.Refusal, "")
		}
	case in.ActivityAsked != "":
		if d.c != nil && d.c.State.Active() && d.c.ActivityID != in.ActivityAsked {
			d.c.ActivityID = in.ActivityAsked
			d.emit(model.EventUpdated, d.c.State, model.System, "root activity in this account: question "+in.ActivityAsked+
				" asks the owner \"was this you?\" (see its notice in the channel)", "")
		}
	default:
		return Decision{}, model.Errorf(model.CodeInvalid, "empty input")
	}
	if err != nil {
		return Decision{}, err
	}
	if !d.changed {
		return Decision{}, nil
	}
	d.c.UpdatedAt = in.At
	// Snapshots are taken at emit time; refresh UpdatedAt in them.
	for i := range d.events {
		d.events[i].Case.UpdatedAt = in.At
	}
	return Decision{Case: d.c, Events: d.events, TicketOps: d.ops, Refused: d.refused}, nil
}

type decider struct {
	in      Input
	c       *model.Case
	changed bool
	events  []model.CaseEvent
	ops     []TicketOp
	refused string
}

func (d *decider) emit(t model.CaseEventType, from model.State, actor model.Actor, reason, actionID string) string {
	d.changed = true
	d.c.Seq++
	snap := cloneCase(*d.c)
	snap.ActionIDs = nil
	ev := model.CaseEvent{
		SchemaVersion: model.SchemaVersion,
		ID:            EventID(d.c.ID, d.c.Seq),
		Type:          t,
		CaseID:        d.c.ID,
		AccountID:     d.c.AccountID,
		Seq:           d.c.Seq,
		From:          from,
		To:            d.c.State,
		Actor:         actor,
		At:            d.in.At,
		Reason:        reason,
		ActionID:      actionID,
		Case:          snap,
	}
	d.events = append(d.events, ev)
	return ev.ID
}

func (d *decider) ticketOp(causeID, op, text string) {
	if d.c.Ticket == nil {
		return
	}
	d.ops = append(d.ops, TicketOp{ID: causeID, Op: op, Ticket: *d.c.Ticket, Text: text})
}

// EventID is the id (and Nats-Msg-Id) of a case event.
func EventID(caseID string, seq int) string { return fmt.Sprintf("%s/%d", caseID, seq) }

// CaseID is the id of an account's n-th case, opened at: "<account>-<n>-<opened, Unix
// seconds in base 36>". The time makes ids unique even when the state was lost and
// numbering starts again at 1, so a ticket or Slack message found by case id is
// always this case's.
func CaseID(account string, n int, opened time.Time) string {
	return fmt.Sprintf("%s-%d-%s", account, n, strconv.FormatInt(opened.Unix(), 36))
}

func (d *decider) finding(o model.Observation, ownCheck bool) error {
	if o.AccountID == "" {
		return model.Errorf(model.CodeInvalid, "observation %q has no account id", o.ID)
	}
	if d.c != nil && d.c.AccountID != o.AccountID {
		return model.Errorf(model.CodeInvalid, "observation for %s applied to case %s", o.AccountID, d.c.ID)
	}
	if ownCheck {
		d.dropPending(PendingRecheck)
	}
	active := d.c != nil && d.c.State.Active()
	// An observation older than what the case already knows is stale (redelivery,
	// replay, out-of-order sweep): it must not undo newer knowledge.
	// The answer of our own check is current for the case it was asked for, but once
	// that case is resolved a late answer must not open a new one from old news.
	if (!ownCheck || !active) && d.c != nil && !o.ObservedAt.IsZero() && o.ObservedAt.Before(latest(d.c.LastCheckedAt, d.in.Seen)) {
		return nil
	}
	if o.Failed() {
		if !active {
			return nil
		}
		d.checkProblem(o.ErrorCode, o.Error)
		return nil
	}
	src := o.Source
	if src == "" {
		src = model.SourceSweep
	}
	if !o.RootKeysPresent {
		if !active {
			return nil
		}
		from := d.c.State
		d.refresh(o)
		d.c.State = model.StateResolved
		d.c.Pending = nil
		d.c.Risk = nil
		d.c.VerifyingSince = nil
		at := d.in.At
		d.c.ResolvedAt = &at
		reason := fmt.Sprintf("no root access keys (seen by %s)", src)
		id := d.emit(model.EventResolved, from, model.System, reason, "")
		d.ticketOp(id, TicketClose, fmt.Sprintf("Resolved: AWS reports no root access keys in account %s (%s, %s). Thank you.",
			d.c.AccountID, reason, at.UTC().Format(time.RFC3339)))
		return nil
	}
	if !active {
		d.open(o, src)
		return nil
	}
	from := d.c.State
	oldSev := d.c.Severity
	hadError := d.c.LastError
	detailsChanged := d.refresh(o)
	// A keys-present observation made after the claim of deletion answers the claim
	// as well as our own verification check does.
	newerThanClaim := d.c.VerifyingSince != nil && !o.ObservedAt.IsZero() && o.ObservedAt.After(*d.c.VerifyingSince)
	switch {
	case d.c.State == model.StateVerifying && ((ownCheck && d.in.Verify) || newerThanClaim):
		d.c.State = model.StateTicketed
		d.c.VerifyingSince = nil
		reason := "keys are still there"
		if !ownCheck {
			reason += fmt.Sprintf(" (seen by %s)", src)
		}
		if d.c.Ticket == nil {
			// Verification after an AssumeRoot deletion (or a claim made before any
			// ticket existed): a human must now act, so the ticket path takes over.
			d.addPending(PendingOpenTicket)
			reason += "; opening a ticket"
		}
		id := d.emit(model.EventStillPresent, from, model.System, reason, "")
		d.ticketOp(id, TicketReopen, fmt.Sprintf("Keys are still there: AWS still reports a root access key in account %s at %s. "+
			"Please delete it (steps in the description) and close this ticket again.", d.c.AccountID, d.in.At.UTC().Format(time.RFC3339)))
	case sevRank(d.c.Severity) > sevRank(oldSev):
		reason := "severity raised to " + string(d.c.Severity)
		if o.Event != nil && o.Event.KeyInUse {
			reason += ": a root access key is in use (" + o.Event.EventName + ")"
		} else {
			reason += ": a root access key was used recently"
		}
		d.emit(model.EventUpdated, from, model.System, reason, "")
	case ownCheck:
		d.emit(model.EventUpdated, from, model.System, "re-checked: root access keys are still present", "")
	case hadError != "":
		d.emit(model.EventUpdated, from, model.System, fmt.Sprintf("check works again (seen by %s)", src), "")
	case detailsChanged:
		d.emit(model.EventUpdated, from, model.System, fmt.Sprintf("details refreshed (seen by %s)", src), "")
	}
	return nil
}

// refresh copies an observation's details onto the case and reports whether anything
// a reader cares about changed. When only the check time moved it marks the case
// changed only once LastCheckedAt lags by checkedEvery (steady.go): a sweep that
// sees the case as it is writes nothing.
func (d *decider) refresh(o model.Observation) bool {
	c := d.c
	// visible is what a reader of the case sees of an observation.
	visible := func() string {
		// OU path, tags and RoutingError too: an owner or OU read after the case was
		// posted must reach its message ("details refreshed").
		b, _ := json.Marshal(struct {
			K    []model.KeyDetail
			E    *model.TrailEvent
			N    string
			M, O bool
			P, R string
			T    map[string]string
		}{c.Keys, c.Event, c.AccountName, c.Management, c.OrgMember, c.OUPath, c.RoutingError, c.Tags}) // LastError: "check works again" (finding)
		return string(b)
	}
	before := visible()
	if o.AccountName != "" {
		c.AccountName = o.AccountName
	}
	// OU and tags route the case's message and name its owner (notifier, tickets).
	if o.OUPath != "" && o.OUPath != c.OUPath {
		c.OUPath, d.changed = o.OUPath, true
	}
	if o.Tags != nil && !maps.Equal(o.Tags, c.Tags) {
		c.Tags, d.changed = maps.Clone(o.Tags), true
	}
	if o.RootKeysPresent && o.RoutingError != c.RoutingError {
		c.RoutingError = o.RoutingError
	}
	c.Management = o.Management
	c.OrgMember = o.OrgMember
	if o.RootKeysPresent && !o.KeyDetailsPending { // pending details follow; keep what is known
		c.Keys = o.Keys
	}
	if o.Event != nil {
		c.Event = o.Event
	}
	if c.LastError != "" {
		c.LastError = "" // the check works again; the caller says so once
		d.changed = true
	}
	if !o.ObservedAt.IsZero() && o.ObservedAt.After(c.LastCheckedAt) {
		if c.LastCheckedAt.IsZero() || o.ObservedAt.Sub(c.LastCheckedAt) >= checkedEvery(d.in.CheckedEvery, c.AccountID) {
			d.changed = true
		}
		c.LastCheckedAt = o.ObservedAt
	}
	if s := model.SeverityOf(o, d.in.At); o.RootKeysPresent && sevRank(s) > sevRank(c.Severity) {
		c.Severity = s
	}
	if before != visible() {
		d.changed = true
		return true
	}
	return false
}

func (d *decider) open(o model.Observation, src model.Source) {
	prev := d.c
	n := 1
	var ids []string
	if prev != nil {
		n = prev.Number + 1
		ids = prev.ActionIDs
	}
	d.c = &model.Case{
		SchemaVersion: model.SchemaVersion,
		ID:            CaseID(o.AccountID, n, d.in.At),
		Number:        n,
		AccountID:     o.AccountID,
		AccountName:   o.AccountName,
		State:         model.StateOpen,
		Severity:      model.SeverityHigh,
		FoundBy:       src,
		OpenedAt:      d.in.At,
		ActionIDs:     ids,
	}
	d.refresh(o)
	d.c.Severity = model.SeverityOf(o, d.in.At)
	reason := fmt.Sprintf("root access keys found (seen by %s)", src)
	if d.c.Severity == model.SeverityCritical {
		if o.Event != nil && o.Event.KeyInUse {
			reason += "; a root access key is in use"
		} else {
			reason += "; a root access key was used recently"
		}
	}
	d.emit(model.EventOpened, "", model.System, reason, "")
}

// checkProblem records a failed check on the case, with an event only when the
// failure differs from the one already recorded: failures are compared by a stable
// key (error code and text without AWS request ids or other unique ids).
func (d *decider) checkProblem(code, text string) {
	if d.c == nil || !d.c.State.Active() {
		return
	}
	msg := "check failed: " + StableError(text)
	if code != "" && !strings.Contains(msg, code) {
		msg = "check failed: " + code + ": " + StableError(text)
	}
	if d.c.LastError == msg {
		return
	}
	d.c.LastError = msg
	d.emit(model.EventCheckFailed, d.c.State, model.System, msg, "")
}

// ticketProblem records a ticket failure, apart from check failures, with an event
// only when it differs from the one recorded.
func (d *decider) ticketProblem(text string) {
	if d.c == nil || !d.c.State.Active() {
		return
	}
	text = StableError(text)
	if d.c.TicketError == text {
		return
	}
	d.c.TicketError = text
	d.emit(model.EventUpdated, d.c.State, model.System, text, "")
}

func (d *decider) checkError(text string) {
	if d.c == nil {
		return
	}
	if d.dropPending(PendingRecheck) {
		d.changed = true
	}
	d.checkProblem("", text)
}

func (d *decider) action(a model.Action) error {
	if a.ID == "" || a.Kind == "" {
		return model.Errorf(model.CodeInvalid, "action without id or kind")
	}
	if d.c == nil {
		return model.Errorf(model.CodeNotFound, "action %s: account %s has no case", a.ID, a.AccountID)
	}
	if a.AccountID != "" && a.AccountID != d.c.AccountID {
		return model.Errorf(model.CodeInvalid, "action %s for account %s applied to case %s", a.ID, a.AccountID, d.c.ID)
	}
	if slices.Contains(d.c.ActionIDs, a.ID) {
		return nil // duplicate delivery: already applied (or refused)
	}
	max := d.in.MaxActionIDs
	if max <= 0 {
		max = DefaultMaxActionIDs
	}
	d.c.ActionIDs = append(d.c.ActionIDs, a.ID)
	if len(d.c.ActionIDs) > max {
		d.c.ActionIDs = slices.Clone(d.c.ActionIDs[len(d.c.ActionIDs)-max:])
	}
	from := d.c.State
	refuse := func(reason string) {
		d.refused = reason
		d.emit(model.EventRefused, from, a.Actor, reason, a.ID)
	}
	if a.CaseID != d.c.ID {
		refuse(fmt.Sprintf("stale action: %s is for case %s, the current case is %s", a.Kind, orDash(a.CaseID), d.c.ID))
		return nil
	}
	if !d.c.State.Active() {
		refuse(fmt.Sprintf("case %s is resolved; nothing to %s", d.c.ID, a.Kind))
		return nil
	}
	who := a.Actor.String()
	withReason := func(s string) string {
		if a.Reason != "" {
			return s + ": " + a.Reason
		}
		return s
	}
	switch {
	case a.Kind == model.ActionApprove && from == model.StateOpen:
		d.c.State = model.StateTicketed
		reason := "remediation approved by " + who
		if d.in.AssumeRoot && d.c.OrgMember && !d.c.Management {
			d.addPending(PendingDeleteKeys)
			reason += "; deleting the root keys through AssumeRoot"
		} else {
			d.addPending(PendingOpenTicket)
			reason += "; opening a ticket"
		}
		d.emit(model.EventTicketed, from, a.Actor, withReason(reason), a.ID)
	case a.Kind == model.ActionAcceptRisk && (from == model.StateOpen || from == model.StateTicketed):
		if strings.TrimSpace(a.Reason) == "" || a.Expires == nil || !a.Expires.After(d.in.At) {
			refuse("accept_risk needs a reason and an expiry in the future")
			return nil
		}
		d.c.State = model.StateRiskAccepted
		d.c.Risk = &model.RiskAcceptance{Reason: a.Reason, Expires: *a.Expires, By: a.Actor, At: d.in.At}
		d.dropPending(PendingOpenTicket)
		d.dropPending(PendingDeleteKeys)
		reason := fmt.Sprintf("risk accepted by %s until %s: %s", who, a.Expires.UTC().Format(time.RFC3339), a.Reason)
		id := d.emit(model.EventRiskAccepted, from, a.Actor, reason, a.ID)
		d.ticketOp(id, TicketComment, reason)
	case a.Kind == model.ActionRevokeAccept && from == model.StateRiskAccepted:
		d.c.State = model.StateOpen
		d.c.Risk = nil
		d.emit(model.EventReopened, from, a.Actor, withReason("risk acceptance revoked by "+who), a.ID)
	case (a.Kind == model.ActionConfirmDeleted || a.Kind == model.ActionRecheck) && a.Actor.Kind != model.ActorTicket && d.throttled():
		// A check of the case is owed or running: another one would cost AWS calls and
		// thread replies and tell nothing new. The action id is remembered, and the
		// first ignored click of that check leaves a refused event saying why; nothing
		// else changes.
		d.changed = true
		if reason, ok := d.throttleRefusal(); ok {
			at := d.in.At
			d.c.CheckRefusedAt = &at
			refuse(fmt.Sprintf("%s by %s ignored: %s", a.Kind, who, reason))
		}
	case a.Kind == model.ActionConfirmDeleted && from == model.StateTicketed:
		d.c.State = model.StateVerifying
		at := d.in.At
		d.c.VerifyingSince = &at
		d.c.CheckRequestedAt = &at
		reason := who + " says the root keys are deleted; verifying with AWS"
		if a.Actor.Kind == model.ActorTicket {
			reason = "ticket closed by " + who + "; verifying with AWS"
		}
		d.emit(model.EventVerifying, from, a.Actor, reason, a.ID)
	case a.Kind == model.ActionRecheck:
		at := d.in.At
		d.c.CheckRequestedAt = &at
		d.addPending(PendingRecheck)
		d.emit(model.EventUpdated, from, a.Actor, "re-check requested by "+who, a.ID)
	case !knownAction(a.Kind):
		refuse(fmt.Sprintf("unknown action %q", a.Kind))
	default:
		refuse(fmt.Sprintf("cannot %s a case that is %s", a.Kind, from))
	}
	return nil
}

func (d *decider) ticketOpened(ref model.TicketRef) {
	if d.c == nil {
		return
	}
	had := d.dropPending(PendingOpenTicket)
	if d.c.Ticket != nil && *d.c.Ticket == ref {
		if had {
			d.changed = true
		}
		return
	}
	if d.c.Ticket != nil {
		// Another ticket of the case is already linked (two openers raced): keep the
		// first, close the duplicate with a pointer to it.
		first := *d.c.Ticket
		d.changed = true
		d.ops = append(d.ops, TicketOp{ID: fmt.Sprintf("%s/dup/%s", d.c.ID, ref.ID), Op: TicketClose, Ticket: ref,
			Text: fmt.Sprintf("Duplicate of %s %s (rootwarden opened the ticket of case %s twice); closing this one.", first.ID, first.URL, d.c.ID)})
		return
	}
	d.c.Ticket = &ref
	d.c.TicketError = ""
	id := d.emit(model.EventUpdated, d.c.State, model.System, fmt.Sprintf("ticket %s opened %s", ref.ID, ref.URL), "")
	if !d.c.State.Active() {
		d.ticketOp(id, TicketClose, "The case was resolved before this ticket was linked: AWS reports no root access keys.")
	}
}

func (d *decider) ticketError(text string) {
	d.ticketProblem("could not open ticket: " + text)
}

func (d *decider) deleted(del Deletion) {
	if d.c == nil {
		return
	}
	if !d.dropPending(PendingDeleteKeys) {
		// The case moved on while the deletion ran (e.g. risk accepted): still record
		// what was deleted, without a transition.
		if len(del.KeyIDs) > 0 {
			d.c.DeletedKeyIDs = append(d.c.DeletedKeyIDs, del.KeyIDs...)
			d.emit(model.EventKeysDeleted, d.c.State, model.System,
				"deleted root access keys through AssumeRoot: "+strings.Join(del.KeyIDs, ", "), "")
		}
		return
	}
	d.changed = true
	from := d.c.State
	d.c.DeletedKeyIDs = append(d.c.DeletedKeyIDs, del.KeyIDs...)
	if del.Err != "" {
		if from == model.StateTicketed {
			d.addPending(PendingOpenTicket)
		}
		reason := "deletion through AssumeRoot failed, falling back to a ticket: " + del.Err
		if len(del.KeyIDs) > 0 {
			reason += " (deleted before the failure: " + strings.Join(del.KeyIDs, ", ") + ")"
		}
		d.emit(model.EventUpdated, from, model.System, reason, "")
		return
	}
	reason := "deleted root access keys through AssumeRoot: " + strings.Join(del.KeyIDs, ", ")
	if len(del.KeyIDs) == 0 {
		reason = "AssumeRoot found no root access keys to delete"
	}
	if from == model.StateTicketed {
		d.c.State = model.StateVerifying
		at := d.in.At
		d.c.VerifyingSince = &at
	}
	d.emit(model.EventKeysDeleted, from, model.System, reason, "")
}

// throttled reports whether a human's check request comes while a check of the case
// is owed or running: a re-check not yet answered, or a claim of deletion being
// verified. There is no cooldown after the answer: a person told "keys are still
// there" who deletes them and presses again is heard at once (issue 19 item 10). How
// often one person may ask is the notifier's per-person budget (notifier/checkbudget.go).
func (d *decider) throttled() bool {
	return slices.Contains(d.c.Pending, PendingRecheck) || d.c.State == model.StateVerifying
}

// throttleRefusal is why a throttled check request is ignored, and whether to record
// it: once per check (a refusal recorded since the check was asked for is enough).
func (d *decider) throttleRefusal() (string, bool) {
	since := d.c.CheckRequestedAt
	if d.c.State == model.StateVerifying && d.c.VerifyingSince != nil && (since == nil || d.c.VerifyingSince.After(*since)) {
		since = d.c.VerifyingSince
	}
	if r := d.c.CheckRefusedAt; r != nil && (since == nil || !r.Before(*since)) {
		return "", false
	}
	if d.c.State == model.StateVerifying {
		return "rootwarden is verifying the deletion with AWS", true
	}
	return "a check is already running", true
}

// expire ends what is time-boxed: a risk acceptance at its expiry, and verifying
// after VerifyTimeout (back to ticketed, saying why: the check keeps failing, e.g. a
// broken role or an account no longer ACTIVE).
func (d *decider) expire() {
	if d.c == nil {
		return
	}
	if d.c.State == model.StateVerifying {
		d.verifyTimedOut()
		return
	}
	if d.c.State != model.StateRiskAccepted || d.c.Risk == nil || d.in.At.Before(d.c.Risk.Expires) {
		return
	}
	d.c.State = model.StateOpen
	d.c.Risk = nil
	d.emit(model.EventReopened, model.StateRiskAccepted, model.System, "risk acceptance expired", "")
}

func (d *decider) verifyTimedOut() {
	limit := d.in.VerifyTimeout
	if limit <= 0 {
		limit = DefaultVerifyTimeout
	}
	since := d.c.UpdatedAt
	if d.c.VerifyingSince != nil {
		since = *d.c.VerifyingSince
	}
	if d.in.At.Sub(since) < limit {
		return
	}
	why := d.c.LastError
	if why == "" {
		why = "no answer from the detector"
	}
	d.c.State = model.StateTicketed
	d.c.VerifyingSince = nil
	reason := fmt.Sprintf("could not verify the deletion within %s (%s); back to ticketed: re-check once the check works", limit, why)
	if d.c.Ticket == nil {
		d.addPending(PendingOpenTicket)
		reason += "; opening a ticket"
	}
	id := d.emit(model.EventUpdated, model.StateVerifying, model.System, reason, "")
	d.ticketOp(id, TicketComment, fmt.Sprintf("rootwarden could not verify with AWS that the root access keys of account %s are gone (%s). "+
		"The case is waiting again; it resolves as soon as a check sees no root access keys.", d.c.AccountID, why))
}

func (d *decider) addPending(p string) {
	if !slices.Contains(d.c.Pending, p) {
		d.c.Pending = append(d.c.Pending, p)
	}
}

func (d *decider) dropPending(p string) bool {
	if d.c == nil {
		return false
	}
	i := slices.Index(d.c.Pending, p)
	if i < 0 {
		return false
	}
	d.c.Pending = slices.Delete(slices.Clone(d.c.Pending), i, i+1)
	if len(d.c.Pending) == 0 {
		d.c.Pending = nil
	}
	d.changed = true
	return true
}

func knownAction(k model.ActionKind) bool {
	switch k {
	case model.ActionApprove, model.ActionAcceptRisk, model.ActionRevokeAccept, model.ActionConfirmDeleted, model.ActionRecheck:
		return true
	}
	return false
}

func sevRank(s model.Severity) int {
	switch s {
	case model.SeverityCritical:
		return 2
	case model.SeverityHigh:
		return 1
	}
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var (
	uuidRE      = regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	requestIDRE = regexp.MustCompile(`(?i)[,;(]?\s*\b(request ?id|requestid|x-amzn-requestid|x-amz-request-id)\b[:=]?\s*[^\s,;)]*\)?`)
	longHexRE   = regexp.MustCompile(`(?i)\b[0-9a-f]{16,}\b`)
	spacesRE    = regexp.MustCompile(`\s{2,}`)
)

// StableError is an error text without what differs between two occurrences of the
// same failure: AWS request ids, UUIDs, long hex ids. Failures are compared by it.
func StableError(s string) string {
	s = requestIDRE.ReplaceAllString(s, "")
	s = uuidRE.ReplaceAllString(s, "…")
	s = longHexRE.ReplaceAllString(s, "…")
	s = strings.TrimSpace(spacesRE.ReplaceAllString(s, " "))
	return strings.TrimRight(s, " ,;")
}

// cloneCase deep-copies the slices and pointers of a case.
func cloneCase(c model.Case) model.Case {
	c.Keys = slices.Clone(c.Keys)
	c.Pending = slices.Clone(c.Pending)
	c.ActionIDs = slices.Clone(c.ActionIDs)
	c.DeletedKeyIDs = slices.Clone(c.DeletedKeyIDs)
	c.Event = clonePtr(c.Event)
	c.Ticket = clonePtr(c.Ticket)
	c.Risk = clonePtr(c.Risk)
	c.ResolvedAt = clonePtr(c.ResolvedAt)
	c.VerifyingSince = clonePtr(c.VerifyingSince)
	c.CheckRequestedAt = clonePtr(c.CheckRequestedAt)
	return c
}

// clonePtr returns a pointer to a shallow copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
