package notifier

// The whole Slack layout of rootwarden lives in this file: the case message, its
// buttons per state, thread replies, reminders, ephemeral refusals and the modal.

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/rootwarden/rootwarden/internal/escape"
	"github.com/rootwarden/rootwarden/internal/model"
)

// Action ids of the buttons and the modal. A button's value is ButtonValue(account,
// case id).
const (
	ActionIDApprove        = "rw_approve"           // → model.ActionApprove (approvers only)
	ActionIDAcceptRisk     = "rw_accept_risk"       // opens the modal (approvers only)
	ActionIDRecheck        = "rw_recheck"           // → model.ActionRecheck (anyone)
	ActionIDConfirmDeleted = "rw_confirm_deleted"   // → model.ActionConfirmDeleted (anyone)
	ActionIDRevoke         = "rw_revoke_acceptance" // → model.ActionRevokeAccept (approvers only)

	// BlockIDActions is the block id of the buttons.
	BlockIDActions = "rw_actions"

	// CallbackAcceptRisk is the callback id of the accept-risk modal; its
	// private_metadata is ButtonValue(account, case id).
	CallbackAcceptRisk = "rw_accept_risk_modal"
	// Input blocks and actions of the modal.
	BlockIDReason   = "rw_reason"
	ActionIDReason  = "reason"
	BlockIDExpires  = "rw_expires"
	ActionIDExpires = "expires"

	// MetadataCase is the message metadata event type of a case's top-level message
	// (payload {"case_id", "account_id"}); it is how a lost SlackRef is found again.
	MetadataCase = "rootwarden_case"
	// MetadataCaseEvent marks a thread reply for one case event (payload {"case_id", "seq"}).
	MetadataCaseEvent = "rootwarden_case_event"

	RootSignInURL   = "https://signin.aws.amazon.com/console"
	DeleteKeyDocURL = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_root-user_manage_delete-key.html"
)

// slackUserRE is a Slack user id; only such an id becomes a mention.
var slackUserRE = regexp.MustCompile(`^[UW][A-Z0-9]{1,20}$`)

// ButtonValue is the value of every case button: account id and case id.
func ButtonValue(account, caseID string) string { return account + "|" + caseID }

func parseButtonValue(v string) (account, caseID string, ok bool) {
	account, caseID, ok = strings.Cut(v, "|")
	if !ok || account == "" || caseID == "" || strings.Contains(caseID, "|") || len(v) > 200 {
		return "", "", false
	}
	return account, caseID, true
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// esc is escape.Slack: every value that AWS, Slack users or trackers control goes
// through it before it lands in mrkdwn (&, <, > as entities, control characters
// dropped, auto-linking of domains and URLs broken). Plain-text objects use
// escape.SlackPlain, links to tracker URLs escape.SlackLink.
func esc(s string) string { return escape.Slack(s) }

func day(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown time"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func accountLabel(c model.Case) string {
	if c.AccountName != "" {
		return c.AccountID + " (" + c.AccountName + ")"
	}
	return c.AccountID
}

func severityWord(s model.Severity) string {
	if s == model.SeverityCritical {
		return "Critical"
	}
	return "High"
}

// caseText is the notification fallback text of the case message (mrkdwn: what push
// notifications show).
func caseText(c model.Case) string {
	return fmt.Sprintf("%s: root access key in AWS account %s — %s", severityWord(c.Severity), esc(accountLabel(c)), esc(stateLine(c, "")))
}

// stateLine describes the state; from is the state before the last event, if known.
func stateLine(c model.Case, from model.State) string {
	switch c.State {
	case model.StateOpen:
		return "open: waiting for an on-call approver"
	case model.StateTicketed:
		return "ticketed: waiting for someone to delete the root keys"
	case model.StateVerifying:
		return "verifying: checking with AWS that the keys are gone"
	case model.StateResolved:
		if from == model.StateVerifying {
			return "Resolved — verified"
		}
		return "Resolved — AWS reports no root access keys"
	case model.StateRiskAccepted:
		if c.Risk != nil {
			return "risk accepted until " + day(&c.Risk.Expires)
		}
		return "risk accepted"
	}
	return string(c.State)
}

// caseBlocks renders the case message; last is the event that produced it (may be nil).
func caseBlocks(c model.Case, last *model.CaseEvent) []slack.Block {
	from := model.State("")
	if last != nil {
		from = last.From
	}
	icon := ":large_orange_circle:"
	if c.Severity == model.SeverityCritical {
		icon = ":red_circle:"
	}
	if c.State == model.StateResolved {
		icon = ":white_check_mark:"
	}
	label := escape.SlackPlain(accountLabel(c)) // the header is plain_text
	header := fmt.Sprintf("%s %s: root access key in %s", icon, severityWord(c.Severity), label)
	if c.State == model.StateResolved {
		header = fmt.Sprintf("%s Resolved: root access key in %s (was %s)", icon, label, severityWord(c.Severity))
	}
	if len([]rune(header)) > 150 {
		header = string([]rune(header)[:147]) + "…"
	}
	blocks := []slack.Block{slack.NewHeaderBlock(plain(header))}

	fields := []*slack.TextBlockObject{
		mrkdwn("*Account*\n" + esc(c.AccountID)),
		mrkdwn("*Name*\n" + orDash(esc(c.AccountName))),
		mrkdwn("*Severity*\n" + severityWord(c.Severity)),
		mrkdwn("*State*\n" + esc(stateLine(c, from))),
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*Case* `%s`", esc(c.ID))), fields, nil))

	// Keys.
	var keys []string
	for _, k := range c.Keys {
		active := "inactive"
		if k.Active {
			active = "*active*"
		}
		line := fmt.Sprintf("• *Key %d*: %s · created/rotated %s · last used %s", k.Slot, active, day(k.LastRotated), day(k.LastUsedAt))
		if k.LastUsedRegion != "" || k.LastUsedService != "" {
			line += fmt.Sprintf(" in %s (%s)", orDash(esc(k.LastUsedRegion)), orDash(esc(k.LastUsedService)))
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		keys = append(keys, "• no key details yet (the credential report may lag)")
	}
	keysTitle := "*Root access keys*"
	if c.State == model.StateResolved {
		// The keys stay on the case as the record of what was found; AWS now reports none.
		keysTitle = "*Root access keys found* (AWS now reports none)"
	}
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn(keysTitle+"\n"+strings.Join(keys, "\n")), nil, nil))

	// How it was found, and the check on record (lastcheck.go: why not the latest).
	blocks = append(blocks, slack.NewSectionBlock(mrkdwn("*How it was found*\n"+foundText(c)), nil, nil))
	if c.State.Active() {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(checkedText(c))))
	}

	if c.Risk != nil && c.State == model.StateRiskAccepted {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(fmt.Sprintf("*Risk accepted* by %s until %s\n>%s",
			actorRef(c.Risk.By), day(&c.Risk.Expires), esc(c.Risk.Reason))), nil, nil))
	}
	if c.LastError != "" {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(":warning: last check failed: "+esc(c.LastError))))
	}
	if c.RoutingError != "" && c.State.Active() {
		blocks = append(blocks, slack.NewContextBlock("", mrkdwn(":warning: routing: "+esc(c.RoutingError))))
	}

	// Links.
	links := []string{
		"<" + RootSignInURL + "|Root sign-in>",
		"<" + DeleteKeyDocURL + "|AWS guide: delete root access keys>",
	}
	if c.Ticket != nil {
		if c.Ticket.URL != "" {
			links = append(links, escape.SlackLink(c.Ticket.URL, "Ticket "+c.Ticket.ID))
		} else {
			links = append(links, "Ticket "+esc(c.Ticket.ID)+" ("+esc(c.Ticket.System)+")")
		}
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(strings.Join(links, " · "))))

	if btns := buttons(c); len(btns) > 0 {
		blocks = append(blocks, slack.NewActionBlock(BlockIDActions, btns...))
	}
	var foot string
	if last != nil {
		foot = fmt.Sprintf("Last change: %s by %s at %s", last.Type, actorRef(last.Actor), stamp(last.At))
	} else {
		foot = "Updated " + stamp(c.UpdatedAt)
	}
	blocks = append(blocks, slack.NewContextBlock("", mrkdwn(foot)))
	return blocks
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func foundText(c model.Case) string {
	if c.Event != nil {
		e := c.Event
		s := fmt.Sprintf("CloudTrail event *%s* at %s from %s\nuser agent `%s`", esc(e.EventName), stamp(e.EventTime),
			orDash(esc(e.SourceIP)), orDash(esc(e.UserAgent)))
		if e.KeyInUse {
			s = ":rotating_light: a call signed with a root access key — " + s
		}
		if e.Calls > 1 {
			s += fmt.Sprintf("\n*%d calls* with the key in a short window: %s; from %s", e.Calls,
				esc(strings.Join(e.EventNames, ", ")), orDash(esc(strings.Join(e.SourceIPs, ", "))))
		}
		if c.FoundBy == model.SourceSweep {
			s = "Sweep of the account; latest " + s
		}
		return s
	}
	switch c.FoundBy {
	case model.SourceSweep:
		return "Sweep of the account"
	case model.SourceCheck:
		return "On-demand check"
	}
	return orDash(esc(string(c.FoundBy)))
}

// checkedText is the case message's line about checks. The message is edited only
// when the case changes, so the time it gives is the check on record when it was
// rendered (Case.LastCheckedAt), said as such, never as the latest check.
func checkedText(c model.Case) string {
	return fmt.Sprintf(":mag: Check on record when this message was updated: %s. Every sweep checks the account again; "+
		"a check that changes nothing does not edit this message. Latest check: `/rootwarden case %s`",
		stamp(c.LastCheckedAt), esc(c.ID))
}

// buttons are the buttons of the case's state.
func buttons(c model.Case) []slack.BlockElement {
	v := ButtonValue(c.AccountID, c.ID)
	recheck := slack.NewButtonBlockElement(ActionIDRecheck, v, plain("Re-check now"))
	switch c.State {
	case model.StateOpen:
		approve := slack.NewButtonBlockElement(ActionIDApprove, v, plain("Approve remediation")).
			WithStyle(slack.StylePrimary).
			WithConfirm(slack.NewConfirmationBlockObject(plain("Approve remediation?"),
				mrkdwn(fmt.Sprintf("This opens a ticket to delete the root access keys of account %s.", esc(accountLabel(c)))),
				plain("Approve"), plain("Cancel")))
		accept := slack.NewButtonBlockElement(ActionIDAcceptRisk, v, plain("Accept risk…")).
			WithConfirm(slack.NewConfirmationBlockObject(plain("Accept the risk?"),
				mrkdwn("A root access key can do anything in the account. You will be asked for a reason and an expiry date."),
				plain("Continue"), plain("Cancel")).WithStyle(slack.StyleDanger))
		return []slack.BlockElement{approve, accept, recheck}
	case model.StateTicketed:
		return []slack.BlockElement{slack.NewButtonBlockElement(ActionIDConfirmDeleted, v, plain("I deleted the keys")), recheck}
	case model.StateVerifying: // a check that keeps failing can be retried by hand
		return []slack.BlockElement{recheck}
	case model.StateRiskAccepted:
		return []slack.BlockElement{slack.NewButtonBlockElement(ActionIDRevoke, v, plain("Revoke acceptance")).WithStyle(slack.StyleDanger)}
	}
	return nil
}

// actionAllowed says whether a button belongs to the state (a click on a button of an
// older rendering is refused).
func actionAllowed(k model.ActionKind, s model.State) bool {
	switch k {
	case model.ActionApprove, model.ActionAcceptRisk:
		return s == model.StateOpen
	case model.ActionRecheck:
		return s == model.StateOpen || s == model.StateTicketed || s == model.StateVerifying
	case model.ActionConfirmDeleted:
		return s == model.StateTicketed
	case model.ActionRevokeAccept:
		return s == model.StateRiskAccepted
	}
	return false
}

func actorRef(a model.Actor) string {
	if a.Kind == model.ActorSlack && slackUserRE.MatchString(a.ID) {
		return "<@" + a.ID + ">"
	}
	return esc(a.String())
}

// eventText is the thread reply for one case event: what, who, when, why.
func eventText(ev model.CaseEvent) string {
	var what string
	switch ev.Type {
	case model.EventTicketed:
		// The ticket is usually opened after the approval (its own "updated" event),
		// and never with AssumeRoot: name it only when the case already has one.
		what = ":ticket: Remediation approved"
		if ev.Case.Ticket != nil {
			t := ev.Case.Ticket
			if t.URL != "" {
				what += "; ticket " + escape.SlackLink(t.URL, t.ID)
			} else {
				what += "; ticket " + esc(t.ID)
			}
		}
	case model.EventVerifying:
		what = ":mag: Checking with AWS that the root keys are gone"
	case model.EventResolved:
		what = ":white_check_mark: " + stateLine(ev.Case, ev.From)
	case model.EventStillPresent:
		what = ":x: AWS still reports root access keys: back to ticketed"
	case model.EventRiskAccepted:
		what = ":warning: Risk accepted"
		if ev.Case.Risk != nil {
			what += " until " + day(&ev.Case.Risk.Expires)
		}
	case model.EventReopened:
		what = ":arrows_counterclockwise: Case reopened"
	case model.EventRefused:
		what = ":no_entry: Request refused"
	case model.EventUpdated:
		what = ":pencil2: Case details updated (severity " + severityWord(ev.Case.Severity) + ")"
	case model.EventKeysDeleted:
		what = ":wastebasket: Root keys deleted through a root session"
	case model.EventCheckFailed:
		what = ":warning: Check failed"
	case model.EventOpened:
		what = ":rotating_light: Case opened"
	default:
		what = esc(string(ev.Type))
	}
	s := fmt.Sprintf("%s — by %s at %s", what, actorRef(ev.Actor), stamp(ev.At))
	if ev.From != "" && ev.To != "" && ev.From != ev.To {
		s += fmt.Sprintf(" (%s → %s)", ev.From, ev.To)
	}
	if ev.Reason != "" {
		s += "\n>" + esc(ev.Reason)
	}
	if e := ev.Case.Event; ev.Type == model.EventUpdated && e != nil && e.Calls > 1 {
		s += fmt.Sprintf("\n%d calls signed with the root key (%s) from %s; latest %s at %s", e.Calls,
			esc(strings.Join(e.EventNames, ", ")), orDash(esc(strings.Join(e.SourceIPs, ", "))), esc(e.EventName), stamp(e.EventTime))
	}
	return s
}

// mentions renders the approvers as Slack mentions.
func (n *Notifier) mentions() string {
	var out []string
	for _, a := range n.cfg.Approvers {
		a = strings.TrimSpace(a)
		switch {
		case n.users[a]:
			out = append(out, "<@"+a+">")
		case strings.HasPrefix(a, "S"):
			out = append(out, "<!subteam^"+a+">")
		}
	}
	if len(out) == 0 {
		return "(no approvers are configured: set ROOTWARDEN_APPROVERS)"
	}
	return strings.Join(out, " ")
}

func reminderText(c model.Case, waited time.Duration, nth, max int, mentions string) string {
	return fmt.Sprintf(":alarm_clock: Reminder %d/%d: the root access key case of account %s has waited %s for an on-call approver. %s",
		nth, max, esc(accountLabel(c)), human(waited), mentions)
}

// human renders a duration to the minute: "30m", "1h30m", "24h".
func human(d time.Duration) string {
	s := d.Round(time.Minute).String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if s == "" {
		s = "0m"
	}
	return s
}

func escalationText(c model.Case, waited, sla time.Duration, mentions string) string {
	t := "the ticket"
	if c.Ticket != nil {
		t = "ticket " + esc(c.Ticket.ID)
		if c.Ticket.URL != "" {
			t = "ticket " + escape.SlackLink(c.Ticket.URL, c.Ticket.ID)
		}
	}
	return fmt.Sprintf(":rotating_light: SLA breached: %s has been open for %s (SLA %s) and account %s still has root access keys. %s",
		t, human(waited), human(sla), esc(accountLabel(c)), mentions)
}

// acceptRiskModal is the form opened by "Accept risk…".
func acceptRiskModal(c model.Case, now time.Time, max time.Duration) slack.ModalViewRequest {
	maxDays := int(max / (24 * time.Hour))
	initial := now.UTC().AddDate(0, 0, min(30, maxDays)).Format("2006-01-02")
	date := slack.NewDatePickerBlockElement(ActionIDExpires)
	date.InitialDate = initial
	reason := slack.NewPlainTextInputBlockElement(plain("Why is it acceptable to keep this root key for now?"), ActionIDReason).
		WithMultiline(true).WithMaxLength(2000)
	return slack.ModalViewRequest{
		Type:            slack.VTModal,
		CallbackID:      CallbackAcceptRisk,
		PrivateMetadata: ButtonValue(c.AccountID, c.ID),
		Title:           plain("Accept risk"),
		Submit:          plain("Accept risk"),
		Close:           plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{
			slack.NewSectionBlock(mrkdwn(fmt.Sprintf("Accept the risk of the root access key in account *%s*. The case reopens at the expiry.",
				esc(accountLabel(c)))), nil, nil),
			slack.NewInputBlock(BlockIDReason, plain("Reason"), nil, reason),
			slack.NewInputBlock(BlockIDExpires, plain("Expires on"),
				plain(fmt.Sprintf("After today and at most %d days from now.", maxDays)), date),
		}},
	}
}

// summaryText is the burst summary's fallback text (also what decides whether it
// needs an edit).
func summaryText(s summary) string {
	c := s.Counts
	return fmt.Sprintf("rootwarden: %d root access key cases opened since %s in %d accounts, %d critical", c.Cases,
		stamp(s.Started), c.Accounts, c.Critical) + "\n" + summaryStates(c)
}

func summaryStates(c summaryCounts) string {
	order := []model.State{model.StateOpen, model.StateTicketed, model.StateVerifying, model.StateRiskAccepted, model.StateResolved}
	var parts []string
	seen := map[model.State]bool{}
	for _, st := range order {
		seen[st] = true
		if c.States[st] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, c.States[st]))
		}
	}
	var rest []string
	for st, k := range c.States {
		if !seen[st] && k > 0 {
			rest = append(rest, fmt.Sprintf("%s %d", st, k))
		}
	}
	sort.Strings(rest)
	parts = append(parts, rest...)
	return fmt.Sprintf("In Slack: %d of %d case messages posted (critical first). States: %s.", c.Posted, c.Cases, strings.Join(parts, " · "))
}

// summaryBlocks lays out the burst summary: a header, the figures a person takes in
// first, and where the cases are.
func summaryBlocks(s summary) []slack.Block {
	c := s.Counts
	oldest := "unknown"
	if c.Oldest != nil {
		oldest = fmt.Sprintf("rotated %s (account %s)", day(c.Oldest), c.OldestAccount)
	}
	return []slack.Block{
		slack.NewHeaderBlock(plain(fmt.Sprintf("%d root access key cases opened at once", c.Cases))),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{
			mrkdwn(fmt.Sprintf("*Accounts*\n%d", c.Accounts)),
			mrkdwn(fmt.Sprintf("*Critical (key in use)*\n%d", c.Critical)),
			mrkdwn("*Oldest key*\n" + esc(oldest)),
			mrkdwn("*Since*\n" + stamp(s.Started)),
		}, nil),
		slack.NewSectionBlock(mrkdwn(esc(summaryStates(c))), nil, nil),
		slack.NewContextBlock("", mrkdwn("Each case has its own message below with its buttons; this summary follows them.")),
	}
}
